"""The log's HTTP API: appends, the C2SP tlog-tiles read API, JSON proofs and receipts.

C2SP paths (``/checkpoint``, ``/tile/<L>/<N>[.p/<W>]``, ``/tile/entries/<N>[.p/<W>]``) serve the
exact bytes tile-reading clients expect. JSON endpoints live under ``/log/``; hashes in them are
base64 (as in checkpoints and C2SP proofs), entries are the decoded canonical JSON objects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from custodes.bounds import MAX_INT, check_int, check_json_bounds, read_body
from custodes.entry_types import CLIENT_TYPES, client_may_append
from custodes.errors import Forbidden, InputError, NotFoundError, ParameterError, TooLarge
from custodes.log import (
    APPEND_DENIED,
    TILE_WIDTH,
    AppendDenied,
    Entry,
    TransparencyLog,
    entry_types,
    parse_tile_path,
)
from custodes.server._auth import authenticated_principal, require_log_writer
from custodes.server._deps import deployment_of
from custodes.server._hot import Endpoint
from custodes.wiring import all_entry_types

router = APIRouter(tags=["log"])
_logger = logging.getLogger(__name__)

try:
    all_entry_types()  # appends are validated against every package's registered entry types
except ImportError:
    # Fail closed: types that could not be loaded are refused as unknown; the log still works.
    _logger.exception("some packages' log entry types could not be loaded")

MAX_BATCH = 1000
_MAX_BODY = 1000 * 0x10000  # a full batch of the largest entries a tile bundle can carry
_MAX_RANGE = 1000
# Below this a batch is parsed on the event loop: the hop to a thread costs more than parsing.
_INLINE_BODY = 16 * 1024
_IMMUTABLE = "public, max-age=31536000, immutable"  # full tiles never change (tlog-tiles)


def _log(request: Request) -> TransparencyLog:
    """The deployment's transparency log."""
    return deployment_of(request).log


def _json(content: Any, status: int = 200) -> Response:
    """``content`` as a JSON response (orjson: the hot paths skip FastAPI's encoder)."""
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _b64(data: bytes) -> str:
    """``data`` in standard base64, as the log's JSON writes hashes."""
    return base64.b64encode(data).decode()


_CLIENT_FIELDS = {"type", "body", "principal"}


def _client_entry(item: Any, where: str, *, principal: str, now: datetime) -> Entry:
    """One entry a client sent, as the canonical bytes the log will hold: the authenticated
    principal and the server's clock, never the body's (a client cannot backdate an entry or
    speak for someone else)."""
    if not isinstance(item, dict):
        raise InputError("entry must be a JSON object", where=where, actual=type(item).__name__)
    if "time" in item:
        raise InputError(
            "an entry's time is the server's clock; leave it out",
            where=f"{where}.time",
            expected="an entry with type and body (and optionally principal)",
        )
    if not set(item) <= _CLIENT_FIELDS or not {"type", "body"} <= set(item):
        raise InputError(
            "entry has the wrong fields",
            where=where,
            expected="type and body, and optionally principal",
            actual=", ".join(sorted(map(str, item))),
        )
    claimed = item.get("principal", principal)
    if claimed != principal:
        raise Forbidden(
            "an entry names the principal that appends it",
            where=f"{where}.principal",
            expected=f"the API key's principal {principal!r} (or leave it out)",
            actual=repr(claimed)[:256],
        )
    kind = item["type"]
    if not isinstance(kind, str) or kind not in entry_types():
        raise InputError(
            f"unknown entry type {repr(kind)[:128]}",
            where=f"{where}.type",
            expected="one of: " + ", ".join(sorted(CLIENT_TYPES)),
        )
    if not client_may_append(kind):
        raise Forbidden(
            f"entries of type {kind} are written only by custodes itself",
            where=f"{where}.type",
            expected="one of: " + ", ".join(sorted(CLIENT_TYPES)),
            actual=kind,
        )
    if not isinstance(item["body"], dict):
        raise InputError("body must be a JSON object", where=f"{where}.body")
    try:
        entry = Entry.create(kind, time=now, principal=principal, body=item["body"])
    except InputError as exc:
        if exc.where and not exc.where.startswith(where):
            exc.where = f"{where}.{exc.where}"
        raise
    entry.to_json()  # encoded here (off the event loop for a big batch); the log reuses it
    return entry


def _parse_entries(body: bytes, *, principal: str, now: datetime) -> list[Entry]:
    """Every entry of an append request, checked in full before any is written.

    Raises:
        InputError: the body is malformed or an entry is invalid.
        TooLarge: too big, too deep, or too many entries.
        Forbidden: an entry names another principal or a type only custodes writes.
    """
    if len(body) > _MAX_BODY:
        raise TooLarge(
            "request body is too large",
            where="body",
            expected=f"at most {_MAX_BODY} bytes",
            actual=f"{len(body)} bytes",
        )
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body is not valid JSON: {exc}", where="body") from exc
    if isinstance(decoded, dict) and set(decoded) == {"entries"}:
        items, prefix = decoded["entries"], "entries"
    elif isinstance(decoded, list):
        items, prefix = decoded, "entries"
    else:
        items, prefix = [decoded], ""
    if not isinstance(items, list) or not items:
        raise InputError(
            "no entries to append",
            where="entries",
            expected='an entry object, a non-empty array, or {"entries": [...]}',
        )
    if len(items) > MAX_BATCH:
        raise InputError(
            "too many entries in one request",
            where="entries",
            expected=f"at most {MAX_BATCH}",
            actual=str(len(items)),
        )
    # Depth and sizes bounded before any entry is built from it: the body is a stranger's.
    check_json_bounds(decoded, where="body")
    return [
        _client_entry(item, f"{prefix}[{i}]" if prefix else "entry", principal=principal, now=now)
        for i, item in enumerate(items)
    ]


async def append_entries(request: Request) -> Response:
    """Append one entry or a batch of up to 1,000; answers 201 once they are durable.

    Only a caller with an API key whose principal holds a role in the constitution's
    ``log.append.roles`` may append, and only entry types a client may write
    (:data:`custodes.entry_types.CLIENT_TYPES`); each entry is stamped with that principal
    and the server's clock. Every check runs before anything is submitted: a refused request
    writes nothing.

    The hottest route of the server, so it is a plain Starlette route: the raw body is parsed
    once with orjson and each entry validated once, without FastAPI's per-request dependency
    and body machinery. Errors are custodes errors, turned into the one JSON error shape.
    """
    principal = await authenticated_principal(request)
    log = _log(request)
    body = b""
    try:
        # The right to append is checked before the body is read: a caller without it cannot
        # make the server buffer a full batch first.
        require_log_writer(deployment_of(request).authority, principal)
        body = await read_body(request, _MAX_BODY)
        now = deployment_of(request).clock.now()
        # A big batch is validated off the event loop, so small appends and reads arriving
        # meanwhile are not stuck behind it (fairness; the GIL still shares one core).
        data = (
            _parse_entries(body, principal=principal, now=now)
            if len(body) < _INLINE_BODY
            else await asyncio.to_thread(_parse_entries, body, principal=principal, now=now)
        )
    except Forbidden as exc:
        # A known caller tried what they may not (a custodes-only type, another principal's
        # name, or no append right at all): the refusal is itself logged, naming the denial,
        # so the attempt is seen; nothing they sent is written but its digest and types.
        await _log_denial(request, log, principal, exc, body)
        raise
    # wait=False and awaited: the sequencer thread makes the batch durable while the loop
    # serves other requests; 201 is sent only once it is.
    appended = await asyncio.wrap_future(log.append_batch(data, wait=False))
    return _json(
        {"entries": [{"index": a.index, "leaf_hash": _b64(a.leaf_hash)} for a in appended]},
        status=201,
    )


async def _log_denial(
    request: Request, log: TransparencyLog, principal: str, exc: Forbidden, body: bytes
) -> None:
    """Record a refused append in the log (``log.append_denied/v1``: who, why, the request's digest
    and the types it named), without waiting and without failing the refusal if the log cannot
    take it.
    """
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = None
    items = decoded.get("entries") if isinstance(decoded, dict) else decoded
    items = items if isinstance(items, list) else [decoded] if decoded is not None else []
    types = sorted({str(i.get("type"))[:128] for i in items if isinstance(i, dict)})[:20]
    denial = Entry.create(
        APPEND_DENIED,
        time=deployment_of(request).clock.now(),
        principal=principal,
        body=AppendDenied(
            code=exc.code,
            reason=exc.message[:2000],
            where=exc.where[:256] if exc.where else None,
            request_sha256=hashlib.sha256(body).hexdigest(),
            types=types,
        ),
    )
    try:
        await asyncio.wrap_future(log.append_batch([denial], wait=False))
    except Exception:  # the refusal stands either way; the log's own error is reported there
        _logger.exception("the refused append by %s could not be logged", principal)


router.add_route("/log/entries", append_entries, methods=["POST"], include_in_schema=False)


async def checkpoint(request: Request) -> Response:
    """The newest signed checkpoint (C2SP tlog-checkpoint as a signed note)."""
    return Response(
        _log(request).checkpoint_text(),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


router.add_route("/checkpoint", checkpoint, methods=["GET"], include_in_schema=False)


@router.get(
    "/log/key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def log_key(request: Request) -> PlainTextResponse:
    """The log's verifier (public) key, ``<name>+<key id>+<base64>`` (C2SP signed-note vkey).

    Checkpoints, receipts and ``custodes log verify --key`` are checked with it. Fetching it
    from the log itself is trust on first use: pin the key you got and compare it with one
    published out of band (the constitution, the operator's website).
    """
    return PlainTextResponse(
        _log(request).signer.verifier.to_key() + "\n",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/tile/{level}/{rest:path}")
async def tile(request: Request, level: str, rest: str) -> Response:
    """A hash tile or an entry bundle (C2SP tlog-tiles).
    \f
    Raises:
        InputError: the path is not a tlog-tiles tile path.
        NotFoundError: the tile lies past the log's current size.
    """
    path = parse_tile_path(level, rest)
    if path.index > MAX_INT // TILE_WIDTH:  # past any tile a 64-bit log can have
        raise NotFoundError(
            f"tile {path.index} does not exist",
            where="path",
            expected="a tile within the log's current size",
        )
    log = _log(request)
    if path.level < 0:
        data = log.entry_bundle(path.index, path.width)
    else:
        data = log.tile(path.level, path.index, path.width)
    cache = _IMMUTABLE if path.width == TILE_WIDTH else "no-cache"
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})


def _entry_json(index: int, data: bytes) -> dict[str, Any]:
    """Entry ``index`` as the API returns it: its leaf hash (RFC 9162 §2.1.1) and the entry."""
    from custodes.log import leaf_hash

    return {"index": index, "leaf_hash": _b64(leaf_hash(data)), "entry": orjson.loads(data)}


@router.get("/log/entries")
async def entries(
    request: Request,
    start: int = Query(ge=0, le=MAX_INT, description="First index."),
    end: int | None = Query(default=None, ge=1, le=MAX_INT, description="One past the last index."),
) -> Response:
    """Entries ``start <= index < end`` (at most 1,000; clipped to the log's size).
    \f
    Raises:
        InputError: ``end`` is not after ``start``, or more than 1,000 past it.
        NotFoundError: ``start`` is at or past the log's size.
    """
    end = start + 100 if end is None else end
    if end <= start or end - start > _MAX_RANGE:
        raise InputError(
            "bad index range",
            where="end",
            expected=f"start < end <= start + {_MAX_RANGE}",
            actual=str(end),
        )
    log = _log(request)
    rows = log.entries(start, end)
    if not rows and start >= log.size():
        raise NotFoundError(
            f"no entries from index {start}",
            where="start",
            expected=f"start < {log.size()}",
            actual=str(start),
        )
    return _json({"entries": [_entry_json(i, d) for i, d in rows]})


@router.get("/log/entries/{index}")
async def entry(request: Request, index: int) -> Response:
    """One entry, its leaf hash and index.
    \f
    Raises:
        InputError: ``index`` is negative or past a 64-bit integer.
        NotFoundError: the log has no entry ``index``.
    """
    if index < 0:
        raise InputError("index must not be negative", where="index", actual=str(index))
    check_int(index, where="index")  # the database holds 64-bit indices
    return _json(_entry_json(index, _log(request).entry_data(index)))


def _size_or_latest(log: TransparencyLog, size: int | None) -> int:
    """``size``, or the newest checkpoint's size when none is given.

    Raises:
        NotFoundError: no size given and the log is still empty.
    """
    if size is not None:
        return size
    latest = log.checkpoint_size()
    if latest == 0:
        raise NotFoundError("the log is empty: there is nothing to prove", where="size")
    return latest


def _parse_hash(text: str, where: str) -> bytes:
    """A 32-byte hash given as hex or base64 (standard or URL-safe).

    Raises:
        InputError: it is neither, or not 32 bytes.
    """
    try:
        value = (
            bytes.fromhex(text)
            if len(text) == 64
            else base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        )
    except (ValueError, binascii.Error) as exc:
        raise InputError(
            "not a hash", where=where, expected="32 bytes as hex or base64", actual=text
        ) from exc
    if len(value) != 32:
        raise InputError(
            "not a hash", where=where, expected="32 bytes as hex or base64", actual=text
        )
    return value


def _query_int(request: Request, name: str, *, minimum: int, required: bool = False) -> int | None:
    """Query parameter ``name`` as an integer >= ``minimum`` (None when absent and optional)."""
    text = request.query_params.get(name)
    where = f"query.{name}"
    if text is None:
        if required:
            raise ParameterError("Field required", where=where, expected="an integer")
        return None
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19):
        raise ParameterError(
            "Input should be a valid integer",
            where=where,
            expected="a decimal integer",
            actual=text[:80],
        )
    value = int(text)
    if value > MAX_INT:  # what a 64-bit database column holds
        raise ParameterError(
            f"Input should be less than or equal to {MAX_INT}",
            where=where,
            expected=f"an integer from {minimum} to {MAX_INT}",
            actual=text,
        )
    if value < minimum:
        raise ParameterError(
            f"Input should be greater than or equal to {minimum}",
            where=where,
            expected=f"an integer >= {minimum}",
            actual=text,
        )
    return value


async def inclusion(request: Request) -> Response:
    """RFC 9162 inclusion proof of an entry (by index or leaf hash) in the tree of ``size``.

    Query: ``index`` (>= 0) or ``leaf_hash`` (hex or base64), and ``size`` (>= 1; default:
    the newest checkpoint's). Answers ``{"index", "size", "leaf_hash", "proof"}``.

    Raises:
        InputError: neither or both of ``index`` and ``leaf_hash``, or a malformed hash.
        ParameterError: ``index`` or ``size`` is not an integer in range.
        NotFoundError: no entry has that leaf hash, ``size`` is not a size of this log, or
            the index is not below it.
    """
    log = _log(request)
    index = _query_int(request, "index", minimum=0)
    size = _query_int(request, "size", minimum=1)
    leaf_text = request.query_params.get("leaf_hash")
    if (index is None) == (leaf_text is None):
        raise InputError(
            "give exactly one of index and leaf_hash",
            where="query",
            expected="index=<n> or leaf_hash=<hash>",
        )
    if leaf_text is not None:
        index = log.index_of(_parse_hash(leaf_text, "leaf_hash"))
    assert index is not None
    tree_size = _size_or_latest(log, size)
    leaf, proof = log.inclusion(index, tree_size)
    return _json(
        {
            "index": index,
            "size": tree_size,
            "leaf_hash": _b64(leaf),
            "proof": [_b64(p) for p in proof],
        }
    )


async def consistency(request: Request) -> Response:
    """RFC 9162 consistency proof between two tree sizes.

    Query: ``size1`` (>= 1, the older size) and ``size2`` (>= 1; default: the newest
    checkpoint's). Answers ``{"size1", "size2", "proof"}``.
    """
    size1 = _query_int(request, "size1", minimum=1, required=True)
    size2 = _query_int(request, "size2", minimum=1)
    assert size1 is not None
    log = _log(request)
    newer = _size_or_latest(log, size2)
    proof = log.consistency_proof(size1, newer)
    return _json({"size1": size1, "size2": newer, "proof": [_b64(p) for p in proof]})


router.add_route("/log/proof/inclusion", inclusion, methods=["GET"], include_in_schema=False)
router.add_route("/log/proof/consistency", consistency, methods=["GET"], include_in_schema=False)


def _int_param(
    name: str, minimum: int, description: str, *, required: bool = False
) -> dict[str, Any]:
    """The OpenAPI description of an integer query parameter (for the plain Starlette routes FastAPI
    does not describe).
    """
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum},
    }


def _operation(
    summary: str, parameters: list[dict[str, Any]], media: str, ok: str = "200"
) -> dict[str, Any]:
    """The OpenAPI description of one plain Starlette route."""
    return {
        "tags": ["log"],
        "summary": summary,
        "parameters": parameters,
        "responses": {
            ok: {"description": "OK", "content": {media: {}}},
            "4XX": {"description": "the one JSON error shape"},
        },
    }


# The plain routes above, described for the OpenAPI pages (FastAPI only describes its own).
OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/log/entries": {
        "post": {
            **_operation(
                "Append one entry or a batch of up to 1,000; answers once durable",
                [],
                "application/json",
                ok="201",
            ),
            "requestBody": {"required": True, "content": {"application/json": {}}},
        }
    },
    "/checkpoint": {
        "get": _operation("The newest signed checkpoint (C2SP tlog-checkpoint)", [], "text/plain")
    },
    "/log/proof/inclusion": {
        "get": _operation(
            "RFC 9162 inclusion proof of an entry, by index or leaf hash",
            [
                _int_param("index", 0, "The entry's index (or give leaf_hash)."),
                {
                    "name": "leaf_hash",
                    "in": "query",
                    "required": False,
                    "description": "The entry's leaf hash, hex or base64 (or give index).",
                    "schema": {"type": "string"},
                },
                _int_param("size", 1, "Tree size; default: the newest checkpoint's."),
            ],
            "application/json",
        )
    },
    "/log/proof/consistency": {
        "get": _operation(
            "RFC 9162 consistency proof between two tree sizes",
            [
                _int_param("size1", 1, "The older tree size.", required=True),
                _int_param("size2", 1, "The newer; default: the newest checkpoint's."),
            ],
            "application/json",
        )
    },
}

# The request lines the server answers before FastAPI's routing (see custodes.server._hot).
HOT_ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/log/entries"): append_entries,
    ("GET", "/checkpoint"): checkpoint,
    ("GET", "/log/proof/inclusion"): inclusion,
    ("GET", "/log/proof/consistency"): consistency,
}


@router.get("/log/receipt/{index}")
async def receipt(request: Request, index: int) -> Response:
    """A C2SP tlog-proof receipt for entry ``index``, verifiable offline with the log's key.
    \f
    Raises:
        InputError: ``index`` is negative or past a 64-bit integer.
        NotFoundError: the log has no entry ``index``.
    """
    from custodes.log import Receipt

    log = _log(request)
    if index < 0:
        raise InputError("index must not be negative", where="index", actual=str(index))
    check_int(index, where="index")
    data = log.entry_data(index)
    signed = log.latest_checkpoint()
    proof = log.inclusion_proof(index, signed.checkpoint.size)
    built = Receipt.build(index=index, proof=proof, checkpoint=signed, entry_data=data)
    return Response(built.to_text(), media_type="text/plain; charset=utf-8")
