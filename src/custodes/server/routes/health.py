"""Liveness and version."""

from typing import Any

from fastapi import APIRouter, Request

from custodes import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> dict[str, Any]:
    ctx = request.app.state.context
    return {"status": "ok", "version": __version__, "log_size": ctx.log.size()}
