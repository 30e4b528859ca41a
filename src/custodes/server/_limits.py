"""Bounded request bodies for every API route (see :mod:`custodes.bounds` for the limits).

FastAPI reads a body whole and parses JSON with the standard library, which recurses once per
level (a deep document is a ``RecursionError``, so a 500) and turns any integer into a Python
``int`` (one past 64 bits fails in the database, a 500 again). :class:`BoundedBodies` checks
every request body before routing: its size (by ``Content-Length`` before reading, else as it
arrives), and for JSON its nesting depth and integer range. A refusal is the one JSON error
shape, and is written to the server's log with the client's address.

The hot log routes and the gateway check their own bodies, against their own limits, before
this middleware would see them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.bounds import MAX_DEPTH, MAX_INT, check_json_bounds, read_body
from custodes.errors import InputError, TooLarge
from custodes.server._errors import error_response

__all__ = ["BoundedBodies"]

_log = logging.getLogger(__name__)

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_MAX_INT_DIGITS = len(str(MAX_INT))


class BoundedBodies:
    """Refuses request bodies over ``max_bytes``, and JSON bodies too deep or with integers
    outside 64 bits, before the app sees them; passes the checked bytes on unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole body (bounded), check it if it is JSON, then hand the app a
        ``receive`` that replays those bytes: the app parses exactly what was checked."""
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            body = await read_body(request, self.max_bytes)
            if body and _is_json(request):
                _check_json(body)
        except InputError as exc:
            client = scope.get("client") or ("?", 0)
            _log.warning(
                "refused %s %s from %s: %s (%s)",
                scope["method"],
                scope["path"][:200],
                client[0],
                exc.message,
                exc.where,
            )
            await error_response(exc)(scope, receive, send)
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the disconnect, when it comes

        await self.app(scope, replay, send)


def _is_json(request: Request) -> bool:
    """Whether the body is declared JSON: ``application/json`` or a ``+json`` suffix type
    (RFC 6839 section 3.1)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _check_json(body: bytes) -> None:
    """Raises: TooLarge (too deep), InputError (malformed, or an integer out of range)."""
    try:
        # The standard library's parser, as FastAPI's: it sees every integer exactly (orjson
        # would silently make a float of one past 64 bits). A document too deep for it is too
        # deep for FastAPI.
        data: Any = json.loads(body, parse_int=_bounded_int)
    except RecursionError as exc:
        raise TooLarge(
            "the JSON is nested too deeply",
            where="body",
            expected=f"at most {MAX_DEPTH} levels of arrays and objects",
        ) from exc
    except ValueError as exc:
        raise InputError(
            f"the body is not valid JSON: {str(exc)[:200]}",
            where="body",
            expected="a JSON document with integers from -2**63 to 2**63-1",
        ) from exc
    check_json_bounds(data, where="body")


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > _MAX_INT_DIGITS or not -MAX_INT - 1 <= int(text) <= MAX_INT:
        raise ValueError(f"the integer {text[:40]} is out of the signed 64-bit range")
    return int(text)
