"""The dashboard's HTTP routes under ``/dashboard``: sign-in (an API key, CSRF-protected form),
sign-out, the pages, their live fragments, and the vendored static files.

Every page answers ``Cache-Control: no-store`` and a Content-Security-Policy that allows only
this server's own scripts and styles (nothing from a CDN, no inline script).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from custodes import __version__
from custodes.constitution import encode_public_key
from custodes.custody import EXPORT_FORMATS, export_finding
from custodes.dashboard._audits_view import audits_view
from custodes.dashboard._constitution_view import constitution_view
from custodes.dashboard._custody_view import custody_view
from custodes.dashboard._key_sign_in import KeySignIn
from custodes.dashboard._log_index import LogIndex
from custodes.dashboard._log_indexer import LogIndexer
from custodes.dashboard._log_view import LogQuery, log_view, older_href
from custodes.dashboard._monitors_view import monitors_view
from custodes.dashboard._now import constitution_of, now_view
from custodes.dashboard._provenance_view import provenance_view
from custodes.dashboard._render import render
from custodes.dashboard._sessions import (
    Session,
    SessionStore,
    SignInMethod,
    new_token,
    tokens_match,
)
from custodes.dashboard._viewer import Viewer, viewer_of
from custodes.errors import Error, InputError, NotFoundError
from custodes.gateway import ApiKey
from custodes.provenance import ARTIFACT_KINDS
from custodes.wiring import Deployment

__all__ = ["PREFIX", "STATIC", "router"]

PREFIX = "/dashboard"
_SESSION_COOKIE = "custodes_session"
_CSRF_COOKIE = "custodes_signin_csrf"
# A sign-in form is a key and a token: anything larger is not ours, and reading it whole
# would let an unauthenticated client make the server buffer what it sends.
_MAX_FORM_BYTES = 4096
STATIC = Path(__file__).parent / "static"
# The pages show grants, alarms and findings: never cached (a shared machine's back button),
# never framed (clickjacking an approval), and no script but ours (an injected one would act
# with the overseer's session).
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The dashboard's part of the server's lifespan (FastAPI runs it inside the server's own,
    which builds the deployment first and closes it last): the log search index's background
    indexer starts with the server and stops, its step in progress done, before the deployment
    closes."""
    # A router mounted without a deployment (a page test) has no log to index.
    deployment: Deployment | None = getattr(app.state, "deployment", None)
    indexer = None
    if deployment is not None and deployment.settings.dashboard_index_interval_s > 0:
        indexer = LogIndexer(
            _log_index_of(app, deployment),
            interval=deployment.settings.dashboard_index_interval_s,
        )
        indexer.start()
    # Kept on the app, so that whoever holds the app (a test) can reach the indexer.
    app.state.dashboard_log_indexer = indexer
    try:
        yield
    finally:
        if indexer is not None:
            await asyncio.to_thread(indexer.close)


router = APIRouter(prefix=PREFIX, include_in_schema=False, lifespan=_lifespan)


def deployment_of(request: Request) -> Deployment:
    """The deployment the server runs (set at its start-up)."""
    deployment: Deployment = request.app.state.deployment
    return deployment


def _sessions(request: Request) -> SessionStore:
    """The server's store of dashboard sessions (they are kept in the deployment's
    database), made at the first request that needs it."""
    state = request.app.state
    store: SessionStore | None = getattr(state, "dashboard_sessions", None)
    if store is None:
        deployment = deployment_of(request)
        store = SessionStore(
            deployment.engine,
            deployment.clock,
            lifetime=timedelta(hours=deployment.settings.dashboard_session_hours),
        )
        state.dashboard_sessions = store
    return store


def _page(html: str, status: int = 200) -> HTMLResponse:
    """An HTML page with the dashboard's headers (no caching, the CSP, no framing)."""
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _secure(request: Request) -> bool:
    """Whether the request came over HTTPS: cookies are marked ``Secure`` only then, or a
    browser would not send them back to a plain-HTTP loopback server."""
    return request.url.scheme == "https"


def _log_index_of(app: FastAPI, deployment: Deployment) -> LogIndex:
    """The server's one index of the deployment's log (searches and the indexer share it)."""
    index: LogIndex | None = getattr(app.state, "dashboard_log_index", None)
    # An index belongs to one log: if the deployment's log was replaced, searching the old
    # index would show entries of another log.
    if index is None or index.log is not deployment.log:
        index = LogIndex(deployment.engine, deployment.log)
        app.state.dashboard_log_index = index
    return index


def _log_index(request: Request) -> LogIndex:
    """The log search index of the request's server."""
    return _log_index_of(request.app, deployment_of(request))


def _key_sign_in(request: Request) -> KeySignIn:
    """The server's one-time key sign-in tickets, made at the first request that needs them
    (one store per server: a ticket issued by one request is redeemed by another)."""
    state = request.app.state
    tickets: KeySignIn | None = getattr(state, "dashboard_key_sign_in", None)
    if tickets is None:
        deployment = deployment_of(request)
        tickets = KeySignIn(deployment.engine, deployment.clock)
        state.dashboard_key_sign_in = tickets
    return tickets


async def _api_key(request: Request, key: str) -> ApiKey | None:
    """The active API key ``key`` (the gateway's key cache, as the API's login check)."""
    gateway = deployment_of(request).gateway
    # The cache the gateway checks calls against: the dashboard accepts exactly the keys the
    # gateway would, and a revoked key stops working in both at once.
    await gateway.ensure_started()
    return await gateway.key_cache.lookup(key)


def _public_key(request: Request, principal: str) -> bytes | None:
    """``principal``'s public key in the constitution in force (None: none, or no such one)."""
    constitution = constitution_of(deployment_of(request).authority)
    found = None if constitution is None else constitution.principals_by_id.get(principal)
    return None if found is None else found.public_key


async def _still_valid(request: Request, session: Session) -> bool:
    """Whether what the session was opened with still holds: its API key is not revoked, or
    the constitution in force still gives the principal the key they signed in with."""
    # A signed-in-by-key session lasts only while an amendment has not rotated the key away:
    # the old key may be the reason it was rotated.
    if session.method == "key-signature":
        key = _public_key(request, session.principal)
        return key is not None and encode_public_key(key) == session.credential
    keys = deployment_of(request).gateway.keys
    try:
        found = await asyncio.to_thread(keys.get, session.credential)
    except NotFoundError:
        return False
    return found.active and found.principal == session.principal


async def _signed_in(request: Request) -> tuple[Session, Viewer] | None:
    """The request's live session and viewer: its credential still good, its principal still
    in the constitution in force (both checked on every page)."""
    store = _sessions(request)
    token = request.cookies.get(_SESSION_COOKIE)
    session = await asyncio.to_thread(store.find, token)
    if session is None:
        return None
    if not await _still_valid(request, session):
        await asyncio.to_thread(store.end, token)  # the key was revoked or replaced
        return None
    try:
        viewer = viewer_of(constitution_of(deployment_of(request).authority), session.principal)
    except Error:
        # An amendment removed the principal: the session ends with their standing.
        await asyncio.to_thread(store.end, token)
        return None
    return session, viewer


def _to_sign_in(request: Request) -> RedirectResponse:
    """To the sign-in form: 303 See Other, so the browser follows with a GET even after a
    POST (RFC 9110 section 15.4.4)."""
    return RedirectResponse(f"{PREFIX}/sign-in", status_code=303, headers=_HEADERS)


def _sign_in_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    """The sign-in form (with ``error`` shown, if any) and a fresh CSRF token, both in the
    form and in a cookie only the sign-in path receives: :func:`sign_in` accepts a form only
    when the two match (a double-submit token: another site cannot read the cookie to copy it).
    """
    csrf = new_token()
    response = _page(
        render(
            "sign_in.html",
            csrf=csrf,
            error=error,
            version=__version__,
            viewer=None,
            origin=f"{request.url.scheme}://{request.url.netloc}",
        ),
        status,
    )
    # Scoped to the sign-in path and strict: no other page (nor another site's request)
    # carries it, and an hour is long enough to type a key.
    response.set_cookie(
        _CSRF_COOKIE,
        csrf,
        max_age=3600,
        path=f"{PREFIX}/sign-in",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    """The sign-in form, with a fresh CSRF token in a cookie scoped to it."""
    return _sign_in_page(request)


async def _form(request: Request) -> dict[str, str] | None:
    """An urlencoded form of at most 4 KiB with each field once, or None."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    body = b""
    # Read in chunks and stop at the bound: a Content-Length can lie, a stream cannot.
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=False, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    # A repeated field is ambiguous (which csrf counts?): refuse rather than pick one.
    if any(len(v) != 1 for v in fields.values()):
        return None
    return {k: v[0] for k, v in fields.items()}


async def _checked_form(request: Request) -> dict[str, str] | Response:
    """The sign-in form, or the sign-in page saying why not: malformed (400) or without the
    token of the page that set the CSRF cookie (403)."""
    form = await _form(request)
    if form is None:
        return _sign_in_page(
            request, error="the sign-in form was malformed or over 4 KiB; try again", status=400
        )
    if not tokens_match(form.get("csrf"), request.cookies.get(_CSRF_COOKIE)):
        return _sign_in_page(
            request,
            error="the form had expired or did not come from this page; try again",
            status=403,
        )
    return form


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Open a session for the principal of the API key in the form (CSRF: the form's token
    must equal the cookie set with the form, so another site cannot sign a browser in)."""
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    key = form.get("api_key", "").strip()
    found = await _api_key(request, key) if key else None
    # One answer for unknown and revoked: the form must not tell a guesser which keys existed.
    if found is None:
        return _sign_in_page(request, error="that API key is unknown or revoked", status=401)
    return await _open_session(request, found.principal, method="api-key", credential=found.key_id)


async def _open_session(
    request: Request, principal: str, *, method: SignInMethod, credential: str
) -> Response:
    """Open a session for a principal of the constitution in force; to Now with its cookie."""
    try:
        viewer_of(constitution_of(deployment_of(request).authority), principal)
    except Error as exc:
        return _sign_in_page(request, error=exc.message, status=403)
    token, session = await asyncio.to_thread(
        _sessions(request).open, principal, method=method, credential=credential
    )
    # A fresh token at every sign-in (never one the browser brought): no session fixation.
    response = RedirectResponse(f"{PREFIX}/", status_code=303, headers=_HEADERS)
    response.set_cookie(
        _SESSION_COOKIE,
        token,
        expires=session.expires_at,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    # The sign-in token has done its work; a second form submitted with it is refused.
    response.delete_cookie(_CSRF_COOKIE, path=f"{PREFIX}/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form must carry the session's CSRF token)."""
    found = await _signed_in(request)
    form = await _form(request)
    if found is not None and form is not None and tokens_match(form.get("csrf"), found[0].csrf):
        await asyncio.to_thread(_sessions(request).end, request.cookies.get(_SESSION_COOKIE))
    elif found is not None:
        # Another site could otherwise sign an overseer out in the middle of a review.
        return _page("<p>The sign-out form did not come from this dashboard.</p>", 403)
    response = _to_sign_in(request)
    response.delete_cookie(_SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/")
async def now_page(request: Request) -> Response:
    """The "Now" page: what is pending, granted and alarming, as the viewer may see it."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    view = await asyncio.to_thread(now_view, deployment_of(request), viewer)
    return _view_page(session, viewer, "now", view=view)


@router.get("/now/live")
async def now_live(request: Request) -> Response:
    """The "Now" page's live part (polled by static/live.js); 401 once the session is gone."""
    found = await _signed_in(request)
    # Not a redirect: live.js polls this fragment, and sends the browser to sign in on a 401.
    if found is None:
        return _page("<p>Signed out.</p>", 401)
    view = await asyncio.to_thread(now_view, deployment_of(request), found[1])
    return _page(render("_now_live.html", view=view))


@router.get("/log")
async def log_page(request: Request) -> Response:
    """The log page: the newest checkpoint and a window of entries, filtered by type."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    params = request.query_params
    try:
        query = LogQuery(
            type=params.get("type") or None,
            principal=params.get("principal") or None,
            organisation=params.get("organisation") or None,
            since=_time(request, "since"),
            until=_time(request, "until"),
            about=params.get("about") or None,
        )
        view = await asyncio.to_thread(
            log_view,
            deployment_of(request),
            query=query,
            before=_whole(request, "before"),
            index=_whole(request, "index"),
            search_index=_log_index(request),
        )
    except InputError as exc:
        return _error_page(session, viewer, "log", exc.message)
    return _view_page(session, viewer, "log", view=view, older_href=older_href)


@router.get("/coalition")
async def coalition_page(request: Request) -> Response:
    """Who could seize what: the coalition package's analysis of the constitution in force
    (public, as ``GET /coalition`` is), and its picture."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    deployment = deployment_of(request)
    constitution = constitution_of(deployment.authority)
    analysis: dict[str, Any] | None = None
    if constitution is not None:
        analysis = (await asyncio.to_thread(deployment.coalition.analysis, constitution)).to_json()
    return _view_page(session, viewer, "coalition", analysis=analysis, constitution=constitution)


_HEADINGS = {400: "Not understood", 403: "Not allowed", 404: "Not found"}


def _view_page(
    session: Session,
    viewer: Viewer,
    page: str,
    *,
    template: str | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    """A signed-in page: ``template`` (default ``<page>.html``) with what every signed-in page's
    layout needs (the viewer, the sign-out form's CSRF token, the version, the page's nav entry)."""
    return _page(
        render(
            template or f"{page}.html",
            viewer=viewer,
            csrf=session.csrf,
            version=__version__,
            page=page,
            **context,
        ),
        status,
    )


def _error_page(
    session: Session, viewer: Viewer, page: str, message: str, status: int = 400
) -> Response:
    """The dashboard page ``page`` saying ``message``, headed by what ``status`` means."""
    return _view_page(
        session,
        viewer,
        page,
        template="error.html",
        status=status,
        message=message,
        heading=_HEADINGS.get(status, "Could not answer"),
    )


def _whole(request: Request, name: str) -> int | None:
    """A whole-number query parameter (absent or empty: None).

    Raises:
        InputError: it is not a whole number of at most 10 digits.
    """
    text = request.query_params.get(name)
    if not text:
        return None
    # isdigit alone accepts other scripts' digits and superscripts, which int() reads or
    # refuses unevenly; ten digits bound the number before it reaches a query.
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise InputError(
            f"{name} must be a whole number", where=name, expected="digits", actual=text[:40]
        )
    return int(text)


def _time(request: Request, name: str) -> datetime | None:
    """A time query parameter: RFC 3339 / ISO 8601 (``2026-12-07T09:00Z``, ``2026-12-07``);
    without an offset it is UTC. Absent or empty: None.

    Raises:
        InputError: it is not such a time, or longer than 40 characters.
    """
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        if len(text) > 40:
            raise ValueError(text)
        text = text.strip()
        # Python before 3.11 did not read RFC 3339's Z; say it as an offset, as it means.
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("z", "Z") else text)
    except ValueError:
        raise InputError(
            f"{name} must be a time",
            where=name,
            expected="RFC 3339, e.g. 2026-12-07T09:00:00Z (UTC when no offset is given)",
            actual=text[:40],
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@router.get("/constitution")
async def constitution_page(request: Request) -> Response:
    """The constitution in force, its history with a diff between two versions
    (``?from=&to=``), and pending amendments with their coalition effect."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    try:
        view = await asyncio.to_thread(
            constitution_view,
            deployment_of(request),
            diff_from=_whole(request, "from"),
            diff_to=_whole(request, "to"),
        )
    except InputError as exc:
        return _error_page(session, viewer, "constitution", exc.message)
    return _view_page(session, viewer, "constitution", view=view)


@router.get("/monitors")
async def monitors_page(request: Request) -> Response:
    """The review queue of the signed-in reviewer (never their own organisation's detections),
    every open detection for an overseer, and detections per category over ``?days=``."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    try:
        days = _whole(request, "days")
        view = await asyncio.to_thread(
            monitors_view, deployment_of(request), viewer, days=14 if days is None else days
        )
    except InputError as exc:
        return _error_page(session, viewer, "monitors", exc.message)
    return _view_page(session, viewer, "monitors", view=view)


@router.get("/custody")
async def custody_page(request: Request) -> Response:
    """The findings the viewer may see, with their disclosure clocks as timelines, their
    escrow reads and their exports."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    try:
        view = await asyncio.to_thread(custody_view, deployment_of(request), viewer)
    except Error as exc:
        return _error_page(session, viewer, "custody", exc.message, exc.status)
    return _view_page(session, viewer, "custody", view=view)


@router.get("/custody/{finding_id}/export/{fmt}")
async def custody_export(request: Request, finding_id: str, fmt: str) -> Response:
    """A finding the viewer may see as an OSV, CSAF or CVE record (the registry decides who
    may, and logs a refusal), as a download."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    # Checked before the registry is asked: a typo is a usage error, not an export attempt
    # for the registry to decide on and log.
    if fmt not in EXPORT_FORMATS:
        return _error_page(
            session, viewer, "custody", f"unknown export format; one of {', '.join(EXPORT_FORMATS)}"
        )
    registry = deployment_of(request).custody
    try:
        finding = await asyncio.to_thread(
            registry.view, finding_id, principal=viewer.principal, action="export"
        )
        record = export_finding(finding, fmt, registry.schedule(finding), now=registry.clock.now())
    except Error as exc:
        return _error_page(session, viewer, "custody", exc.message, exc.status)
    return JSONResponse(
        record,
        headers={
            **_HEADERS,
            "Content-Disposition": f'attachment; filename="{finding.id}.{fmt}.json"',
        },
    )


@router.get("/provenance")
async def provenance_page(request: Request) -> Response:
    """Registered artifacts and runs, or one digest's lineage as a graph (``?digest=``),
    checked against the log when asked (``&verify=1``)."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    params = request.query_params
    try:
        view = await asyncio.to_thread(
            provenance_view,
            deployment_of(request).provenance,
            digest=params.get("digest") or None,
            kind=params.get("kind") or None,
            verify=params.get("verify") == "1",
        )
    except Error as exc:
        return _error_page(session, viewer, "provenance", exc.diagnostics(), exc.status)
    return _view_page(session, viewer, "provenance", view=view, kinds=ARTIFACT_KINDS)


_VERDICTS = {
    "findings": "findings",
    "no-differential-detected": "no differential detected",
    "inconclusive": "inconclusive",
}


@router.get("/audits")
async def audits_page(request: Request) -> Response:
    """Signed loyalty-audit reports from the log, newest first, each signature checked."""
    found = await _signed_in(request)
    if found is None:
        return _to_sign_in(request)
    session, viewer = found
    deployment = deployment_of(request)
    try:
        view = await asyncio.to_thread(
            audits_view,
            deployment.log,
            deployment.provenance,
            constitution_of(deployment.authority),
            before=_whole(request, "before"),
        )
    except InputError as exc:
        return _error_page(session, viewer, "audits", exc.message)
    return _view_page(session, viewer, "audits", view=view, verdicts=_VERDICTS)
