"""The HTTP server: :func:`create_app` mounts every component's routes on one FastAPI app over a
:class:`~custodes.wiring.Deployment` (built by the composition root, ``custodes.wiring``)."""

from custodes.server._app import create_app

__all__ = ["create_app"]
