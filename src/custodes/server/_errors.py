"""One JSON error shape for the whole API (the gateway answers in OpenAI's shape instead).

::

    {"error": {"code": "invalid_input", "message": "...", "where": "...",
               "expected": "...", "actual": "..."}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from custodes.errors import Error

__all__ = ["error_body", "error_response", "install_error_handlers"]

_log = logging.getLogger(__name__)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one JSON error shape: ``{"error": {"code", "message", ...}}`` (None fields left out)."""
    return {
        "error": {
            "code": code,
            "message": message,
            **{k: v for k, v in extra.items() if v is not None},
        }
    }


def _from_error(exc: Error) -> dict[str, Any]:
    return error_body(exc.code, exc.message, **exc.details())


def error_response(exc: Error) -> JSONResponse:
    """The one JSON error shape for a custodes error, with its status."""
    if exc.status >= 500:
        _log.error("%s: %s", type(exc).__name__, exc.message)
    return JSONResponse(_from_error(exc), status_code=exc.status)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with the one JSON error shape: custodes errors with their
    status, request validation as 422 with where and what, HTTP errors as themselves, and any
    other exception as a 500 that says nothing of the internals (the traceback goes to the log).
    """

    @app.exception_handler(Error)
    async def _custodes_error(_request: Request, exc: Error) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The first problem as the message and ``where``, and up to 20 listed: enough to fix
        # a request in one round, bounded for a body with thousands of bad fields.
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            error_body(
                "invalid_input",
                str(first.get("msg")),
                where=where or None,
                problems=[
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                    for e in errors[:20]
                ],
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: say so without leaking internals, and keep the traceback in logs.
        _log.exception("unhandled error")
        return JSONResponse(
            error_body("internal_error", "internal error; see the server log"), status_code=500
        )
