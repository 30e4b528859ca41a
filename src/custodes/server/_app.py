"""Build the FastAPI app. Each component contributes one routes module under ``routes/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from custodes import __version__
from custodes.clock import Clock
from custodes.config import Settings
from custodes.gateway import answer_exact
from custodes.server._context import Context, build_context
from custodes.server._errors import install_error_handlers

__all__ = ["create_app"]


class _Server(FastAPI):
    """The FastAPI app, with the gateway's exact request lines (model calls) answered before
    its middleware stack (see :func:`custodes.gateway.answer_exact`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await answer_exact(self, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings, *, context: Context | None = None, clock: Clock | None = None
) -> FastAPI:
    """Create the custodes server for ``settings``.

    The database is opened and migrated when the app starts (lifespan), unless a ready
    ``context`` is given (tests and benchmarks share one).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = context is None
        ctx = context or build_context(settings, clock=clock)
        app.state.context = ctx
        _start_services(ctx)
        try:
            yield
        finally:
            if owned:
                ctx.close()

    app = _Server(
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
    install_error_handlers(app)
    from custodes.server._docs import install_offline_docs

    install_offline_docs(app)
    from custodes.server._limits import BoundedBodies

    app.add_middleware(BoundedBodies, max_bytes=settings.api_max_body_bytes)  # inside the guard
    _include_routes(app)
    from custodes.server._hot import HotPaths
    from custodes.server.routes.log import HOT_ROUTES

    app.add_middleware(HotPaths, routes=HOT_ROUTES)  # outermost: added last
    _describe_plain_routes(app)
    return app


def _describe_plain_routes(app: FastAPI) -> None:
    """Add the plain (non-FastAPI) routes' descriptions to the OpenAPI document."""
    from custodes.server.routes.log import OPENAPI_PATHS

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path, item in OPENAPI_PATHS.items():
                schema["paths"].setdefault(path, {}).update(item)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _start_services(ctx: Context) -> None:
    """Attach each component's service to the context (one line per component)."""
    from custodes.authority import start_authority

    ctx.services["authority"] = start_authority(ctx)
    from custodes.coalition._service import start_coalition  # guards the authority's amendments

    ctx.services["coalition"] = start_coalition(ctx)
    from custodes.witness import start_publisher

    ctx.services["witness"] = start_publisher(ctx)
    from custodes.monitors import start_monitors

    ctx.services["monitors"] = start_monitors(ctx)
    from custodes.custody._service import build_registry

    ctx.services["custody"] = build_registry(ctx)
    from custodes.gateway import build_gateway  # last: it uses authority and monitors

    ctx.services["gateway"] = build_gateway(ctx)


def _include_routes(app: FastAPI) -> None:
    """One line per component's routes module."""
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
    from custodes.dashboard import install_dashboard
    from custodes.server.routes import gateway

    install_dashboard(app)  # the overseers' pages under /dashboard
    gateway.install(app)  # the /v1 routes and the raw-path guard in front of all routing
