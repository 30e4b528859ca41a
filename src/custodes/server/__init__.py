"""The HTTP server: :func:`create_app` wires every component's routes onto one FastAPI app."""

from custodes.server._app import create_app
from custodes.server._context import Context, build_context

__all__ = ["Context", "build_context", "create_app"]
