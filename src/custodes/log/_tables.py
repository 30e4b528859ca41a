"""The log's tables. Entries and checkpoints are only ever inserted, never updated."""

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, Table, Text

from custodes.store._metadata import metadata

__all__ = ["log_checkpoints", "log_entries", "log_state", "log_tiles"]

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
    Column("signed_at", DateTime(timezone=True), nullable=False),
)
Index("ix_log_checkpoints_size", log_checkpoints.c.size)
