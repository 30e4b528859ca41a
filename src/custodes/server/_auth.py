"""Who is calling: the principal of a custodes API key, and whether the constitution lets
them write the log.

Keys are the gateway's (``custodes keys create``): ``Authorization: Bearer cust_...``. They are
looked up in the gateway's in-memory key cache: no database round trip on the hot append path;
a key revoked through this server is refused at once, one revoked elsewhere (the CLI, another
replica) within ``gateway_key_poll_ms``. Every route that needs a caller takes
:func:`authenticated_principal` as its FastAPI dependency (:data:`Principal`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from custodes.authority import Authority
from custodes.constitution import Constitution
from custodes.errors import Forbidden, NotFoundError, Unauthenticated
from custodes.server._deps import deployment_of

__all__ = ["Principal", "authenticated_principal", "principal_of_key", "require_log_writer"]

_EXPECTED = "Authorization: Bearer <custodes API key>"


async def authenticated_principal(request: Request) -> str:
    """The principal whose active API key came with ``request``.

    Raises:
        Unauthenticated: no key, several Authorization headers, another scheme, or a key that
            is unknown or revoked.
    """
    values = request.headers.getlist("authorization")
    # Two headers are refused, not resolved: a proxy and this server could each read a
    # different one, and act for two different callers.
    if len(values) != 1:
        raise Unauthenticated(
            "a custodes API key is required" if not values else "send exactly one API key",
            where="Authorization",
            expected=_EXPECTED,
            actual=f"{len(values)} Authorization headers" if values else "none",
        )
    scheme, _, key = values[0].partition(" ")
    key = key.strip()
    # The scheme is case-insensitive (RFC 9110 §11.1); the key itself is compared exactly.
    if scheme.lower() != "bearer" or not key:
        raise Unauthenticated(
            "the Authorization header must carry a bearer API key",
            where="Authorization",
            expected=_EXPECTED,
        )
    found = await principal_of_key(request, key)
    # One answer for unknown and revoked: a caller must not learn which keys once existed.
    if found is None:
        raise Unauthenticated(
            "the API key is unknown or revoked", where="Authorization", expected=_EXPECTED
        )
    return found


async def principal_of_key(request: Request, key: str) -> str | None:
    """The principal of an active API key, from the gateway's key cache; None if there is none.

    Raises:
        StoreError: the key had to be looked up in the database, and it failed.
    """
    return await deployment_of(request).gateway.principal_of(key)


def require_log_writer(authority: Authority, principal: str) -> None:
    """Check that the constitution in force lets ``principal`` append to the log: one of its
    roles is in ``log.append.roles``.

    Raises:
        Forbidden: no constitution is loaded, the principal is not in it, or none of its roles
            may append.
    """
    try:
        constitution: Constitution | None = authority.constitution
    except NotFoundError:
        constitution = None
    if constitution is None:
        # Fail closed: with no constitution nobody is allowed anything, appends included.
        raise Forbidden(
            "no constitution is loaded, so nobody may append to the log",
            where="Authorization",
            expected="a constitution whose log.append.roles names a role of the principal",
        )
    person = constitution.principals_by_id.get(principal)
    if person is None:
        raise Forbidden(
            f"{principal!r} is not a principal of constitution version {constitution.version}",
            where="Authorization",
            expected="the key of a principal of the constitution in force",
            actual=principal,
        )
    allowed = constitution.log_append_roles
    if person.roles.isdisjoint(allowed):
        raise Forbidden(
            f"{principal} may not append to the log",
            where="Authorization",
            expected="a principal with a role in log.append.roles: "
            + (", ".join(sorted(allowed)) or "(the constitution names none)"),
            actual=f"{principal} holds " + (", ".join(sorted(person.roles)) or "no roles"),
        )


Principal = Annotated[str, Depends(authenticated_principal)]
"""The caller's principal, as a route parameter (401 without an active custodes API key)."""
