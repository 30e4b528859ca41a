"""The log's tables. Entries and checkpoints are only ever inserted, never updated."""

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Table, Text

from custodes.store import UtcDateTime, metadata

__all__ = ["log_alarms", "log_checkpoints", "log_entries", "log_state", "log_tiles"]

log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    # Exactly the RFC 8785 bytes that were hashed; never re-serialised.
    Column("data", LargeBinary, nullable=False),
)
Index("ix_log_entries_leaf_hash", log_entries.c.leaf_hash)

# One row (id = 1): the integrated size, its root and the right edge of the tree (the hashes of
# the complete subtrees a new leaf may combine with), so an append costs O(log n).
log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("frontier", LargeBinary, nullable=False),
)

# C2SP tlog-tiles hash tiles: level L, index N, up to 256 hashes of 32 bytes, written in the
# same transaction as the entries. A partial tile is rewritten as it grows; once it holds 256
# hashes it never changes again. ``interior`` holds the tile's inner nodes (heights 8L+1..8L+7,
# see custodes.log._tiles) so that any subtree hash is one lookup.
log_tiles = Table(
    "log_tiles",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
    Column("interior", LargeBinary, nullable=False),
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", UtcDateTime(), nullable=False),
    # The chain: ``seq`` numbers every checkpoint row from 0 with no gap, and ``link`` is a note
    # signed by the log key binding this checkpoint to the one before it (custodes.log._chain),
    # so a deleted, altered or reordered row is found. Rows signed before chaining have no link.
    Column("seq", BigInteger, nullable=False),
    Column("link", Text, nullable=True),
)
Index("ix_log_checkpoints_size", log_checkpoints.c.size)
Index("ix_log_checkpoints_seq", log_checkpoints.c.seq, unique=True)

# Alarms that stop appends until an operator acts: a witness holding a larger tree than the
# log (a rollback). ``resolved_at`` is set only by the explicit, logged ``custodes log
# unsafe-resume`` command.
log_alarms = Table(
    "log_alarms",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("log_size", BigInteger, nullable=False),
    Column("witness", Text, nullable=True),
    Column("witness_size", BigInteger, nullable=True),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("resolution", Text, nullable=True),
)
