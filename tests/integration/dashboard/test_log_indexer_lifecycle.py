"""The log search index's background indexer in the running server: it indexes what the log
gains with nobody searching (the lifespan's order is tested in
tests/unit/dashboard/test_log_indexer.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa

from custodes.config import Settings
from tests.integration.dashboard.conftest import CliResult
from tests.support.server import ServerProcess

_DEADLINE_S = 30.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling for a state, with a deadline


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def test_the_running_server_indexes_new_entries_without_a_search(
    server: ServerProcess, dashboard_settings: Settings, cli: Callable[..., CliResult]
) -> None:
    """New entries (a request made with the CLI) reach the index with no search asked: only
    the server's background indexer writes them."""
    engine = sa.create_engine(dashboard_settings.resolved_database_url)
    try:
        before = _scalar(engine, "SELECT count(*) FROM log_entries")
        cli(
            "request",
            "cyber-frontier",
            "--key",
            "examples/keys/alice.key",
            "--purpose",
            "indexed in the background",
            "--duration",
            "1h",
        )
        after = _scalar(engine, "SELECT count(*) FROM log_entries")
        assert after > before
        _until(
            lambda: _scalar(engine, "SELECT max(idx) + 1 FROM dashboard_log_entries") >= after,
            f"the index to cover the log's {after} entries",
        )
        with engine.connect() as conn:
            types = set(
                conn.execute(
                    sa.text("SELECT type FROM dashboard_log_entries WHERE idx >= :b"),
                    {"b": before},
                ).scalars()
            )
        assert "authority.request/v1" in types, types
    finally:
        engine.dispose()
    assert httpx.get(server.url("/healthz"), timeout=30).status_code == 200
