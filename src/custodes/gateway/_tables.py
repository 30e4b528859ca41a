"""The gateway's tables: API keys (stored only as SHA-256 hashes), a change counter, and the
serving check's last verdict per weights and tier (what its alarms were raised for)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
)

from custodes.store import UtcDateTime, metadata

__all__ = ["gateway_keys", "gateway_serving_states", "gateway_state"]

gateway_keys = Table(
    "gateway_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("principal", String(256), nullable=False),
    Column("name", String(200), nullable=False),
    # SHA-256 of the whole key; the key itself is shown once at creation and never stored.
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)
Index("ix_gateway_keys_principal", gateway_keys.c.principal)

# One row (id = 1). Every key change bumps `version`, so a server process can tell with one tiny
# read whether its in-memory key cache is stale (revocations by other processes: the CLI, other
# replicas).
gateway_state = Table(
    "gateway_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

# The serving check's verdict per (weights, tier) as last alarmed on: refused with these reasons
# (their SHA-256), or approved. A refusal is alarmed once per change of this row, by whichever
# gateway process changes it first, and a restarted process does not alarm again.
gateway_serving_states = Table(
    "gateway_serving_states",
    metadata,
    Column("weights", String(71), nullable=False),
    Column("capability", String(128), nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("reasons_sha256", String(64), nullable=False),  # empty when approved
    Column("changed_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("weights", "capability"),
)
