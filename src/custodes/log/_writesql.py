"""The write transaction's SQL, prepared once per engine, and the right edge it caches.

The append path runs on the driver's own connection (no SQLAlchemy Core compilation per
statement): these are its statements in the driver's parameter style. The right edge (the
partial tiles and frontier) of this process's last commit is kept between transactions, and
reused only while the stored state row still says exactly what it was built at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from custodes.log._frontier import Frontier
from custodes.log._tables import log_checkpoints
from custodes.log._tiles import TILE_HEIGHT, TILE_WIDTH, TileData, TileKey

__all__ = ["Edge", "WriteSql", "edge_keys"]


@dataclass(frozen=True)
class Edge:
    """The tree's right edge after a commit: its frontier and its partial tiles, by key.

    Attributes:
        size: the tree size it was built at.
        root: the tree hash at that size.
        frontier: the roots of the tree's perfect subtrees (RFC 9162 §2.1.1).
        tiles: the partial tiles (at most one per level) the next batch extends.
        frontier_bytes: ``frontier.to_bytes()``, compared with the stored state row.
    """

    size: int
    root: bytes
    frontier: Frontier
    tiles: dict[TileKey, TileData]
    frontier_bytes: bytes = b""


def edge_keys(size: int) -> list[TileKey]:
    """The partial tiles (one per level at most) of a tree of ``size``."""
    keys: list[TileKey] = []
    level, count = 0, size
    while count:
        index, width = divmod(count, TILE_WIDTH)
        if width:
            keys.append((level, index))
        level, count = level + 1, count >> TILE_HEIGHT
    return keys


@dataclass(frozen=True)
class WriteSql:
    """The write transaction's statements in the driver's own parameter style."""

    mark: str
    begin: str  # SQLite takes the write lock at BEGIN; psycopg begins implicitly
    lock_state: str
    init_state: str
    insert_entry: str
    update_tile: str
    insert_tile: str
    update_state: str
    insert_checkpoint: str
    newest_checkpoint: str
    bind_time: Callable[[Any], Any] | None

    @classmethod
    def for_engine(cls, engine: Engine) -> WriteSql:
        """The statements for ``engine``'s dialect (SQLite or PostgreSQL) and driver."""
        dialect = engine.dialect
        sqlite = dialect.name == "sqlite"
        signed_at = log_checkpoints.c.signed_at.type
        m = "?" if dialect.paramstyle == "qmark" else "%s"

        def q(text: str) -> str:  # written with ?; psycopg wants %s
            """The statement in the driver's parameter style."""
            return text.replace("?", m)

        return cls(
            mark=m,
            begin="BEGIN IMMEDIATE" if sqlite else "",
            lock_state=(
                "SELECT size, root_hash, frontier FROM log_state WHERE id = 1"
                if sqlite
                else "SELECT size, root_hash, frontier FROM log_state WHERE id = 1 FOR UPDATE"
            ),
            init_state=q(
                "INSERT INTO log_state (id, size, root_hash, frontier) "
                "VALUES (1, 0, ?, ?) ON CONFLICT (id) DO NOTHING"
            ),
            insert_entry=q("INSERT INTO log_entries (idx, leaf_hash, data) VALUES (?, ?, ?)"),
            update_tile=q(
                "UPDATE log_tiles SET hashes = ?, interior = ? WHERE level = ? AND idx = ?"
            ),
            insert_tile=q(
                "INSERT INTO log_tiles (level, idx, hashes, interior) VALUES (?, ?, ?, ?)"
            ),
            update_state=q(
                "UPDATE log_state SET size = ?, root_hash = ?, frontier = ? WHERE id = 1"
            ),
            insert_checkpoint=q(
                "INSERT INTO log_checkpoints (size, root_hash, note, signed_at, seq, link) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            ),
            newest_checkpoint=(
                "SELECT seq, size, root_hash FROM log_checkpoints ORDER BY seq DESC LIMIT 1"
            ),
            bind_time=signed_at.dialect_impl(dialect).bind_processor(dialect),
        )
