"""The dashboard's tables: sessions (so a restart or a second worker signs nobody out), the
one-time tickets of key sign-in (challenges and sign-in codes), and the log page's search
index (derived from the log's entries; see ``_log_index``).

Only SHA-256 digests of tokens are stored: a copy of these tables opens no session.
"""

from sqlalchemy import BigInteger, Column, Index, String, Table

from custodes.store import UtcDateTime, metadata

__all__ = [
    "dashboard_log_entries",
    "dashboard_log_mentions",
    "dashboard_sessions",
    "dashboard_tickets",
]

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

# One row per log entry, from index 0 without a hole; type NULL: not a custodes entry.
dashboard_log_entries = Table(
    "dashboard_log_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(128), nullable=True),
    Column("principal", String(256), nullable=True),
    Column("organisation", String(256), nullable=True),
    Column("time", UtcDateTime(), nullable=True),
)
Index("ix_dashboard_log_entries_type", dashboard_log_entries.c.type, dashboard_log_entries.c.idx)
Index(
    "ix_dashboard_log_entries_principal",
    dashboard_log_entries.c.principal,
    dashboard_log_entries.c.idx,
)
Index("ix_dashboard_log_entries_time", dashboard_log_entries.c.time)

# The ids an entry's body names (top-level string fields and list items): what ?about= finds.
dashboard_log_mentions = Table(
    "dashboard_log_mentions",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
)
