"""The dashboard's tables: sessions (so a restart or a second worker signs nobody out) and the
one-time tickets of key sign-in (challenges and sign-in codes).

Only SHA-256 digests of tokens are stored: a copy of these tables opens no session.
"""

from sqlalchemy import Column, Index, String, Table

from custodes.store import UtcDateTime, metadata

__all__ = ["dashboard_sessions", "dashboard_tickets"]

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("principal", String(256), nullable=False),
    Column("csrf", String(64), nullable=False),
    # "api-key": credential is the gateway key id (revoking the key ends the session);
    # "key-signature": the principal's public key signed in with (rotating it ends it).
    Column("method", String(16), nullable=False),
    Column("credential", String(128), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_dashboard_sessions_expires_at", dashboard_sessions.c.expires_at)

dashboard_tickets = Table(
    "dashboard_tickets",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "challenge" or "code"
    Column("principal", String(256), nullable=False),
    Column("credential", String(128), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_dashboard_tickets_expires_at", dashboard_tickets.c.expires_at)
