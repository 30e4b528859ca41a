"""Alembic's migrations build exactly the tables the packages define, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

import custodes.store.tables  # noqa: F401  (every package's tables on metadata)
from custodes.store import metadata


def test_migrated_schema_equals_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
