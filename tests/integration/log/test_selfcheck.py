"""The log defends itself: it checks its stored tree before appending, covers what a crash left
unsigned, and refuses appends (naming what disagrees) when the store was tampered with.

Each case runs on SQLite and PostgreSQL. A "crash" is a log object that integrated entries
(acknowledged, durable) without signing and is never closed; a new log object on the same
database plays the restarted process. test_crash.py does the same with SIGKILLed servers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update

from custodes.errors import LogWriteError
from custodes.log import (
    Entry,
    Frontier,
    NoteSigner,
    SignedCheckpoint,
    TransparencyLog,
    resolve_alarms,
)
from custodes.log._tables import log_alarms, log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._types import ANNOTATION
from custodes.log._verify import verify_store

BATCHES = (1, 3, 60, 200, 1, 255, 90, 7)  # 617 entries, 8 checkpoints; crosses tile boundaries


def _datas(start: int, n: int) -> list[bytes]:
    when = datetime(2026, 12, 7, 1, tzinfo=UTC)
    return [
        Entry.create(ANNOTATION, time=when, principal="t", body={"text": f"n{start + i}"}).to_json()
        for i in range(n)
    ]


Snapshot = dict[str, list[dict[str, Any]]]


def _build(engine: Engine, signer: NoteSigner) -> tuple[int, Snapshot]:
    """The log of BATCHES, and a backup of its entries, tiles and state after four batches."""
    log = TransparencyLog(engine, signer)
    size = 0
    backup: Snapshot = {}
    for n, k in enumerate(BATCHES):
        log._writer.integrate(_datas(size, k), sign=True)
        size += k
        if n == 3:
            with engine.connect() as conn:
                backup = {
                    t.name: [dict(r._mapping) for r in conn.execute(select(t))]
                    for t in (log_entries, log_tiles, log_state)
                }
    return size, backup


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(log_entries)).scalar_one()
        checkpoints = conn.execute(select(func.count()).select_from(log_checkpoints)).scalar_one()
    return entries, checkpoints


# --- coverage after a crash and at a clean stop ----------------------------------------------


def test_entries_acknowledged_but_unsigned_at_a_crash_are_covered_at_restart(
    engine: Engine, log_signer: NoteSigner
) -> None:
    size, _ = _build(engine, log_signer)
    crashed = TransparencyLog(engine, log_signer)
    acked = crashed._writer.integrate(_datas(size, 40), sign=False)  # durable and acknowledged...
    assert crashed.checkpoint_size() == size  # ...but no checkpoint covers them; then: crash
    assert acked[-1].index == size + 39

    restarted = TransparencyLog(engine, log_signer, checkpoint_interval=60.0)
    try:
        restarted.start()
        # At once, not after the next append (and not after the 60 s interval either).
        assert restarted.checkpoint_size() == size + 40
        root = restarted.root_at(size + 40)
        assert restarted.latest_checkpoint(fresh=False).checkpoint.root_hash == root
    finally:
        restarted.close()
    assert verify_store(engine, log_signer.verifier).ok


def test_a_clean_stop_signs_over_everything_integrated(
    engine: Engine, log_signer: NoteSigner
) -> None:
    log = TransparencyLog(engine, log_signer, checkpoint_interval=60.0)
    log.start()
    log._writer.integrate(_datas(0, 5), sign=True)
    log._writer.integrate(_datas(5, 7), sign=False)
    assert log.checkpoint_size() == 5
    log.close()
    reader = TransparencyLog(engine, log_signer)
    assert reader.checkpoint_size() == 12


# --- tampered stores: the log refuses appends and verify names the edit -----------------------

Tamper = Callable[[Engine, int, Snapshot], None]


def _flip_frontier_bit(engine: Engine, size: int, backup: Snapshot) -> None:
    with engine.begin() as conn:
        edge = bytes(conn.execute(select(log_state.c.frontier)).scalar_one())
        flipped = bytes([edge[0] ^ 0x01]) + edge[1:]
        conn.execute(update(log_state).values(frontier=flipped))


def _flip_frontier_bit_and_root(engine: Engine, size: int, backup: Snapshot) -> None:
    # A consistent edit of the state row: its root is recomputed from the flipped frontier.
    with engine.begin() as conn:
        edge = bytes(conn.execute(select(log_state.c.frontier)).scalar_one())
        flipped = edge[:-1] + bytes([edge[-1] ^ 0x80])
        root = Frontier.from_bytes(size, flipped).root()
        conn.execute(update(log_state).values(frontier=flipped, root_hash=root))


def _raise_size(engine: Engine, size: int, backup: Snapshot) -> None:
    with engine.begin() as conn:
        conn.execute(update(log_state).values(size=size + 1))


def _raise_size_with_frontier(engine: Engine, size: int, backup: Snapshot) -> None:
    # The size raised together with a well-formed frontier for it: a hole the log would sign.
    with engine.begin() as conn:
        edge = bytes(conn.execute(select(log_state.c.frontier)).scalar_one())
        grown = Frontier.from_bytes(size, edge).extend([b"\x07" * 32])
        conn.execute(
            update(log_state).values(
                size=grown.size, frontier=grown.to_bytes(), root_hash=grown.root()
            )
        )


def _truncate_entries(engine: Engine, size: int, backup: Snapshot) -> None:
    with engine.begin() as conn:
        conn.execute(delete(log_entries).where(log_entries.c.idx >= size - 50))


def _restore_backup_keep_checkpoints(engine: Engine, size: int, backup: Snapshot) -> None:
    # An older backup of entries, tiles and state restored; the checkpoints signed since kept.
    with engine.begin() as conn:
        for table in (log_entries, log_tiles, log_state):
            conn.execute(delete(table))
            conn.execute(insert(table), backup[table.name])


def _delete_checkpoint_row(engine: Engine, size: int, backup: Snapshot) -> None:
    with engine.begin() as conn:
        ids = sorted(conn.execute(select(log_checkpoints.c.id)).scalars())
        conn.execute(delete(log_checkpoints).where(log_checkpoints.c.id == ids[3]))


def _delete_second_newest_checkpoint(engine: Engine, size: int, backup: Snapshot) -> None:
    with engine.begin() as conn:
        ids = sorted(conn.execute(select(log_checkpoints.c.id)).scalars())
        conn.execute(delete(log_checkpoints).where(log_checkpoints.c.id == ids[-2]))


def _flip_edge_tile(engine: Engine, size: int, backup: Snapshot) -> None:
    with engine.begin() as conn:
        index = (size - 1) // 256
        hashes = bytes(
            conn.execute(
                select(log_tiles.c.hashes).where(log_tiles.c.level == 0, log_tiles.c.idx == index)
            ).scalar_one()
        )
        conn.execute(
            update(log_tiles)
            .where(log_tiles.c.level == 0, log_tiles.c.idx == index)
            .values(hashes=hashes[:-1] + bytes([hashes[-1] ^ 1]))
        )


CASES: dict[str, tuple[Tamper, str, str]] = {
    # name: (tamper, what the refusal names, what verify names)
    "frontier bit": (_flip_frontier_bit, "frontier", "right edge"),
    "frontier bit with its root": (_flip_frontier_bit_and_root, "frontier", "right edge"),
    "size raised": (_raise_size, "size", "entries"),
    "size raised with a frontier": (_raise_size_with_frontier, "stored size 618", "entries"),
    "entries truncated": (_truncate_entries, "entry 567 is missing", "missing"),
    "restored backup, checkpoints kept": (
        _restore_backup_keep_checkpoints,
        "entries were removed",
        "entries were removed",
    ),
    "middle checkpoint row deleted": (_delete_checkpoint_row, "deleted", "deleted"),
    "second newest checkpoint row deleted": (
        _delete_second_newest_checkpoint,
        "checkpoint rows are missing",
        "deleted",
    ),
    "edge tile bit": (_flip_edge_tile, "tile/0/002.p/105", "tile/0/002.p/105"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_store_refuses_appends_and_verify_names_the_edit(
    engine: Engine, log_signer: NoteSigner, case: str
) -> None:
    tamper, refusal, finding = CASES[case]
    size, backup = _build(engine, log_signer)
    tamper(engine, size, backup)
    before = _counts(engine)

    log = TransparencyLog(engine, log_signer)
    try:
        log.start()  # does not raise: reads stay available for inspection
        assert log.halted is not None and refusal in log.halted, log.halted
        with pytest.raises(LogWriteError, match="refuses appends") as refused:
            log.append(Entry.from_json(_datas(size, 1)[0]), timeout=10)
        assert refusal in refused.value.message
        with pytest.raises(LogWriteError, match="refuses appends"):
            log._writer.integrate(_datas(size, 1))
        with pytest.raises(LogWriteError, match="refuses appends"):
            log.sign_checkpoint()
    finally:
        log.close()
    assert _counts(engine) == before, "a halted log wrote something"

    report = verify_store(engine, log_signer.verifier)
    assert not report.ok
    assert any(finding in p.message for p in report.problems), [p.message for p in report.problems]


def test_a_frontier_edited_while_running_stops_the_next_integration(
    engine: Engine, log_signer: NoteSigner
) -> None:
    log = TransparencyLog(engine, log_signer)
    log.start()
    try:
        log.append_batch([Entry.from_json(d) for d in _datas(0, 300)])
        _flip_frontier_bit(engine, 300, {})
        with pytest.raises(LogWriteError, match="frontier"):
            log.append_batch([Entry.from_json(d) for d in _datas(300, 1)], timeout=10)
        assert log.halted is not None
        assert log.size() == 300
    finally:
        log.close()


def test_an_untampered_log_passes_the_self_check_at_every_size(
    engine: Engine, log_signer: NoteSigner
) -> None:
    log = TransparencyLog(engine, log_signer)
    size = 0
    for k in (1, 1, 1, 5, 248, 1, 255, 1, 65_536 - 512 - 2, 1, 300):
        log._writer.integrate(_datas(size, k), sign=size % 3 == 0)
        size += k
        result = TransparencyLog(engine, log_signer).check()
        assert result.size == size
    assert log.halted is None


# --- rollback alarms ---------------------------------------------------------------------------


def test_a_rollback_alarm_stops_appends_across_restarts_until_an_operator_resumes(
    engine: Engine, log_signer: NoteSigner
) -> None:
    size, _ = _build(engine, log_signer)
    log = TransparencyLog(engine, log_signer)
    log.start()
    try:
        assert log.raise_alarm(
            "rollback",
            f"witness w1 holds size {size + 100}, larger than the log's {size}",
            witness="w1",
            witness_size=size + 100,
        )
        with pytest.raises(LogWriteError, match="witness w1 holds size 717"):
            log._writer.integrate(_datas(size, 1))
    finally:
        log.close()
    again = TransparencyLog(engine, log_signer)
    again.start()
    try:
        assert again.halted is not None and "alarm #1" in again.halted
        resolved = resolve_alarms(engine, reason="test: the witness was reset")
        assert [a.id for a in resolved] == [1]
        assert again.halted is None  # the running log sees the resolution
        again._writer.integrate(_datas(size, 1))
        # The same condition, already accepted, does not halt again.
        assert not again.raise_alarm("rollback", "again", witness="w1", witness_size=size + 100)
    finally:
        again.close()
    with engine.connect() as conn:
        row = conn.execute(select(log_alarms)).one()
    assert row.resolution == "test: the witness was reset" and row.resolved_at is not None


def test_a_stray_row_with_a_negative_index_is_named_as_such(
    engine: Engine, log_signer: NoteSigner
) -> None:
    size, _ = _build(engine, log_signer)
    with engine.begin() as conn:
        conn.execute(insert(log_entries).values(idx=-3, leaf_hash=b"\0" * 32, data=b"{}"))
    report = verify_store(engine, log_signer.verifier)
    messages = [p.message for p in report.problems]
    assert messages == [
        "a stored entry row has the negative index -3: indices start at 0 (the row was added "
        "by hand)"
    ], messages
    log = TransparencyLog(engine, log_signer)
    log.start()
    try:
        assert log.halted is not None and "negative index -3" in log.halted
    finally:
        log.close()
    assert report.entries == size


def test_a_server_on_a_tampered_database_serves_reads_and_refuses_appends(
    tmp_path: Path, db_url: str
) -> None:
    import httpx

    from custodes.config import Settings
    from custodes.store import create_db_engine
    from tests.support.keys import LOG_WRITER, issue_keys
    from tests.support.server import running_server

    signer = NoteSigner.generate("custodes.local/log")
    (tmp_path / "log.key").write_text(signer.to_key())
    settings = Settings(data_dir=tmp_path, database_url=db_url, demo=True)
    key = issue_keys(settings, LOG_WRITER)[LOG_WRITER]
    with running_server(settings, log_path=tmp_path / "server.log"):
        pass  # the first start: the constitution is adopted (logged)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        log = TransparencyLog(engine, signer)
        start = log.size()
        log._writer.integrate(_datas(start, 300), sign=True)
        _flip_frontier_bit(engine, start + 300, {})
    finally:
        engine.dispose()
    with running_server(settings, log_path=tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            health = client.get("/healthz").json()
            assert health["status"] == "log_halted" and "frontier" in health["log_halted"]
            refused = client.post(
                "/log/entries",
                json={"type": "log.annotation/v1", "body": {"text": "x"}},
                headers={"authorization": f"Bearer {key}"},
            )
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "log_unavailable" and "frontier" in error["message"]
            assert "Traceback" not in refused.text
            # Reads go on: the newest signed checkpoint, entries, the public key.
            cp = SignedCheckpoint.from_text(client.get("/checkpoint").text, signer.verifier)
            assert cp.checkpoint.size == start + 300
            assert client.get("/log/entries/5").status_code == 200
            assert client.get("/log/key").text.strip() == signer.verifier.to_key()
            assert client.get("/healthz").json()["log_size"] == start + 300
