"""Witness tables: the witness server's state and evidence, and the log-side publisher's.

A witness server migrates only the ``witness`` Alembic branch into its own database; the log
server migrates every branch, so the publisher's tables live next to the log's.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
)

from custodes.store import UtcDateTime, metadata

__all__ = [
    "witness_cosignatures",
    "witness_evidence",
    "witness_peers",
    "witness_published",
    "witness_state",
]

# Witness server: the latest checkpoint it cosigned for each log origin. Updated only by a
# compare-and-swap on (size, root_hash), so a rollback can never be written.
witness_state = Table(
    "witness_state",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Witness server: validly signed checkpoints that conflict with the one it holds.
witness_evidence = Table(
    "witness_evidence",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("origin", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("held_note", Text, nullable=False),
    Column("offered_note", Text, nullable=False),
    Column("old_size", BigInteger, nullable=False),
    Column("proof", LargeBinary, nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
)
Index("ix_witness_evidence_origin", witness_evidence.c.origin)

# Log side: the checkpoints the publisher sent out and whether they reached quorum.
witness_published = Table(
    "witness_published",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("quorum_met", Boolean, nullable=False),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("quorum_at", UtcDateTime(), nullable=True),
)

# Log side: one cosignature line per (checkpoint size, witness).
witness_cosignatures = Table(
    "witness_cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", Text, primary_key=True),
    Column("line", Text, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

# Log side: what the publisher knows of each witness.
witness_peers = Table(
    "witness_peers",
    metadata,
    Column("witness", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("last_ok_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)
