"""The gateway's tables: API keys (stored only as SHA-256 hashes) and a change counter."""

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table

from custodes.store import UtcDateTime, metadata

__all__ = ["gateway_keys", "gateway_state"]

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
