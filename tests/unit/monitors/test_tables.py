"""The monitors' tables match their Alembic migration exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import custodes.store.tables  # noqa: F401 - every package's tables on metadata
from custodes.store import metadata


def test_migration_matches_tables(engine: Engine) -> None:
    assert {"monitors_detections", "monitors_assignments", "monitors_scan_files"} <= set(
        metadata.tables
    )
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)

    def ours(item: object) -> bool:
        return "monitors_" in repr(item)

    assert [d for d in diff if ours(d)] == []
