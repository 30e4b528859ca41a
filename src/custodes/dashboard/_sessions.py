"""Dashboard sessions: a random token in an HttpOnly, SameSite=Strict cookie, held in the
database so that a server restart or a second worker signs nobody out.

The database keeps only the token's SHA-256, so a copy of the session table gives no session
away. A session remembers how it was opened and with what, never the secret itself: the API
key's id (revoking the key ends its sessions at the next page) or the principal's public key
(a constitution that no longer gives the principal that key ends them). Sessions expire a fixed
time after sign-in, however active they are.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock
from custodes.dashboard._tables import dashboard_sessions
from custodes.errors import StoreError

__all__ = [
    "SESSION_LIFETIME",
    "Session",
    "SessionStore",
    "SignInMethod",
    "digest",
    "new_token",
    "tokens_match",
]

SESSION_LIFETIME = timedelta(hours=8)  # a working day; sign in again after it
# Bounded so that a flood of sign-ins cannot grow the table without end; past it the oldest
# sessions are evicted (their viewers sign in again), never a refusal to sign in.
MAX_SESSIONS = 10_000
_MAX_TOKEN = 100  # a real token is 43 characters; a longer cookie is not even hashed

SignInMethod = Literal["api-key", "key-signature"]


def new_token() -> str:
    """A fresh token: 256 random bits from the OS CSPRNG, URL-safe base64.

    Used for session cookies, CSRF tokens and key sign-in tickets; 256 bits is well past the
    64 bits of entropy OWASP's session management guidance asks of a session id.
    """
    return secrets.token_urlsafe(32)


def tokens_match(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (no timing leak of a matching prefix).

    Returns:
        True when both are given and equal; False when either is missing or empty.
    """
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def digest(token: str) -> str:
    """What a token is stored as: its SHA-256, hex (see the module docstring)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in principal.

    Attributes:
        principal: who signed in.
        csrf: the token the forms shown to this session carry (sign-out).
        method: how they signed in.
        credential: what they signed in with, checked again on every page: the API key's id
            (``api-key``) or their public key as the constitution writes it
            (``key-signature``). Never a secret.
        created_at: when they signed in.
        expires_at: when the session ends, however active it is.
    """

    principal: str
    csrf: str
    method: SignInMethod
    credential: str
    created_at: datetime
    expires_at: datetime


class SessionStore:
    """Open, find and end sessions, in the deployment's database. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        lifetime: timedelta = SESSION_LIFETIME,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lifetime = lifetime
        self.max_sessions = max_sessions

    def open(self, principal: str, *, method: SignInMethod, credential: str) -> tuple[str, Session]:
        """A new session for ``principal``.

        Args:
            principal: who signed in (already checked against the constitution).
            method: how.
            credential: the API key's id, or the public key they signed in with.

        Returns:
            The token for the cookie (shown once; only its digest is kept) and the session.

        Raises:
            StoreError: the database could not record it.
        """
        now = self.clock.now()
        token = new_token()
        session = Session(
            principal=principal,
            csrf=new_token(),
            method=method,
            credential=credential,
            created_at=now,
            expires_at=now + self.lifetime,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= now)
                )
                count = conn.execute(select(func.count()).select_from(dashboard_sessions)).scalar()
                excess = int(count or 0) - self.max_sessions + 1
                if excess > 0:
                    oldest = (
                        select(dashboard_sessions.c.token_sha256)
                        .order_by(dashboard_sessions.c.created_at)
                        .limit(excess)
                    )
                    doomed = [r[0] for r in conn.execute(oldest)]
                    conn.execute(
                        delete(dashboard_sessions).where(
                            dashboard_sessions.c.token_sha256.in_(doomed)
                        )
                    )
                conn.execute(
                    insert(dashboard_sessions).values(
                        token_sha256=digest(token),
                        principal=principal,
                        csrf=session.csrf,
                        method=method,
                        credential=credential,
                        created_at=now,
                        expires_at=session.expires_at,
                    )
                )
        except SQLAlchemyError as exc:
            raise StoreError(
                f"the session could not be recorded: {exc.__class__.__name__}"
            ) from exc
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token``, or None (unknown, malformed or expired).

        An expired session found here is deleted at once.

        Raises:
            StoreError: the database cannot be read.
        """
        if not token or len(token) > _MAX_TOKEN:
            return None
        key = digest(token)
        now = self.clock.now()
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(dashboard_sessions).where(dashboard_sessions.c.token_sha256 == key)
                ).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"sessions cannot be read: {exc.__class__.__name__}") from exc
        if row is None:
            return None
        if now >= row.expires_at:
            self.end(token)
            return None
        method: SignInMethod = "key-signature" if row.method == "key-signature" else "api-key"
        return Session(
            principal=row.principal,
            csrf=row.csrf,
            method=method,
            credential=row.credential,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    def end(self, token: str | None) -> None:
        """End the session of ``token`` (sign-out); nothing happens for an unknown token.

        Raises:
            StoreError: the database could not be written.
        """
        if not token or len(token) > _MAX_TOKEN:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(dashboard_sessions).where(
                        dashboard_sessions.c.token_sha256 == digest(token)
                    )
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"the session could not be ended: {exc.__class__.__name__}") from exc
