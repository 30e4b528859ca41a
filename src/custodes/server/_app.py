"""Build the FastAPI app over a deployment. Each component contributes one routes module under
``routes/``; the components themselves are built by the composition root, ``custodes.wiring``."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from custodes import __version__
from custodes.clock import Clock
from custodes.config import Settings
from custodes.gateway import OPENAPI_PATHS as GATEWAY_PATHS
from custodes.gateway import Gateway, GatewayEntrance
from custodes.server._errors import install_error_handlers
from custodes.wiring import Deployment, build_deployment

__all__ = ["create_app"]


class _Server(FastAPI):
    """The FastAPI app behind the gateway's entrance: every request line is first classified
    by the gateway's raw-path guard, and model calls are answered before the app's middleware
    stack (see :class:`custodes.gateway.GatewayEntrance`)."""

    deployment: Deployment | None = None

    def __init__(self, **kwargs: Any) -> None:
        """The app, with the one gateway entrance in front of it."""
        super().__init__(**kwargs)
        self._entrance = GatewayEntrance(
            functools.partial(FastAPI.__call__, self), gateway=self._gateway
        )

    def _gateway(self) -> Gateway | None:
        """The running deployment's gateway (None before start-up and after shutdown)."""
        return self.deployment.gateway if self.deployment is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request goes through the gateway entrance, which passes what is not a model call on
        to FastAPI.
        """
        await self._entrance(scope, receive, send)


def create_app(
    settings: Settings, *, deployment: Deployment | None = None, clock: Clock | None = None
) -> FastAPI:
    """Create the custodes server for ``settings``.

    The deployment is built when the app starts (lifespan) and closed when it stops, unless a
    ready ``deployment`` is given (tests and benchmarks share one; its owner closes it).

    Raises:
        ConfigError, ConstitutionError, InputError, StoreError: at start-up, when the
            deployment cannot be built (see :func:`custodes.wiring.build_deployment`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Build the deployment at start-up (unless one was given); at shutdown refuse the gateway's
        requests, stop its background work, and close the deployment if it was built here.
        """
        owned = deployment is None
        built = deployment or build_deployment(settings, clock=clock)
        server.deployment = built
        app.state.deployment = built
        try:
            yield
        finally:
            server.deployment = None  # the gateway's requests are refused from here on (503)
            await built.gateway.stop()  # its key watcher and upstream connections
            if owned:
                built.close()

    server = _Server(
        title="custodes",
        version=__version__,
        summary="Checks and balances for frontier AI",
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets, not a CDN (install_offline_docs)
        redoc_url=None,
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(server)
    from custodes.server._docs import install_offline_docs

    install_offline_docs(server)
    from custodes.server._limits import BoundedBodies

    server.add_middleware(BoundedBodies, max_bytes=settings.api_max_body_bytes)
    _include_routes(server, staging=settings.staging_clock)
    from custodes.server._hot import HotPaths
    from custodes.server.routes.log import HOT_ROUTES

    server.add_middleware(HotPaths, routes=HOT_ROUTES)  # outermost of the stack: added last
    _describe_plain_routes(server)
    return server


def _describe_plain_routes(app: FastAPI) -> None:
    """Add the plain (non-FastAPI) routes' descriptions to the OpenAPI document: the hot log
    paths and the gateway's request lines."""
    from custodes.server.routes.log import OPENAPI_PATHS

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's schema with the plain routes' descriptions added (built once)."""
        if app.openapi_schema is None:
            schema = generate()
            for path, item in {**OPENAPI_PATHS, **GATEWAY_PATHS}.items():
                schema["paths"].setdefault(path, {}).update(item)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _include_routes(app: FastAPI, *, staging: bool = False) -> None:
    """One line per component's routes module (the staging clock's only when it is on)."""
    from custodes.server.routes import health, log

    app.include_router(health.router)
    app.include_router(log.router)
    from custodes.server.routes import witnessed

    app.include_router(witnessed.router)
    from custodes.server.routes import custody

    app.include_router(custody.router)
    from custodes.server.routes import monitors

    app.include_router(monitors.router)
    from custodes.server.routes import authority, constitution

    app.include_router(authority.router)
    app.include_router(constitution.router)
    from custodes.server.routes import coalition

    app.include_router(coalition.router)
    from custodes.server.routes import usage

    app.include_router(usage.router)
    from custodes.server.routes import provenance

    app.include_router(provenance.router)
    if staging:
        from custodes.server.routes import staging as staging_routes

        app.include_router(staging_routes.router)
    from custodes.dashboard import install_dashboard

    install_dashboard(app)  # the overseers' pages under /dashboard
