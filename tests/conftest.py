"""Shared fixtures: clocks, databases (SQLite and a throwaway PostgreSQL cluster), the log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine, migrate
from tests.support.postgres import PostgresCluster, start_cluster

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The project's ``data/`` folder: test vectors, schemas and labelled datasets it carries."""
    if not DATA.exists():
        pytest.fail(f"data/ folder not found at {DATA}")
    return DATA


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    if os.environ.get("CUSTODES_TEST_NO_POSTGRES"):
        pytest.skip("CUSTODES_TEST_NO_POSTGRES is set: PostgreSQL tests are skipped")
    with start_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL; tests using it run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'custodes.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend."""
    eng = create_db_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite engine, for tests that need only one backend."""
    eng = create_db_engine(f"sqlite:///{tmp_path / 'custodes.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def log_signer() -> NoteSigner:
    return NoteSigner.generate("test.custodes/log")


@pytest.fixture
def transparency_log(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> Iterator[TransparencyLog]:
    log = TransparencyLog(engine, log_signer, clock=clock)
    log.start()
    yield log
    log.close()
