"""The gateway's OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models.

Requests reach these only through :class:`custodes.gateway.GatewayGuard` (installed with the
routes by :func:`install`), which refuses every other request line in the gateway's space.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from custodes.gateway import Gateway, GatewayGuard

__all__ = ["install", "router"]

router = APIRouter(tags=["gateway"])


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.context.services["gateway"]
    return gateway


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await _gateway(request).chat_completions(request)


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    return await _gateway(request).embeddings(request)


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    return await _gateway(request).list_models(request)


def install(app: FastAPI) -> None:
    """Add the routes and the raw-path guard in front of all routing."""
    app.include_router(router)
    app.add_middleware(GatewayGuard)
