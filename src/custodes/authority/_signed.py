"""Checks of a signed request object before anything is logged: its shape and bounds, its
freshness, its constitution version, and its signer's signature over its RFC 8785 digest.

Every request, revocation, break-glass use and amendment proposal comes in as such an object.
A check that fails leaves no log entry (invariant 1 is never claimed for what did not happen).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from custodes.authority._signing import (
    decode_signature,
    request_digest,
    request_message,
    verify_signature,
)
from custodes.authority._state import AuthorityState
from custodes.constitution import Principal
from custodes.errors import ApprovalError, InputError
from custodes.log import format_time, parse_time

__all__ = ["Purpose", "SignedRequest", "check_bounded", "check_signed", "purpose_and_duration"]

_NONCE_CHARS = frozenset("0123456789abcdef")
_COMMON_FIELDS = frozenset({"kind", "constitution_version", "requester", "nonce", "created"})
# The fields each kind may carry: an unknown field is refused rather than ignored, so a signer
# never signs something the server would read differently from them.
_REQUEST_FIELDS: dict[str, frozenset[str]] = {
    "grant": _COMMON_FIELDS | {"capability", "purpose", "duration_seconds"},
    "escrow-read": _COMMON_FIELDS | {"capability", "purpose", "duration_seconds", "resource"},
    "revocation": _COMMON_FIELDS | {"grant", "reason"},
    "break-glass": _COMMON_FIELDS | {"capability", "rule", "purpose", "duration_seconds"},
    "amendment": _COMMON_FIELDS | {"amendment", "acknowledgements", "purpose"},
    "withdrawal": _COMMON_FIELDS | {"request_id", "reason"},
}
_MAX_REQUEST_DEPTH = 8
_MAX_REQUEST_NODES = 2000
_MAX_STRING = 4096
# RFC 7493 §2.2 (I-JSON): integers beyond ±(2**53 - 1) do not survive every JSON parser.
_INT_BOUND = 1 << 53


@dataclass(frozen=True)
class SignedRequest:
    """A request object that passed :func:`check_signed`, its digest and who signed it."""

    request: dict[str, Any]
    digest: str
    signer: Principal


class Purpose(NamedTuple):
    """A request's stated purpose and the duration it asks for, in seconds."""

    purpose: str
    seconds: int


def check_signed(
    state: AuthorityState, request: Mapping[str, Any], signature: str, *, kinds: Iterable[str]
) -> SignedRequest:
    """The checks every signed object passes: one of ``kinds``, only that kind's fields,
    bounded, made under the active constitution version, fresh (within the request skew, with
    a well-formed nonce), and signed by its requester's key over ``custodes-request/v1``.

    Raises:
        InputError: malformed, stale, or made under another constitution version.
        ApprovalError: the signature does not verify under the requester's key.
        NotFoundError: the requester is not a principal.
    """
    # Raises NotFoundError with no constitution: nothing can be requested then.
    c = state.constitution
    if not isinstance(request, Mapping):
        raise InputError("request must be an object", where="request")
    req = dict(request)
    kind = req.get("kind")
    kinds = tuple(kinds)
    if kind not in kinds:
        raise InputError(
            f"unexpected request kind {kind!r}",
            where="request.kind",
            expected=" or ".join(kinds),
        )
    # Sorted: the same bad request always names the same field.
    unknown = sorted(set(req) - _REQUEST_FIELDS[kind])
    if unknown:
        raise InputError(
            f"unknown field {unknown[0]!r} in a {kind} request",
            where=f"request.{unknown[0]}",
            expected="one of: " + ", ".join(sorted(_REQUEST_FIELDS[kind])),
        )
    check_bounded(req)
    for name, value in req.items():
        # Top-level fields are of the JSON types a signer's tools agree on; booleans, floats
        # and nulls are refused (check_bounded has bounded every string and integer already).
        if not isinstance(value, str | int | list | dict) or isinstance(value, bool):
            raise InputError(
                "request fields are strings, integers, lists or objects",
                where=f"request.{name}",
                actual=repr(value)[:100],
            )
    if req.get("constitution_version") != c.version:
        raise InputError(
            "the request names another constitution version",
            where="request.constitution_version",
            expected=str(c.version),
            actual=repr(req.get("constitution_version")),
        )
    nonce = req.get("nonce")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64 or set(nonce) - _NONCE_CHARS:
        raise InputError(
            "malformed nonce",
            where="request.nonce",
            expected="16 to 64 lowercase hex digits",
            actual=repr(nonce),
        )
    created_text = req.get("created")
    created = parse_time(
        created_text if isinstance(created_text, str) else "", where="request.created"
    )
    now = state.clock.now()
    # Freshness bounds how long a signed object can be held back and replayed; the digest
    # (nonce included) is refused a second time by the request table.
    if abs(now - created) > state.request_skew:
        raise InputError(
            "the request's created time is too far from the server's clock",
            where="request.created",
            expected=f"within {state.request_skew} of {format_time(now)}",
            actual=created_text,
        )
    requester_id = req.get("requester")
    if not isinstance(requester_id, str):
        raise InputError("requester missing", where="request.requester")
    requester = state.principal(requester_id)
    if requester.public_key is None:
        raise InputError(
            f"{requester_id} has no key in the constitution",
            where="request.requester",
            expected="a principal with an Ed25519 key, who signs the request",
        )
    # RFC 8785: signer and server compute the same bytes from the same object.
    digest = request_digest(req)
    sig = decode_signature(signature)
    if not verify_signature(requester.public_key, request_message(digest), sig):
        raise ApprovalError(
            f"the request's signature does not verify under {requester_id}'s key",
            hint="sign custodes-request/v1 over the request's digest",
        )
    return SignedRequest(req, digest, requester)


def check_bounded(request: Mapping[str, Any]) -> None:
    """A signed request object is small and shallow: at most 8 levels and 2000 values, every
    string at most 4096 characters, every integer within I-JSON's range (RFC 7493 §2.2).

    Raises:
        InputError: it is not; ``where`` names the first value out of bounds.
    """
    todo: list[tuple[Any, str, int]] = [(request, "request", 0)]
    seen = 0
    while todo:
        value, where, depth = todo.pop()
        seen += 1
        if seen > _MAX_REQUEST_NODES:
            raise InputError(
                "the request object is too large",
                where="request",
                expected=f"at most {_MAX_REQUEST_NODES} values",
            )
        if depth > _MAX_REQUEST_DEPTH:
            raise InputError(
                "the request object is nested too deeply",
                where=where,
                expected=f"at most {_MAX_REQUEST_DEPTH} levels",
            )
        if isinstance(value, Mapping):
            todo.extend((v, f"{where}.{str(k)[:64]}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, str) and len(value) > _MAX_STRING:
            raise InputError(
                "field too long", where=where, expected=f"at most {_MAX_STRING} characters"
            )
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not -_INT_BOUND < value < _INT_BOUND
        ):
            raise InputError(
                "integer out of range",
                where=where,
                expected="an integer within +-(2**53 - 1) (RFC 7493 §2.2)",
            )


def purpose_and_duration(req: Mapping[str, Any]) -> Purpose:
    """The request's ``purpose`` (may be empty) and positive ``duration_seconds``.

    Raises:
        InputError: the purpose is not a string of at most 2000 characters, or the duration
            is not a positive integer.
    """
    purpose = req.get("purpose", "")
    if not isinstance(purpose, str) or len(purpose) > 2000:
        raise InputError(
            "purpose must be a string of at most 2000 characters", where="request.purpose"
        )
    duration = req.get("duration_seconds")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
        raise InputError(
            "duration_seconds must be a positive integer",
            where="request.duration_seconds",
            actual=repr(duration),
        )
    return Purpose(purpose, duration)
