"""custodes.usage's tables: breaches raised as alarms, and overseers' overrides of a gate.

Every row follows (or, for an alarm's claim, precedes and is completed by) a durable log entry.
"""

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text

from custodes.store import UtcDateTime, metadata

__all__ = ["usage_alarms", "usage_delegations", "usage_overrides", "usage_reviews"]

# One row per breach. ``open_slot`` is "open" while the breach lasts and NULL after: the unique
# index lets one open breach exist per (rule, subject) across every replica (NULLs are distinct
# in SQLite and PostgreSQL), so an alarm is raised once per breach. A row is claimed before its
# entry is appended; ``log_index`` NULL means its entry is not durable yet (retried, never
# dropped).
usage_alarms = Table(
    "usage_alarms",
    metadata,
    Column("id", String(64), primary_key=True),
    # A rule id, or review:<tier> for an overdue review (tier ids are up to 128 characters).
    Column("rule", String(160), nullable=False),
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

# One row per review decision, written once its usage.review/v1 entry is durable; the newest
# row of a tier starts its next period.
usage_reviews = Table(
    "usage_reviews",
    metadata,
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
    Column("capability", String(128), nullable=False),
    Column("due", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    Column("next_due", UtcDateTime(), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("body", Text, nullable=False),
)
Index("ix_usage_reviews_capability", usage_reviews.c.capability, usage_reviews.c.decided_at)

# One row per signed delegation, written once its usage.delegation/v1 entry is durable.
usage_delegations = Table(
    "usage_delegations",
    metadata,
    Column("log_index", BigInteger, primary_key=True, autoincrement=False),
    Column("workload", String(256), nullable=False),
    Column("director", String(256), nullable=False),
    Column("until", UtcDateTime(), nullable=False),
    Column("signed_at", UtcDateTime(), nullable=False),
    Column("signature", String(200), nullable=False),
)
Index("ix_usage_delegations_until", usage_delegations.c.until)
