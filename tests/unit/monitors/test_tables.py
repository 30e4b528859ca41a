"""The monitors' tables match their Alembic migration exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tests.support.tables import every_table


def test_migration_matches_tables(engine: Engine) -> None:
    metadata = every_table()
    assert {"monitors_detections", "monitors_assignments", "monitors_scan_files"} <= set(
        metadata.tables
    )
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)

    def ours(item: object) -> bool:
        return "monitors_" in repr(item)

    assert [d for d in diff if ours(d)] == []
