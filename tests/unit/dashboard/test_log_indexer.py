"""The log search index's background indexer on a real log: it catches up with no search,
step by step, follows what the log gains, and stops cleanly (its thread gone, not restartable)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from custodes.clock import FrozenClock
from custodes.config import Settings
from custodes.dashboard import LogIndex, install_dashboard
from custodes.dashboard._log_indexer import LogIndexer
from custodes.dashboard._tables import dashboard_log_entries
from custodes.log import ANNOTATION, Entry, NoteSigner, TransparencyLog

_DEADLINE_S = 30.0  # generous: a loaded CI machine
_THREAD = "custodes-dashboard-log-index"


def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll for a state until a deadline (the indexer's thread reaches it in its own time)."""
    deadline = time.monotonic() + _DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _entries(n: int, start: int, clock: FrozenClock) -> list[Entry]:
    return [
        Entry.create(
            ANNOTATION,
            time=clock.now(),
            principal="alice@lab" if i % 2 else "dana@asi",
            body={"text": f"n{i}"},
        )
        for i in range(start, start + n)
    ]


def test_the_indexer_catches_up_without_a_search_and_stops_cleanly(
    sqlite_engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.append_batch(_entries(2300, 0, clock))
    index = LogIndex(sqlite_engine, log)
    assert index.covered() == 0
    indexer = LogIndexer(index, interval=0.05, batch=700)  # four steps for the first round
    indexer.start()
    try:
        assert indexer.running
        _until(lambda: index.covered() == 2300, "the first 2,300 entries indexed")
        log.append_batch(_entries(15, 2300, clock))
        _until(lambda: index.covered() == 2315, "the 15 new entries indexed")
    finally:
        indexer.close()
    assert not indexer.running
    assert not [t for t in threading.enumerate() if t.name == _THREAD]
    with sqlite_engine.connect() as conn:
        rows = conn.execute(
            select(dashboard_log_entries.c.idx, dashboard_log_entries.c.principal).order_by(
                dashboard_log_entries.c.idx
            )
        ).all()
    # Every entry once, in order, each with what its entry says.
    assert [r.idx for r in rows] == list(range(2315))
    assert all(r.principal == ("alice@lab" if r.idx % 2 else "dana@asi") for r in rows)
    with pytest.raises(RuntimeError):
        indexer.start()  # a closed indexer is not restarted
    indexer.close()  # closing twice is harmless
    log.close()


def test_the_indexer_starts_with_the_app_and_stops_before_the_deployment_closes(
    sqlite_engine: Engine, log_signer: NoteSigner, clock: FrozenClock, tmp_path: Path
) -> None:
    """The dashboard's part of the app's lifespan (FastAPI merges it into the app's own, as
    in the server): the deployment is there when the indexer starts, and the indexer's thread
    is gone when the app's lifespan goes on to close the deployment."""
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.append_batch(_entries(40, 0, clock))
    deployment = SimpleNamespace(
        settings=Settings(data_dir=tmp_path, dashboard_index_interval_s=0.05),
        engine=sqlite_engine,
        log=log,
    )
    seen_at_close: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:  # the server's, in miniature
        app.state.deployment = deployment
        yield
        seen_at_close.append(any(t.name == _THREAD for t in threading.enumerate()))
        log.close()

    app = FastAPI(lifespan=lifespan)
    install_dashboard(app)
    with TestClient(app):
        indexer = app.state.dashboard_log_indexer
        assert indexer is not None and indexer.running
        _until(lambda: app.state.dashboard_log_index.covered() == 40, "the 40 entries indexed")
    assert seen_at_close == [False]  # stopped before the deployment closed
    assert not indexer.running


def test_no_background_indexer_when_the_interval_is_zero(
    sqlite_engine: Engine, log_signer: NoteSigner, clock: FrozenClock, tmp_path: Path
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    deployment = SimpleNamespace(
        settings=Settings(data_dir=tmp_path, dashboard_index_interval_s=0),
        engine=sqlite_engine,
        log=log,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.deployment = deployment
        yield

    app = FastAPI(lifespan=lifespan)
    install_dashboard(app)
    with TestClient(app):
        assert app.state.dashboard_log_indexer is None
        assert not [t for t in threading.enumerate() if t.name == _THREAD]
    log.close()


def test_a_round_that_cannot_index_is_logged_once_and_retried(
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The index's table gone (a real database failure): each round fails, the reason is
    logged once (not every 50 ms), and once the table is back the next round catches up."""
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.append_batch(_entries(30, 0, clock))
    index = LogIndex(sqlite_engine, log)
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE dashboard_log_entries RENAME TO kept_aside"))
    indexer = LogIndexer(index, interval=0.05)
    caplog.set_level(logging.INFO, logger="custodes.dashboard._log_indexer")
    indexer.start()
    try:
        _until(lambda: indexer.failed_rounds >= 4, "four failed rounds")
        assert indexer.last_error is not None and "cannot be read" in indexer.last_error
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "cannot catch up" in warned[0].getMessage(), warned
        with sqlite_engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE kept_aside RENAME TO dashboard_log_entries"))
        _until(lambda: index.covered() == 30, "the 30 entries indexed once the table is back")
        _until(lambda: indexer.last_error is None, "the round to report success")
    finally:
        indexer.close()
    assert indexer.failed_rounds == 0
    assert any("catching up again" in r.getMessage() for r in caplog.records)
    log.close()
