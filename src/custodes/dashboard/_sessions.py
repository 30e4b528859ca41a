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
# Bounded so that a flood of sign-ins cannot grow server memory without end; past it the
# oldest session is evicted (its viewer signs in again), never a refusal to sign in.
_MAX_SESSIONS = 10_000


def new_token() -> str:
    """A fresh token: 256 random bits from the OS CSPRNG, URL-safe base64.

    Used for session cookies and CSRF tokens; 256 bits is well past the 64 bits of entropy
    OWASP's session management guidance asks of a session id.
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


def _digest(token: str) -> str:
    """The key a session is held under: the token's SHA-256 (see the module docstring)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in principal.

    Attributes:
        principal: who signed in.
        api_key: the key they signed in with, checked again on every page (never sent back).
        csrf: the token the forms shown to this session carry (sign-out).
        created_at: when they signed in.
        expires_at: when the session ends, however active it is.
    """

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
        """A new session for ``principal``.

        Args:
            principal: who signed in (already checked against the constitution).
            api_key: the key they signed in with.

        Returns:
            The token for the cookie (shown once; only its digest is kept) and the session.
        """
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
        """The live session of ``token``, or None (unknown, malformed or expired).

        An expired session found here is dropped at once.
        """
        # A real token is 43 characters; a longer cookie is not hashed at all.
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
        """End the session of ``token`` (sign-out); nothing happens for an unknown token."""
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def _drop_expired(self, now: datetime) -> None:
        """Forget every session past its end (called on sign-in, under the lock)."""
        for key in [k for k, s in self._sessions.items() if now >= s.expires_at]:
            del self._sessions[key]
