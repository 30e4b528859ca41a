"""Dashboard sessions: a random token in an HttpOnly, SameSite=Strict cookie, held server-side.

The server keeps only the token's SHA-256, so a leaked session table does not give sessions
away. The API key a session was opened with stays in server memory (never in the cookie) so
that every page checks it again: revoking the key ends its sessions at once. Sessions expire a
fixed time after sign-in and live in one server process (a restart signs everyone out).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from custodes.clock import Clock

__all__ = ["SESSION_LIFETIME", "Session", "SessionStore", "new_token", "tokens_match"]

SESSION_LIFETIME = timedelta(hours=8)  # a working day; sign in again after it
_MAX_SESSIONS = 10_000  # bounded: sign-ins past this evict the oldest session


def new_token() -> str:
    """256 random bits, URL-safe (session tokens and CSRF tokens)."""
    return secrets.token_urlsafe(32)


def tokens_match(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; False when either is missing."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in principal. ``csrf`` protects the forms shown to it (sign-out)."""

    principal: str
    api_key: str
    csrf: str
    created_at: datetime
    expires_at: datetime


class SessionStore:
    """Open, find and end sessions. Thread-safe (routes run in a thread pool)."""

    def __init__(self, clock: Clock, *, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, principal: str, api_key: str) -> tuple[str, Session]:
        """A new session for ``principal``; returns (cookie token, session)."""
        now = self.clock.now()
        token = new_token()
        session = Session(
            principal=principal,
            api_key=api_key,
            csrf=new_token(),
            created_at=now,
            expires_at=now + self.lifetime,
        )
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= _MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]  # dicts keep insertion order
            self._sessions[_digest(token)] = session
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token``, or None (unknown, malformed or expired)."""
        if not token or len(token) > 100:
            return None
        now = self.clock.now()
        with self._lock:
            session = self._sessions.get(_digest(token))
            if session is not None and now >= session.expires_at:
                del self._sessions[_digest(token)]
                return None
        return session

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def _drop_expired(self, now: datetime) -> None:
        for key in [k for k, s in self._sessions.items() if now >= s.expires_at]:
            del self._sessions[key]
