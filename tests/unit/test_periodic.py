"""``Periodic``: the one background round of custody's and usage's alarms.

No assertion depends on timing: each test waits (up to 30 s) for events the rounds set.
"""

from __future__ import annotations

import logging
import threading

import pytest

from custodes.periodic import Periodic

WAIT = 30.0


def test_first_runs_once_before_the_rounds_and_close_stops_them() -> None:
    calls: list[str] = []
    third = threading.Event()

    def tick() -> None:
        calls.append("tick")
        if calls.count("tick") == 3:
            third.set()

    timer = Periodic("custodes-test", 0.001, tick, first=lambda: calls.append("first"))
    timer.start()
    timer.start()  # a second start does nothing (one thread)
    assert timer.running
    assert third.wait(WAIT)
    timer.close()
    assert not timer.running
    assert calls[0] == "first" and calls.count("first") == 1
    assert all(c == "tick" for c in calls[1:])
    assert not any(t.name == "custodes-test" for t in threading.enumerate())  # joined


def test_a_failing_round_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = 0
    recovered = threading.Event()

    def tick() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("the database is away")
        recovered.set()

    def first() -> None:
        raise OSError("no history yet")

    with caplog.at_level(logging.ERROR, logger="custodes.periodic"):
        timer = Periodic("custodes-test-fail", 0.001, tick, first=first)
        timer.start()
        try:
            assert recovered.wait(WAIT)
        finally:
            timer.close()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:2] == ["custodes-test-fail: a periodic round failed"] * 2
    assert "no history yet" in caplog.text and "the database is away" in caplog.text


def test_close_wakes_a_long_sleep_and_a_closed_timer_does_not_restart() -> None:
    started = threading.Event()
    timer = Periodic("custodes-test-long", 3600.0, lambda: None, first=started.set)
    timer.start()
    assert started.wait(WAIT)
    timer.close()  # returns without waiting the hour out (the test would time out)
    timer.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        timer.start()


def test_close_before_start_and_bad_intervals() -> None:
    Periodic("custodes-test-idle", 1.0, lambda: None).close()
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="interval must be positive"):
            Periodic("custodes-test-bad", bad, lambda: None)
