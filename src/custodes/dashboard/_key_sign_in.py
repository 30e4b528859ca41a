"""Sign-in with the principal's own Ed25519 key: a server challenge signed where the key is.

1. ``challenge(principal, public_key)``: a fresh 256-bit nonce, kept (as its SHA-256) for two
   minutes, for the key the constitution in force gives the principal.
2. The holder signs :func:`sign_in_message` — domain-separated, naming this server's origin,
   the principal and the nonce — with their private key (``custodes dashboard login``); the
   key never leaves their machine.
3. ``answer(...)`` takes the nonce once (a replay finds nothing), checks the key is still the
   principal's and the signature verifies, and gives a one-time sign-in code (two minutes).
4. The browser redeems the code (``redeem``) through a CSRF-protected form and gets a session.

The origin in the message means a signature made for one dashboard opens nothing on another,
and the two-step code means the signature itself is never a session: it is used once and
expires in minutes. Only digests of nonces and codes are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from custodes.authority import verify_signature
from custodes.clock import Clock
from custodes.constitution import encode_public_key
from custodes.dashboard._sessions import digest, new_token
from custodes.dashboard._tables import dashboard_tickets
from custodes.errors import InputError, StoreError, Unauthenticated

__all__ = [
    "SIGN_IN_DOMAIN",
    "TICKET_LIFETIME",
    "KeySignIn",
    "Ticket",
    "origin_of",
    "sign_in_message",
]

SIGN_IN_DOMAIN = "custodes-dashboard-sign-in/v1"
TICKET_LIFETIME = timedelta(minutes=2)  # long enough to run one command, short for a thief
_MAX_TICKETS = 10_000  # unexpired challenges and codes; past it the oldest are dropped
_MAX_FIELD = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}

TicketKind = Literal["challenge", "code"]


def _line(value: str, where: str) -> str:
    """A field of the signed message: one line of printable ASCII (no framing can be forged).

    Raises:
        InputError: empty, over 256 characters, or not printable ASCII.
    """
    if not value or len(value) > _MAX_FIELD or not (value.isascii() and value.isprintable()):
        raise InputError(
            f"malformed {where}",
            where=where,
            expected="1 to 256 printable ASCII characters",
            actual=repr(value)[:80],
        )
    return value


def origin_of(url: str) -> str:
    """The origin (RFC 6454 §4: scheme, host, port) of ``url``, as the signed message names it:
    lower-case scheme and host, the port only when it is not the scheme's default.

    Raises:
        InputError: ``url`` is not an absolute http(s) URL.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme not in _DEFAULT_PORTS or not parts.hostname or port == -1:
        raise InputError(
            "not an http(s) URL", where="server", expected="http://host[:port]", actual=url[:80]
        )
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets (RFC 3986 §3.2.2)
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def sign_in_message(*, origin: str, principal: str, challenge: str) -> bytes:
    """What a principal signs to sign in to the dashboard at ``origin`` with ``challenge``::

        custodes-dashboard-sign-in/v1\\n<origin>\\n<principal>\\n<challenge>\\n

    Its own domain: no approval, request or revocation signature is ever one of these.

    Raises:
        InputError: a field is empty, too long or not one line of printable ASCII.
    """
    fields = [
        _line(origin, "origin"),
        _line(principal, "principal"),
        _line(challenge, "challenge"),
    ]
    return ("\n".join([SIGN_IN_DOMAIN, *fields]) + "\n").encode("ascii")


@dataclass(frozen=True)
class Ticket:
    """A one-time challenge or sign-in code.

    Attributes:
        token: the nonce or code itself (shown once; only its digest is kept).
        principal: whose it is.
        credential: the public key it is for (``ed25519:<base64>``).
        expires_at: when it stops working.
    """

    token: str
    principal: str
    credential: str
    expires_at: datetime


class KeySignIn:
    """Challenges and sign-in codes, in the deployment's database (any worker redeems them)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def challenge(self, principal: str, public_key: bytes) -> Ticket:
        """A fresh challenge for ``principal``, whose key in the constitution is ``public_key``.

        Raises:
            InputError: the principal is malformed.
            StoreError: the database could not record it.
        """
        _line(principal, "principal")
        return self._issue("challenge", principal, encode_public_key(public_key))

    def answer(
        self,
        *,
        principal: str,
        challenge: str,
        signature: bytes,
        origin: str,
        public_key: bytes,
    ) -> Ticket:
        """Check a signed challenge and give a one-time sign-in code for the browser.

        Args:
            principal: who signs in.
            challenge: the nonce :meth:`challenge` gave (taken here: it never works twice).
            signature: the Ed25519 signature over :func:`sign_in_message`.
            origin: this server's origin as the request reached it (``http://host:port``).
            public_key: the principal's key in the constitution in force now.

        Raises:
            Unauthenticated: no such live challenge for this principal, the principal's key
                changed since, or the signature does not verify for this origin.
            InputError: a field is malformed.
            StoreError: the database cannot be read or written.
        """
        message = sign_in_message(origin=origin, principal=principal, challenge=challenge)
        ticket = self._take("challenge", challenge)
        if ticket is None or ticket.principal != principal:
            raise Unauthenticated(
                "that sign-in challenge is unknown, used or expired",
                where="challenge",
                expected=f"a challenge of {principal} from the last "
                f"{int(TICKET_LIFETIME.total_seconds())} s, used once",
            )
        key = encode_public_key(public_key)
        if ticket.credential != key:
            raise Unauthenticated(
                f"{principal}'s key changed since the challenge was given",
                where="challenge",
                expected="a new challenge",
            )
        if not verify_signature(public_key, message, signature):
            raise Unauthenticated(
                f"the signature is not {principal}'s over this server's sign-in challenge",
                where="signature",
                expected=f"an Ed25519 signature by {principal}'s key over {SIGN_IN_DOMAIN}, "
                f"origin {origin}",
            )
        return self._issue("code", principal, key)

    def sign_in_here(
        self,
        *,
        principal: str,
        challenge: str,
        signature: bytes,
        origin: str,
        public_key: bytes,
    ) -> Ticket:
        """:meth:`answer` for a signature pasted into the sign-in page itself: the browser that
        sends it is the one to sign in, so its code is taken at once (a form that carried the
        page's CSRF token sent it, so no other site did).

        Returns:
            The taken code: whose session to open, with which key.

        Raises:
            Unauthenticated: as :meth:`answer`.
            InputError: a field is malformed.
            StoreError: the database cannot be read or written.
        """
        code = self.answer(
            principal=principal,
            challenge=challenge,
            signature=signature,
            origin=origin,
            public_key=public_key,
        )
        taken = self.redeem(code.token)
        if taken is None:  # only if the clock jumped past its two minutes in between
            raise Unauthenticated("the sign-in code expired before it was used", where="code")
        return taken

    def peek(self, code: str) -> Ticket | None:
        """The live sign-in code ``code`` (not taken), or None: what the confirmation shows.

        Raises:
            StoreError: the database cannot be read.
        """
        if not code or len(code) > 100:
            return None
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(dashboard_tickets).where(
                        dashboard_tickets.c.token_sha256 == digest(code),
                        dashboard_tickets.c.kind == "code",
                    )
                ).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"sign-in codes cannot be read: {exc.__class__.__name__}") from exc
        if row is None or self.clock.now() >= row.expires_at:
            return None
        return Ticket(code, row.principal, row.credential, row.expires_at)

    def redeem(self, code: str) -> Ticket | None:
        """Take the sign-in code ``code`` (once), or None if it is unknown, used or expired.

        Raises:
            StoreError: the database cannot be read or written.
        """
        return self._take("code", code)

    def _issue(self, kind: TicketKind, principal: str, credential: str) -> Ticket:
        now = self.clock.now()
        token = new_token()
        ticket = Ticket(token, principal, credential, now + TICKET_LIFETIME)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(dashboard_tickets).where(dashboard_tickets.c.expires_at <= now))
                count = conn.execute(select(func.count()).select_from(dashboard_tickets)).scalar()
                excess = int(count or 0) - _MAX_TICKETS + 1
                if excess > 0:
                    oldest = [
                        r[0]
                        for r in conn.execute(
                            select(dashboard_tickets.c.token_sha256)
                            .order_by(dashboard_tickets.c.expires_at)
                            .limit(excess)
                        )
                    ]
                    conn.execute(
                        delete(dashboard_tickets).where(
                            dashboard_tickets.c.token_sha256.in_(oldest)
                        )
                    )
                conn.execute(
                    insert(dashboard_tickets).values(
                        token_sha256=digest(token),
                        kind=kind,
                        principal=principal,
                        credential=credential,
                        expires_at=ticket.expires_at,
                    )
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"the sign-in {kind} could not be recorded") from exc
        return ticket

    def _take(self, kind: TicketKind, token: str) -> Ticket | None:
        """Delete and return the live ticket ``token`` of ``kind``: whoever deletes the row
        has it, so two workers racing for one code cannot both succeed."""
        if not token or len(token) > 100:
            return None
        key = digest(token)
        now = self.clock.now()
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(dashboard_tickets).where(
                        dashboard_tickets.c.token_sha256 == key, dashboard_tickets.c.kind == kind
                    )
                ).first()
                if row is None:
                    return None
                taken = conn.execute(
                    delete(dashboard_tickets).where(dashboard_tickets.c.token_sha256 == key)
                ).rowcount
        except SQLAlchemyError as exc:
            raise StoreError(f"the sign-in {kind} could not be taken") from exc
        if taken != 1 or now >= row.expires_at:
            return None
        return Ticket(token, row.principal, row.credential, row.expires_at)
