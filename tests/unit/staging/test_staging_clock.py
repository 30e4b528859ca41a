"""The staging clock: only forward and bounded, refused on a production-like deployment, every
advance logged first, every entry made while it runs ahead marked in its own bytes, and the
clock-bound sweeps run at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock, StagingClock
from custodes.config import Settings
from custodes.errors import ConfigError, Forbidden, InputError
from custodes.log import Entry, NoteSigner, TransparencyLog
from custodes.staging import (
    StagingClockControl,
    check_staging_allowed,
    follow_log,
    logged_offset,
    staging_token,
)
from custodes.wiring import open_core

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def test_the_clock_only_moves_forward_and_not_past_its_limit() -> None:
    clock = StagingClock(FrozenClock(T0), max_offset=timedelta(days=10))
    assert clock.now() == T0 and clock.offset == timedelta(0)
    assert clock.advance(timedelta(hours=73)) == timedelta(hours=73)
    assert clock.now() == T0 + timedelta(hours=73)
    for bad in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(ValueError, match="only moves forward"):
            clock.advance(bad)
    with pytest.raises(ValueError, match="at most 10 days"):
        clock.advance(timedelta(days=8))
    assert clock.offset == timedelta(hours=73)


@pytest.mark.parametrize(
    ("demo", "origin", "replicas", "refused"),
    [
        (True, "custodes.local/log", False, None),
        (False, "staging.example.org/log", False, None),
        (False, "log.example.org/staging", False, None),
        (False, "custodes.test/log", False, None),
        (False, "log.example.org/custodes", False, "does not say it is a staging log"),
        (False, "stagingly.example.org/log", False, "does not say it is a staging log"),
        (True, "custodes.local/log", True, "refused with log_replicas"),
    ],
)
def test_refused_on_a_production_like_deployment(
    demo: bool, origin: str, replicas: bool, refused: str | None
) -> None:
    if refused is None:
        check_staging_allowed(demo=demo, log_origin=origin, log_replicas=replicas)
        return
    with pytest.raises(ConfigError, match=refused):
        check_staging_allowed(demo=demo, log_origin=origin, log_replicas=replicas)


def test_the_token_is_made_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "staging-clock.token"
    token = staging_token(path)
    assert len(token) >= 32 and (path.stat().st_mode & 0o777) == 0o600
    assert staging_token(path) == token
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="holds no token"):
        staging_token(path)


def test_an_entry_marked_by_a_staging_clock_reads_back_and_a_bad_mark_is_refused() -> None:
    entry = Entry.create(
        "log.annotation/v1", time=T0, principal="alice@lab", body={"text": "hello"}
    ).on_staging_clock(3600)
    data = json.loads(entry.to_json())
    assert data["staging_clock"] == {"offset_seconds": 3600}
    assert Entry.from_json(entry.to_json()) == entry
    for bad in ({"offset_seconds": 0}, {"offset_seconds": "1"}, {"offset": 1}, [1]):
        with pytest.raises(InputError, match="staging_clock|offset"):
            Entry.from_json(json.dumps({**data, "staging_clock": bad}))
    with pytest.raises(InputError, match="wrong fields"):
        Entry.from_json(json.dumps({**data, "staged": True}))


@pytest.fixture
def staged(sqlite_engine: Engine) -> Iterator[tuple[StagingClock, TransparencyLog]]:
    clock = StagingClock(FrozenClock(T0))
    log = TransparencyLog(sqlite_engine, NoteSigner.generate("staging.test/log"), clock=clock)
    log.start()
    yield clock, log
    log.close()


def _entry(log: TransparencyLog, index: int) -> dict[str, object]:
    found: dict[str, object] = json.loads(log.entry_data(index))
    return found


def test_an_advance_is_logged_first_and_marks_every_entry_after_it(
    staged: tuple[StagingClock, TransparencyLog],
) -> None:
    clock, log = staged
    swept: list[str] = []
    control = StagingClockControl(clock, log, "t" * 40)
    control.on_advance("reviews", lambda: swept.append("reviews"))
    control.on_advance("broken", lambda: 1 / 0)  # a failing sweep does not undo the advance
    control.on_advance("alarms", lambda: swept.append("alarms"))
    note = {"text": "before"}
    log.append(Entry.create("log.annotation/v1", time=clock.now(), principal="a@x", body=note))
    assert "staging_clock" not in _entry(log, 0)
    with pytest.raises(Forbidden, match="not the staging clock's token"):
        control.advance(timedelta(hours=1), token="u" * 40)
    for bad in (timedelta(0), timedelta(days=61)):
        with pytest.raises(InputError, match="positive duration"):
            control.advance(bad, token="t" * 40)
    assert log.size() == 1 and clock.offset == timedelta(0) and swept == []
    done = control.advance(timedelta(hours=73), token="t" * 40, reason="drill")
    assert done.offset == timedelta(hours=73) and done.log_index == 1
    assert swept == ["reviews", "alarms"]
    advanced = _entry(log, 1)
    assert advanced["type"] == "staging.clock/v1"
    assert advanced["staging_clock"] == {"offset_seconds": 73 * 3600}
    assert advanced["body"] == {
        "advanced_seconds": 73 * 3600,
        "offset_seconds": 73 * 3600,
        "real_time": "2026-11-22T12:00:00.000000Z",
        "reason": "drill",
    }
    after = {"text": "after"}
    log.append(Entry.create("log.annotation/v1", time=clock.now(), principal="a@x", body=after))
    marked = _entry(log, 2)
    assert marked["staging_clock"] == {"offset_seconds": 73 * 3600}
    assert marked["time"] == "2026-11-25T13:00:00.000000Z"
    # The mark is in the leaf's own bytes (what receipts and checkpoints cover).
    assert b'"staging_clock":{"offset_seconds":262800}' in log.entry_data(2)


def test_catching_up_moves_only_forward_and_not_past_the_limit() -> None:
    clock = StagingClock(FrozenClock(T0), max_offset=timedelta(days=10))
    assert clock.catch_up(timedelta(hours=5)) == timedelta(hours=5)
    assert clock.catch_up(timedelta(hours=1)) == timedelta(hours=5)  # never back
    assert clock.now() == T0 + timedelta(hours=5)
    with pytest.raises(ValueError, match="at most 10 days"):
        clock.catch_up(timedelta(days=11))
    assert clock.offset == timedelta(hours=5)


def test_a_clock_follows_the_offset_its_log_records(
    staged: tuple[StagingClock, TransparencyLog],
) -> None:
    """Another process on the deployment's database (a CLI command, a restarted server) reads
    how far ahead the deployment's clock runs from the newest entry's mark."""
    clock, log = staged
    other = StagingClock(FrozenClock(T0))
    assert logged_offset(log) == timedelta(0) and follow_log(other, log) == timedelta(0)
    note = {"text": "before"}
    log.append(Entry.create("log.annotation/v1", time=clock.now(), principal="a@x", body=note))
    assert logged_offset(log) == timedelta(0)
    StagingClockControl(clock, log, "t" * 40).advance(timedelta(hours=73), token="t" * 40)
    assert logged_offset(log) == timedelta(hours=73)
    assert follow_log(other, log) == timedelta(hours=73) and other.now() == clock.now()
    # A real clock cannot follow; it is left as it is.
    assert follow_log(FrozenClock(T0), log) == timedelta(0)


def test_a_deployment_reopened_keeps_its_staging_time(tmp_path: Path) -> None:
    """Restarted without --staging-clock (or opened by a CLI command, whose settings do not
    say), a deployment whose log ran ahead keeps its clock there: no entry is dated behind
    one already logged, and each is marked as the staging clock's."""
    settings = Settings(data_dir=tmp_path, demo=True, staging_clock=True)
    core = open_core(settings)
    try:
        assert isinstance(core.clock, StagingClock)
        StagingClockControl(core.clock, core.log, "t" * 40).advance(
            timedelta(days=3), token="t" * 40
        )
    finally:
        core.close()
    core = open_core(settings.model_copy(update={"staging_clock": False}))
    try:
        assert isinstance(core.clock, StagingClock)
        assert core.clock.offset == timedelta(days=3)
        note = {"text": "reopened"}
        appended = core.log.append(
            Entry.create("log.annotation/v1", time=core.clock.now(), principal="a@x", body=note)
        )
        entry = json.loads(core.log.entry_data(appended.index))
        assert entry["staging_clock"] == {"offset_seconds": 3 * 86_400}
    finally:
        core.close()
    # A deployment whose log never ran ahead keeps the real time.
    fresh = open_core(Settings(data_dir=tmp_path / "fresh", demo=True))
    try:
        assert fresh.clock.now() - datetime.now(UTC) < timedelta(minutes=1)
    finally:
        fresh.close()
