"""A caller that cancels its append cannot stop the sequencer or lose others' entries."""

import time
from concurrent.futures import Future
from datetime import UTC, datetime

import custodes.log._types  # noqa: F401  (registers log.annotation/v1)
from custodes.log import Appended, Entry, TransparencyLog


def _entry(i: int) -> Entry:
    return Entry.create(
        "log.annotation/v1",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        principal="p",
        body={"text": f"entry {i}"},
    )


def test_cancelled_appends_are_skipped_and_the_sequencer_lives_on(
    transparency_log: TransparencyLog,
) -> None:
    # Park the sequencer on its first batch by holding the writer's lock, so that the other
    # appends are certainly still queued when they are cancelled (without it a fast sequencer
    # may have taken them all, and the test would prove nothing).
    transparency_log.start()  # started before the lock is held: starting takes it too
    writer_lock = transparency_log._writer.lock
    with writer_lock:
        first = transparency_log.append_batch([_entry(0)], wait=False, inline_if_idle=False)
        deadline = time.monotonic() + 10
        while not first.running() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert first.running(), "the sequencer never took the first append"
        futures: list[Future[list[Appended]]] = [first] + [
            transparency_log.append_batch([_entry(i)], wait=False, inline_if_idle=False)
            for i in range(1, 200)
        ]
        cancelled = {i for i, f in enumerate(futures) if i % 3 == 1 and f.cancel()}
    assert len(cancelled) == len(range(1, 200, 3))
    done = [f.result(timeout=30) for i, f in enumerate(futures) if i not in cancelled]
    assert len(done) == 200 - len(cancelled)
    # Only the appends that were not cancelled were written, at consecutive indices.
    indices = sorted(r[0].index for r in done)
    assert indices == list(range(len(done)))
    # The sequencer still serves new appends.
    later = transparency_log.append(_entry(999))
    assert later.index == len(done)
    assert transparency_log.latest_checkpoint().checkpoint.size == len(done) + 1
