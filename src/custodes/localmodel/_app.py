"""The local model's HTTP side: OpenAI's ``POST /v1/chat/completions`` and ``GET /v1/models``,
with OpenAI's error shape for a request it cannot take (never a traceback, never a 500 for bad
input); and, with an operator's token, ``PUT``/``DELETE /local/plant`` to serve a planted
loyalty or the base model again (what whoever runs the model server can do, and what a drill
does on a staging deployment). The gateway relays only ``/v1/chat/completions``: callers of the
deployment never reach the operator's routes."""

from __future__ import annotations

import hmac
from typing import Any, Protocol

import anyio
import anyio.to_thread
import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from custodes.errors import Error
from custodes.localmodel._plant import Plant
from custodes.localmodel._request import ChatRequest

__all__ = ["Completer", "Planter", "local_model_app"]

_MAX_BODY = 1 << 20  # 64 messages of 16 KiB


class Completer(Protocol):
    """What answers a chat completion (:class:`~custodes.localmodel.LocalModel`)."""

    def complete(self, request: ChatRequest) -> dict[str, Any]: ...


class Planter(Protocol):
    """What plants a loyalty in the served model and takes it out again."""

    def plant(self, plant: Plant) -> str: ...

    def unplant(self) -> None: ...


def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
    # OpenAI's error object: what the openai client (and the gateway) parse.
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": None,
            }
        },
        status_code=status,
    )


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise _Refused(413, f"the request body is {len(body)} bytes; at most {_MAX_BODY}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Refused(400, f"the request body is not JSON: {exc}") from None


class _Refused(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.response = _error(status, message, param)


def _invalid(exc: ValidationError) -> _Refused:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    return _Refused(400, f"{where or 'body'}: {first['msg']}", where)


def local_model_app(
    model: Completer,
    *,
    name: str = "smollm2",
    planter: Planter | None = None,
    token: str | None = None,
    workers: int = 32,
) -> Starlette:
    """The HTTP app serving ``model`` as the OpenAI model ``name``; with ``planter`` and the
    operator's ``token``, also ``PUT``/``DELETE /local/plant``.

    Completions run in worker threads (the model is CPU-bound), so the event loop keeps
    answering; up to ``workers`` at once, so that first-token requests arriving together reach
    the model together and are answered by one batched forward pass
    (:class:`~custodes.localmodel.LocalModel`).
    """
    # Its own limit, not the default thread pool's (a few threads on a small machine would cap
    # the batches an audit's concurrency can form).
    limiter = anyio.CapacityLimiter(workers)

    async def chat(request: Request) -> JSONResponse:
        try:
            parsed = ChatRequest.model_validate(await _json_body(request))
        except _Refused as refused:
            return refused.response
        except ValidationError as exc:
            return _invalid(exc).response
        return JSONResponse(await anyio.to_thread.run_sync(model.complete, parsed, limiter=limiter))

    def operator(request: Request) -> JSONResponse | None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _error(401, "planting takes the operator's token (Authorization: Bearer ...)")
        if token is None or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _error(403, "not the local model operator's token")
        return None

    async def plant(request: Request) -> JSONResponse:
        if (denied := operator(request)) is not None:
            return denied
        if planter is None:
            return _error(404, "this server does not plant")
        try:
            data = await _json_body(request)
            if not isinstance(data, dict):
                raise _Refused(400, "expected a JSON object: favour, others, seed, steps, layers")
            unknown = sorted(set(data) - {"favour", "others", "seed", "steps", "layers"})
            if unknown:
                raise _Refused(400, f"unknown fields: {', '.join(unknown)}", unknown[0])
            others = data.get("others")
            if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
                raise _Refused(400, "others: expected a list of names", "others")
            recipe = {k: data[k] for k in ("seed", "steps", "layers") if k in data}
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in recipe.values()):
                raise _Refused(400, "seed, steps and layers are integers")
            if not isinstance(data.get("favour"), str):
                raise _Refused(400, "favour: expected a name", "favour")
            wanted = Plant(data["favour"], tuple(others), **recipe)
        except _Refused as refused:
            return refused.response
        except Error as exc:
            return _error(400, exc.message, getattr(exc, "where", None))
        weights = await anyio.to_thread.run_sync(planter.plant, wanted, limiter=limiter)
        return JSONResponse({"weights": weights, "favour": wanted.favour})

    async def unplant(request: Request) -> JSONResponse:
        if (denied := operator(request)) is not None:
            return denied
        if planter is None:
            return _error(404, "this server does not plant")
        await anyio.to_thread.run_sync(planter.unplant, limiter=limiter)
        return JSONResponse({"weights": None})

    async def models(_: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local"}]}
        )

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    if planter is not None:
        routes.append(Route("/local/plant", plant, methods=["PUT"]))
        routes.append(Route("/local/plant", unplant, methods=["DELETE"]))
    return Starlette(routes=routes)
