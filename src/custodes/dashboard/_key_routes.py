"""Sign-in with the principal's own key (see :mod:`custodes.dashboard._key_sign_in`): two JSON
calls the ``custodes dashboard login`` command makes with the key, and the page where the
browser redeems the one-time code it printed (a CSRF-protected form, so no link alone signs a
browser in); or, in the page itself, a challenge shown with the command that signs it and a
form that takes the pasted signature (CSRF-protected too)."""

from __future__ import annotations

import asyncio
import shlex
from datetime import datetime

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from custodes import __version__
from custodes.authority import decode_signature
from custodes.constitution import encode_public_key
from custodes.dashboard._key_sign_in import Ticket, origin_of, sign_in_message
from custodes.dashboard._render import render
from custodes.dashboard._routes import (
    _CSRF_COOKIE,
    PREFIX,
    _checked_form,
    _key_sign_in,
    _open_session,
    _page,
    _public_key,
    _sign_in_page,
    router,
)
from custodes.dashboard._sessions import new_token
from custodes.errors import Error, Forbidden, InputError
from custodes.log import format_time

__all__ = ["ChallengeIn", "ChallengeOut", "SignedChallengeIn", "SignInCodeOut"]

_PRINCIPAL = Field(min_length=1, max_length=256)
_TOKEN = Field(min_length=1, max_length=100)


class ChallengeIn(BaseModel):
    """Who wants to sign in with their key."""

    model_config = ConfigDict(extra="forbid")
    principal: str = _PRINCIPAL


class ChallengeOut(BaseModel):
    """A challenge to sign: ``message`` is exactly the bytes to sign (UTF-8 of ASCII)."""

    principal: str
    challenge: str
    origin: str
    message: str
    expires_at: str


class SignedChallengeIn(BaseModel):
    """The challenge, signed with the principal's key (base64 Ed25519 signature)."""

    model_config = ConfigDict(extra="forbid")
    principal: str = _PRINCIPAL
    challenge: str = _TOKEN
    signature: str = Field(min_length=1, max_length=200)


class SignInCodeOut(BaseModel):
    """A one-time code for the browser: open ``url`` (under this server) within two minutes."""

    principal: str
    code: str
    url: str
    expires_at: str


def _origin(request: Request) -> str:
    """This server's origin as the caller reached it (what the signed message must name)."""
    return origin_of(str(request.url))


def _key_of(request: Request, principal: str) -> bytes:
    """``principal``'s key in the constitution in force.

    Raises:
        Forbidden: the principal is not in it, or has no key there.
    """
    key = _public_key(request, principal)
    if key is None:
        raise Forbidden(
            f"{principal} has no key in the constitution in force",
            where="principal",
            expected="a principal whose constitution entry has a key (or sign in with an API key)",
        )
    return key


def _when(at: datetime) -> str:
    """``at`` as the JSON answers write times (RFC 3339 UTC)."""
    return format_time(at)


@router.post("/key-sign-in/challenge", status_code=201)
async def key_challenge(request: Request, body: ChallengeIn) -> JSONResponse:
    """A fresh challenge for ``principal`` to sign with their own key (two minutes)."""
    key = _key_of(request, body.principal)
    ticket = await asyncio.to_thread(_key_sign_in(request).challenge, body.principal, key)
    origin = _origin(request)
    message = sign_in_message(origin=origin, principal=body.principal, challenge=ticket.token)
    out = ChallengeOut(
        principal=body.principal,
        challenge=ticket.token,
        origin=origin,
        message=message.decode("ascii"),
        expires_at=_when(ticket.expires_at),
    )
    return JSONResponse(out.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


@router.post("/key-sign-in/answer", status_code=201)
async def key_answer(request: Request, body: SignedChallengeIn) -> JSONResponse:
    """Check a signed challenge; a one-time sign-in code for the browser."""
    signature = decode_signature(body.signature)
    key = _key_of(request, body.principal)
    ticket = await asyncio.to_thread(
        lambda: _key_sign_in(request).answer(
            principal=body.principal,
            challenge=body.challenge,
            signature=signature,
            origin=_origin(request),
            public_key=key,
        )
    )
    out = SignInCodeOut(
        principal=body.principal,
        code=ticket.token,
        url=f"{PREFIX}/sign-in/code?code={ticket.token}",
        expires_at=_when(ticket.expires_at),
    )
    # no-store: the code signs a browser in, so no proxy or cache may keep a copy of it.
    return JSONResponse(out.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/sign-in/code")
async def sign_in_code_form(request: Request) -> Response:
    """Confirm signing in with a one-time code (nothing happens until the form is sent)."""
    code = request.query_params.get("code", "")
    # Peeked, not taken: a link preview or a prefetch opening the URL must not use the code up
    # (only the form's POST redeems it).
    ticket = await asyncio.to_thread(_key_sign_in(request).peek, code)
    if ticket is None:
        return _code_refused(request)
    csrf = new_token()
    response = _page(
        render(
            "sign_in_code.html",
            csrf=csrf,
            code=code,
            ticket=ticket,
            version=__version__,
            viewer=None,
        )
    )
    return _with_csrf(request, response, csrf)


def _with_csrf(request: Request, response: Response, csrf: str) -> Response:
    """``response`` with the CSRF cookie its form's token must match (only the sign-in paths
    receive it; SameSite=Strict, so another site's form never carries it)."""
    response.set_cookie(
        _CSRF_COOKIE,
        csrf,
        max_age=600,
        path=f"{PREFIX}/sign-in",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _code_refused(request: Request) -> Response:
    """The sign-in page saying the code will not do (one answer for unknown, used and expired:
    the page must not tell a guesser which codes were real)."""
    return _sign_in_page(
        request,
        error="that sign-in code is unknown, used or expired: run custodes dashboard login again",
        status=401,
    )


def _sign_command(message: bytes) -> str:
    """Shell commands that sign ``message`` with OpenSSL 3 (custodes keys are PKCS#8 PEM) and
    print the base64 signature: each line written with printf, quoted for the shell."""
    fields = " ".join(shlex.quote(f) for f in message.decode("ascii").rstrip("\n").split("\n"))
    return (
        f"printf '%s\\n' {fields} > challenge.txt\n"
        "openssl pkeyutl -sign -inkey YOUR.key -rawin -in challenge.txt | openssl base64 -A"
    )


@router.post("/sign-in/key")
async def sign_in_key_challenge(request: Request) -> Response:
    """Key sign-in in the page, step 1: a challenge for the principal in the form, shown with
    the exact bytes to sign and a command that signs them."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    principal = form.get("principal", "").strip()
    try:
        if not principal:
            raise InputError("enter the principal you sign in as", where="principal")
        key = _key_of(request, principal)
        ticket: Ticket = await asyncio.to_thread(_key_sign_in(request).challenge, principal, key)
    except Error as exc:
        return _sign_in_page(request, error=exc.message, status=exc.status)
    message = sign_in_message(origin=_origin(request), principal=principal, challenge=ticket.token)
    csrf = new_token()
    response = _page(
        render(
            "sign_in_key.html",
            csrf=csrf,
            principal=principal,
            challenge=ticket.token,
            message=message.decode("ascii"),
            command=_sign_command(message),
            expires_at=ticket.expires_at,
            version=__version__,
            viewer=None,
        )
    )
    return _with_csrf(request, response, csrf)


@router.post("/sign-in/key/answer")
async def sign_in_key_answer(request: Request) -> Response:
    """Key sign-in in the page, step 2: the pasted signature over the challenge; a session in
    this browser if it is the principal's (the challenge is used up either way)."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    principal = form.get("principal", "")
    try:
        # Decoded before the challenge is taken: a mistyped paste leaves it usable.
        signature = decode_signature(form.get("signature", "").strip())
        key = _key_of(request, principal)
        ticket = await asyncio.to_thread(
            lambda: _key_sign_in(request).sign_in_here(
                principal=principal,
                challenge=form.get("challenge", ""),
                signature=signature,
                origin=_origin(request),
                public_key=key,
            )
        )
    except Error as exc:
        return _sign_in_page(request, error=exc.message, status=exc.status)
    return await _open_session(
        request, ticket.principal, method="key-signature", credential=ticket.credential
    )


@router.post("/sign-in/code")
async def sign_in_with_code(request: Request) -> Response:
    """Take the one-time code (once) and open a session signed in with the principal's key."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    ticket = await asyncio.to_thread(_key_sign_in(request).redeem, form.get("code", ""))
    if ticket is None:
        return _code_refused(request)
    # The key may have been replaced in the two minutes since: the session must start with
    # the key the constitution gives the principal now, or not at all.
    try:
        key = _key_of(request, ticket.principal)
    except Forbidden as exc:
        return _sign_in_page(request, error=exc.message, status=403)
    if encode_public_key(key) != ticket.credential:
        return _sign_in_page(
            request, error=f"{ticket.principal}'s key changed since; sign in again", status=401
        )
    return await _open_session(
        request, ticket.principal, method="key-signature", credential=ticket.credential
    )
