"""Storage: one SQLAlchemy engine per database URL, sessions, and Alembic migrations.

SQLite (WAL, synchronous=FULL) is the embedded default; PostgreSQL is the production backend.
Tables are SQLAlchemy Core ``Table`` objects on :data:`metadata`, defined by the package that
owns them and registered when that package is imported; ``store`` imports no domain package (it
is the bottom layer). Each package keeps its own Alembic branch (``branch_labels``) under
``store/migrations/versions/``; :func:`migrate` upgrades all heads, or one package's branch.
Datetime columns are :class:`UtcDateTime` (aware UTC in, aware UTC out, on both backends).
The store holds no business rules.
"""

from custodes.store._engine import create_db_engine, is_sqlite, writer
from custodes.store._metadata import metadata
from custodes.store._migrate import current_heads, migrate
from custodes.store._notify import create_notify_trigger, drop_notify_trigger
from custodes.store._types import UtcDateTime

__all__ = [
    "UtcDateTime",
    "create_db_engine",
    "create_notify_trigger",
    "current_heads",
    "drop_notify_trigger",
    "is_sqlite",
    "metadata",
    "migrate",
    "writer",
]
