"""The typed FastAPI dependencies every route receives its components and caller through.

A route declares ``deployment: Components`` (the running :class:`~custodes.wiring.Deployment`,
one typed field per component) and, when it needs a caller, ``principal: Principal`` (the
principal of the request's custodes API key, ``custodes.server._auth``: the one login check of
the API). Plain Starlette endpoints (the hot log paths) call :func:`deployment_of` directly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from custodes.wiring import Deployment

__all__ = ["Components", "deployment_of"]


def deployment_of(request: Request) -> Deployment:
    """The deployment the app serves (set by the app's start-up, before any request)."""
    deployment: Deployment = request.app.state.deployment
    return deployment


Components = Annotated[Deployment, Depends(deployment_of)]
"""The running deployment, as a route parameter."""
