"""Alembic's migrations build exactly the tables the packages define, on both backends, and
``store`` migrates without importing any domain package (it is the bottom layer)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from custodes.errors import StoreError
from custodes.store import create_db_engine, current_heads, migrate
from tests.support.tables import every_table


def test_migrated_schema_equals_the_table_definitions(engine: Engine) -> None:
    metadata = every_table()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_store_migrates_every_branch_without_importing_a_domain_package(tmp_path: Path) -> None:
    # A fresh interpreter: this process has imported every package already.
    script = textwrap.dedent(
        f"""
        import sys
        from custodes.store import create_db_engine, current_heads, migrate
        engine = create_db_engine("sqlite:///{tmp_path / "a.db"}")
        migrate(engine)
        print(sorted(current_heads(engine)))
        print(sorted(m for m in sys.modules if m.startswith("custodes")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    heads, loaded = eval(out[0]), eval(out[1])  # noqa: S307 - our own printed lists
    assert {h.split("_")[0] for h in heads} >= {"log", "authority", "witness", "custody"}
    assert {m.split(".")[1] for m in loaded if "." in m} == {"store", "errors"}


def test_one_branch_migrates_only_its_package(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'witness.db'}")
    migrate(engine, branch="witness")
    assert current_heads(engine) == {"witness_0001"}
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables and all(t.startswith("witness_") for t in tables)


def test_an_unknown_branch_is_refused_by_name(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(StoreError, match="cannot migrate the witnesss tables.*witnesss"):
        migrate(engine, branch="witnesss")
