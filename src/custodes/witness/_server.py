"""The witness's HTTP server (C2SP tlog-witness), a separate process from the log server.

``POST /add-checkpoint`` speaks the protocol byte for byte: plain-text bodies, the protocol's
status codes, ``text/x.tlog.size`` for 409. ``GET /`` describes the witness (name, verifier key,
logs and sizes held) and ``GET /evidence`` lists evidence of equivocation as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from custodes.witness._protocol import MAX_BODY_BYTES
from custodes.witness._witness import AddCheckpointError, Witness

__all__ = ["create_witness_app"]

_log = logging.getLogger(__name__)


class _TooLarge(Exception):
    """The request body is over the limit (answered 413)."""


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, read no further than ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read, and a
    chunked body as soon as it passes the limit, so a client cannot make the witness buffer
    more than ``limit`` bytes.

    Raises:
        _TooLarge: the body is (or declares itself) over ``limit``.
    """
    length = request.headers.get("content-length")
    # ASCII digits only: str.isdigit alone passes "²", which int() would then fail on.
    if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > limit):
        raise _TooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_witness_app(witness: Witness) -> Starlette:
    """The witness's ASGI app; it starts and stops ``witness``'s committer with its lifespan.

    Args:
        witness: the witness whose checkpoints the app takes and cosigns.

    Returns:
        The Starlette app: ``POST /add-checkpoint``, ``GET /`` and ``GET /evidence``.
    """

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        witness.start()
        try:
            yield
        finally:
            witness.close()

    async def add_checkpoint(request: Request) -> Response:
        """C2SP tlog-witness ``add-checkpoint``: the cosignature lines, or the protocol's
        error status with its plain-text body."""
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
        except _TooLarge:
            return PlainTextResponse(f"request body over {MAX_BODY_BYTES} bytes\n", status_code=413)
        try:
            future = witness.submit(body)
            lines = await asyncio.wrap_future(future)
        except AddCheckpointError as exc:
            if exc.status >= 500:
                _log.error("add-checkpoint failed: %s", exc.message)
            # The media type is set verbatim: C2SP tlog-witness names exactly
            # "text/x.tlog.size" for 409, which a charset parameter would change.
            return Response(
                exc.body.encode(),
                status_code=exc.status,
                headers={"Content-Type": exc.content_type},
            )
        except Exception:  # a bug, not bad input: never a traceback to the client
            _log.exception("add-checkpoint: unexpected error")
            return PlainTextResponse("internal error\n", status_code=500)
        return PlainTextResponse(lines)

    async def info(_request: Request) -> Response:
        """The witness's name, verifier key, and each log's keys and held size."""
        sizes = await asyncio.to_thread(witness.held_sizes)
        return JSONResponse(
            {
                "name": witness.name,
                "verifier_key": witness.verifier.to_key(),
                "logs": [
                    {"origin": o, "keys": [k.to_key() for k in keys], "size": sizes.get(o)}
                    for o, keys in sorted(witness.logs.items())
                ],
            }
        )

    async def evidence(_request: Request) -> Response:
        """Every stored evidence document, oldest first."""
        items = await asyncio.to_thread(witness.evidence)
        return JSONResponse([json.loads(e.to_json()) for e in items])

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/", info, methods=["GET"]),
            Route("/evidence", evidence, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
