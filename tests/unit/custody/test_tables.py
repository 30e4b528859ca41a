"""The custody tables match their Alembic migrations exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tests.support.tables import every_table


def test_migrations_match_tables(engine: Engine) -> None:
    metadata = every_table()
    assert {"custody_findings", "custody_fingerprints", "custody_counters"} <= set(metadata.tables)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "custody_" in repr(d)] == []
