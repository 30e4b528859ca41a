"""The custody tables match their Alembic migrations exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import custodes.store.tables  # noqa: F401 - every package's tables on metadata
from custodes.store import metadata


def test_migrations_match_tables(engine: Engine) -> None:
    assert {"custody_findings", "custody_fingerprints", "custody_counters"} <= set(metadata.tables)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "custody_" in repr(d)] == []
