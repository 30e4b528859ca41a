"""Bounded parsing at the edges: request bodies and decoded JSON have size, depth and
integer-range limits, checked before anything acts on them.

Why each limit:

- **Size.** A body is read only up to its route's limit; a larger ``Content-Length`` is refused
  before a byte of the body is read, and a chunked body as soon as it passes the limit.
- **Depth.** JSON nested deeper than :data:`MAX_DEPTH` is refused. Nothing custodes accepts is
  that deep (an OpenAI request with a tool's JSON Schema is a dozen levels), while deeper
  documents break recursive code further in: orjson refuses to encode past 254 levels, the
  standard library's parser and RFC 8785 canonicalisation recurse once per level.
- **Integers.** Every integer must fit a signed 64-bit column (:data:`MAX_INT`), what SQLite
  and PostgreSQL ``BIGINT`` hold; a larger one would fail in the database, not at the edge.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from custodes.errors import InputError, TooLarge

__all__ = ["MAX_DEPTH", "MAX_INT", "check_int", "check_json_bounds", "read_body"]

MAX_DEPTH = 64
MAX_INT = 2**63 - 1  # signed 64-bit: SQLite INTEGER and PostgreSQL BIGINT
_TWO_63 = 2.0**63


def check_json_bounds(
    value: Any, *, where: str = "body", max_depth: int = MAX_DEPTH, whole_floats: bool = False
) -> None:
    """Check decoded JSON for nesting depth and integer range, without recursion.

    With ``whole_floats``, a float of 2**63 or more in magnitude counts as an integer out of
    range too: orjson decodes an integer literal past 64 bits as a float, so that is how one
    arrives (no request custodes forwards has a use for such a number).

    Raises:
        TooLarge: nested deeper than ``max_depth``.
        InputError: an integer outside the signed 64-bit range.
    """
    if not isinstance(value, dict | list):
        _check_scalar(value, where, whole_floats)
        return
    # Iterative: the check itself must not be the thing a deep document overflows.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise TooLarge(
                "the JSON is nested too deeply",
                where=where,
                expected=f"at most {max_depth} levels of arrays and objects",
                actual=f"more than {max_depth}",
            )
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif type(child) is int or (whole_floats and type(child) is float):
                _check_scalar(child, where, whole_floats)


def _check_scalar(value: Any, where: str, whole_floats: bool = False) -> None:
    """Refuse an integer outside the signed 64-bit range (and, with ``whole_floats``, a float
    that big, which is how orjson decodes a longer integer literal).

    Raises:
        InputError: it is out of range.
    """
    # ``type(...) is`` rather than isinstance: a bool (an int to isinstance) is never out of
    # range.
    out = (type(value) is int and not -MAX_INT - 1 <= value <= MAX_INT) or (
        whole_floats and type(value) is float and abs(value) >= _TWO_63
    )
    if out:
        raise InputError(
            "a number is out of range",
            where=where,
            expected=f"integers from {-MAX_INT - 1} to {MAX_INT}",
            actual=str(value)[:40],
        )


def check_int(value: int, *, where: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """``value`` if ``minimum <= value <= maximum``.

    Raises:
        InputError: it is not.
    """
    if not minimum <= value <= maximum:
        raise InputError(
            "the number is out of range",
            where=where,
            expected=f"an integer from {minimum} to {maximum}",
            actual=str(value)[:40],
        )
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read only up to ``limit`` bytes.

    Raises:
        InputError: a malformed Content-Length.
        TooLarge: the body is longer than ``limit``.
    """
    length = request.headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit() and len(length) <= 19):
            raise InputError(
                "Content-Length is not a number", where="content-length", actual=length[:40]
            )
        if int(length) > limit:
            raise TooLarge(
                "the request body is too large",
                where="body",
                expected=f"at most {limit} bytes",
                actual=f"{length} bytes",
            )
        return await request.body()  # the server stops at Content-Length (h11/httptools)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                "the request body is too large", where="body", expected=f"at most {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)
