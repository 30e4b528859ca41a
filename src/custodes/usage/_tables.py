"""custodes.usage's tables: breaches raised as alarms, and overseers' overrides of a gate.

Every row follows (or, for an alarm's claim, precedes and is completed by) a durable log entry.
"""

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text

from custodes.store import UtcDateTime, metadata

__all__ = ["usage_alarms", "usage_overrides"]

# One row per breach. ``open_slot`` is "open" while the breach lasts and NULL after: the unique
# index lets one open breach exist per (rule, subject) across every replica (NULLs are distinct
# in SQLite and PostgreSQL), so an alarm is raised once per breach. A row is claimed before its
# entry is appended; ``log_index`` NULL means its entry is not durable yet (retried, never
# dropped).
usage_alarms = Table(
    "usage_alarms",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("capability", String(128), nullable=True),
    Column("value", Float, nullable=False),
    Column("limit", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=True),
    Column("open_slot", String(8), nullable=True),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("ended_log_index", BigInteger, nullable=True),
)
Index(
    "uq_usage_alarms_open",
    usage_alarms.c.rule,
    usage_alarms.c.subject,
    usage_alarms.c.open_slot,
    unique=True,
)

usage_overrides = Table(
    "usage_overrides",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule", String(128), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("approver", String(256), nullable=False),
    Column("until", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("signature", String(128), nullable=False),
    Column("approved_at", UtcDateTime(), nullable=False),
    Column("log_index", BigInteger, nullable=False),
)
Index("ix_usage_overrides_rule_subject", usage_overrides.c.rule, usage_overrides.c.subject)
