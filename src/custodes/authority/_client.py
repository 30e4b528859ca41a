"""The requester's and approver's side: build request objects, sign them, talk to the server.

Everything here runs where the private key is; only signatures leave it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from custodes.authority._signing import (
    SigningKey,
    approval_message,
    renewal_message,
    request_digest,
    request_message,
)
from custodes.errors import ApprovalError, Error, InputError, NotFoundError, PolicyDenied
from custodes.errors import Denial as _Denial
from custodes.log import format_time

__all__ = ["AuthorityClient", "new_request", "sign_approval", "sign_renewal", "sign_request"]

_MAX_AHEAD = 400 * 86_400  # a staging clock's limit, in seconds


def new_request(
    kind: str, *, constitution_version: int, requester: str, created: datetime, **fields: Any
) -> dict[str, Any]:
    """A request object with a fresh nonce; ``None`` fields are left out."""
    req: dict[str, Any] = {
        "kind": kind,
        "constitution_version": constitution_version,
        "requester": requester,
        # 128 random bits: two requests with the same fields still have different digests.
        "nonce": secrets.token_hex(16),
        "created": format_time(created),
    }
    req.update({k: v for k, v in fields.items() if v is not None})
    return req


def sign_request(request: Mapping[str, Any], key: SigningKey) -> str:
    """The requester's signature over ``custodes-request/v1`` and the request's digest."""
    return key.sign(request_message(request_digest(request)))


def sign_approval(request: Mapping[str, Any], key: SigningKey) -> tuple[str, str]:
    """Approve a request object: recompute its digest here (never trust the server's) and sign.

    Returns:
        the digest and the base64 signature.
    """
    # Recomputed here: a server that showed one request and asked to sign another is caught.
    digest = request_digest(request)
    return digest, key.sign(approval_message(digest))


def sign_renewal(
    request: Mapping[str, Any], key: SigningKey, renewed_at: datetime
) -> tuple[str, str]:
    """Renew one's own expired approval of a request object at ``renewed_at``.

    Returns:
        the renewal time as the server expects it (RFC 3339 UTC) and the base64 signature.
    """
    at = format_time(renewed_at)
    return at, key.sign(renewal_message(request_digest(request), at))


class AuthorityClient:
    """A thin HTTP client of ``/v1/authority`` and ``/v1/constitution``; errors come back as
    the custodes errors the server raised."""

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    @property
    def base_url(self) -> str:
        """The URL of the server this client calls."""
        return str(self._http.base_url)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> AuthorityClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The time to date a signed statement by: this machine's clock, plus the server's
        staging clock's offset when it runs one (``GET /staging/clock``; a staging deployment
        whose operator advanced it refuses a statement dated by the real time as stale).

        Raises:
            Error: the server cannot be reached, or its staging clock answer is malformed.
        """
        try:
            response = self._http.get("/staging/clock")
        except httpx.HTTPError as exc:
            raise Error(
                f"cannot reach the custodes server at {self._http.base_url}: {exc}",
                hint="is `custodes serve` running? (--server URL)",
            ) from exc
        real = datetime.now(UTC)
        if response.status_code == 404:  # mounted only on a staging deployment
            return real
        try:
            offset = response.json()["offset_seconds"] if response.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            offset = None
        # The staging clock runs at most 400 days ahead, never behind (custodes.clock).
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= _MAX_AHEAD:
            raise Error(
                f"the server's GET /staging/clock answered {response.status_code}: "
                f"{response.text[:200]}",
                hint='expected {"offset_seconds": 0 to 34560000}',
            )
        return real + timedelta(seconds=offset)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the API and return its JSON answer (None for an empty one).

        Args:
            method: the HTTP method.
            path: the path under the server's base URL (``/authority/requests``).
            **kwargs: passed to :meth:`httpx.Client.request` (``json=``, ``params=``).

        Raises:
            PolicyDenied, ApprovalError, NotFoundError, InputError: the error the server
                answered with, rebuilt with its fields.
            Error: the server cannot be reached, or answered with something else.
        """
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Error(
                f"cannot reach the custodes server at {self._http.base_url}: {exc}",
                hint="is `custodes serve` running? (--server URL)",
            ) from exc
        if response.status_code < 400:
            return response.json() if response.content else None
        try:
            err = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            raise Error(f"server answered {response.status_code}: {response.text[:200]}") from None
        raise _error_from(err, response.status_code)


def _error_from(err: Mapping[str, Any], status: int) -> Error:
    """The custodes error behind one JSON error answer (the server's one error shape)."""
    code = err.get("code", "")
    message = str(err.get("message", "error"))
    # Map the server's JSON error back to the exception it raised, so callers handle one type.
    if code == "policy_denied":
        return PolicyDenied(
            message, reasons=[_Denial(r["rule"], r["missing"]) for r in err.get("reasons", [])]
        )
    if code == "invalid_approval":
        return ApprovalError(message, hint=err.get("hint"))
    if status == 404:
        return NotFoundError(message, where=err.get("where"))
    if 400 <= status < 500:
        problems = err.get("problems")
        return InputError(
            message + ("".join(f"\n  {p}" for p in problems) if problems else ""),
            where=err.get("where"),
            expected=err.get("expected"),
            actual=err.get("actual"),
            hint=err.get("hint"),
        )
    return Error(message, hint=err.get("hint"))
