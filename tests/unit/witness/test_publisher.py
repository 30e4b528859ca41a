"""The publisher on each backend, against witnesses served by real uvicorn on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.log import ALG_COSIGNATURE_V1, Entry, NoteSigner, TransparencyLog
from custodes.store import create_db_engine
from custodes.witness import (
    PolicyWitness,
    Witness,
    WitnessPolicy,
    WitnessPublisher,
    create_witness_app,
    migrate_witness,
)


class _ThreadServer:
    def __init__(self, witness: Witness, port: int = 0) -> None:
        self.witness = witness
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(create_witness_app(witness), log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def witness_servers(
    tmp_path: Path, log_signer: NoteSigner
) -> Iterator[list[tuple[NoteSigner, _ThreadServer]]]:
    out = []
    for i in range(3):
        engine = create_db_engine(f"sqlite:///{tmp_path / f'w{i}.db'}")
        migrate_witness(engine)
        signer = NoteSigner.generate(f"w{i}.unit.test", alg=ALG_COSIGNATURE_V1)
        out.append((signer, _ThreadServer(Witness(engine, signer, [log_signer.verifier]))))
    yield out
    for _, server in out:
        server.stop()


def _append(log: TransparencyLog, n: int) -> int:
    entries = [
        Entry.create(
            "log.annotation/v1", time=datetime.now(UTC), principal="t", body={"text": str(i)}
        )
        for i in range(n)
    ]
    return log.append_batch(entries)[-1].index + 1


def test_publisher_collects_quorum_on_each_backend(
    engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    witness_servers: list[tuple[NoteSigner, _ThreadServer]],
) -> None:
    log = TransparencyLog(engine, log_signer, clock=clock, checkpoint_interval=0.001)
    log.start()
    members = [
        PolicyWitness(s.name, s.verifier, f"http://127.0.0.1:{srv.port}")
        for s, srv in witness_servers
    ]
    # The third witness is named with a URL nobody listens on: it is down from the start.
    witness_servers[2][1].stop()
    policy = WitnessPolicy.threshold(2, members)
    publisher = WitnessPublisher(engine, log, policy, clock=clock, retry_interval=0.05)
    publisher.start()
    try:
        for _ in range(3):
            size = _append(log, 4)
            assert publisher.wait_for_quorum(size, timeout=20)
        cosigned = publisher.cosigned()
        assert cosigned is not None and cosigned.quorum_met
        assert cosigned.checkpoint.checkpoint.size == size
        assert sorted(cosigned.witnesses) == sorted(s.name for s, _ in witness_servers[:2])
        policy.check(cosigned.checkpoint)
        status = {p.name: p for p in publisher.status()}
        assert status[witness_servers[0][0].name].size == size
        assert "unreachable" in str(status[witness_servers[2][0].name].last_error)
    finally:
        publisher.close()
        log.close()
    # A new publisher (a restarted server) finds what was stored.
    again = WitnessPublisher(engine, log, policy, clock=clock)
    found = again.cosigned()
    assert found is not None and found.checkpoint.checkpoint.size == size


def test_policy_change_takes_effect_at_the_next_round(
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    witness_servers: list[tuple[NoteSigner, _ThreadServer]],
) -> None:
    members = [
        PolicyWitness(s.name, s.verifier, f"http://127.0.0.1:{srv.port}")
        for s, srv in witness_servers
    ]
    current = [WitnessPolicy.threshold(1, members[:1])]
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock, checkpoint_interval=0.001)
    log.start()
    publisher = WitnessPublisher(
        sqlite_engine,
        log,
        current[0],
        clock=clock,
        retry_interval=0.05,
        policy_source=lambda: current[0],
    )
    publisher.start()
    try:
        size = _append(log, 2)
        assert publisher.wait_for_quorum(size, timeout=20)
        # An amendment: three witnesses, all required.
        current[0] = WitnessPolicy.threshold(3, members)
        size = _append(log, 2)
        assert publisher.wait_for_quorum(size, timeout=20)
        cosigned = publisher.cosigned()
        assert cosigned is not None and len(cosigned.witnesses) == 3
        assert publisher.policy.describe().startswith("3 of")
    finally:
        publisher.close()
        log.close()


class _Refuser:
    """A TCP listener that counts connections and closes each at once (a broken witness)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_a_failing_witness_is_backed_off_logged_once_and_asked_again_when_back(
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    witness_servers: list[tuple[NoteSigner, _ThreadServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    signer, good = witness_servers[0]
    broken = _Refuser()
    members = [
        PolicyWitness(signer.name, signer.verifier, f"http://127.0.0.1:{good.port}"),
        PolicyWitness(
            "broken.unit.test", witness_servers[1][0].verifier, f"http://127.0.0.1:{broken.port}"
        ),
    ]
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock, checkpoint_interval=0.001)
    log.start()
    publisher = WitnessPublisher(
        sqlite_engine,
        log,
        WitnessPolicy.threshold(1, members),
        clock=clock,
        retry_interval=0.1,
        max_backoff=0.8,
    )
    publisher.start()
    caplog.set_level("WARNING", logger="custodes.witness._publisher")
    try:
        # A new checkpoint every 20 ms for 3 s: without backoff the broken witness would be
        # asked for most of them (~150); with it, at 0, 0.1, 0.3, 0.7, 1.5, 2.3 and 3.1 s.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            size = _append(log, 1)
            time.sleep(0.02)
        assert 4 <= broken.connections <= 9, broken.connections
        warnings = [r for r in caplog.records if "broken.unit.test did not cosign" in r.message]
        assert len(warnings) == 1, [r.message for r in warnings]  # not one per retry
        # The healthy witness was paced, not starved: it holds a recent checkpoint.
        assert publisher.wait_for_quorum(size, timeout=5)
        # The good witness goes down and comes back on the same port: asked again within
        # max_backoff, it cosigns the newest checkpoint and recovery is logged.
        good.stop()
        _append(log, 1)
        time.sleep(1.0)  # asked (and failing) at about 0, 0.1, 0.3 and 0.7 s
        back = _ThreadServer(good.witness, port=good.port)
        try:
            size = _append(log, 1)
            assert publisher.wait_for_quorum(size, timeout=5)
        finally:
            back.stop()
        assert any(
            f"{signer.name} cosigned size" in r.message and "again" in r.message
            for r in caplog.records
        )
    finally:
        publisher.close()
        log.close()
        broken.close()


def test_a_rolled_back_log_stops_appending_when_a_witness_holds_more_and_stays_stopped(
    engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    witness_servers: list[tuple[NoteSigner, _ThreadServer]],
) -> None:
    from sqlalchemy import delete, insert, select

    from custodes.errors import LogWriteError
    from custodes.store import metadata

    tables = [t for t in metadata.sorted_tables if t.name.startswith(("log_", "witness_"))]
    members = [
        PolicyWitness(s.name, s.verifier, f"http://127.0.0.1:{srv.port}")
        for s, srv in witness_servers[:2]
    ]
    policy = WitnessPolicy.threshold(2, members)

    def run(check: object) -> None:
        log = TransparencyLog(engine, log_signer, clock=clock, checkpoint_interval=0.001)
        log.start()
        publisher = WitnessPublisher(engine, log, policy, clock=clock, retry_interval=0.05)
        publisher.start()
        try:
            check(log, publisher)  # type: ignore[operator]
        finally:
            publisher.close()
            log.close()

    backup: dict[str, list[dict[str, object]]] = {}

    def grow(log: TransparencyLog, publisher: WitnessPublisher) -> None:
        assert publisher.wait_for_quorum(_append(log, 5), timeout=20)
        with engine.connect() as conn:
            backup.update(
                {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in tables}
            )
        assert publisher.wait_for_quorum(_append(log, 20), timeout=20)

    run(grow)
    with engine.begin() as conn:  # restore the backup: the log and its publisher go back to 5
        for t in reversed(tables):
            conn.execute(delete(t))
        for t in tables:
            if backup[t.name]:
                conn.execute(insert(t), backup[t.name])

    def refused(log: TransparencyLog, publisher: WitnessPublisher) -> None:
        deadline = time.monotonic() + 20
        while log.halted is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.halted is not None and "holds size 25, larger than the log's 5" in log.halted
        with pytest.raises(LogWriteError, match="rolled back"):
            _append(log, 1)

    run(refused)
    assert TransparencyLog(engine, log_signer).size() == 5
    # The store is consistent with itself, but `log verify` reports what the witnesses said.
    from custodes.log import verify_store

    report = verify_store(engine, log_signer.verifier)
    assert [p.kind for p in report.problems] == ["alarm"]
    assert "holds size 25, larger than the log's 5" in report.problems[0].message

    def still_refused(log: TransparencyLog, publisher: WitnessPublisher) -> None:
        assert log.halted is not None and "alarm #" in log.halted  # stored, not re-detected
        with pytest.raises(LogWriteError, match="refuses appends"):
            _append(log, 1)

    run(still_refused)


def test_an_idle_logs_cosignatures_are_refreshed(
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    witness_servers: list[tuple[NoteSigner, _ThreadServer]],
) -> None:
    from custodes.log import cosignature_timestamp

    log = TransparencyLog(sqlite_engine, log_signer, checkpoint_interval=0.001)
    log.start()
    members = [
        PolicyWitness(s.name, s.verifier, f"http://127.0.0.1:{srv.port}")
        for s, srv in witness_servers
    ]
    policy = WitnessPolicy.threshold(3, members)
    publisher = WitnessPublisher(
        sqlite_engine, log, policy, retry_interval=0.05, refresh_interval=0.3
    )
    publisher.start()

    def stamps() -> list[int]:
        found = publisher.cosigned()
        assert found is not None
        return sorted(
            cosignature_timestamp(s)
            for s in found.checkpoint.note.signatures
            if s.name != log_signer.name
        )

    try:
        size = _append(log, 3)
        assert publisher.wait_for_quorum(size, timeout=20)
        first = stamps()
        deadline = time.monotonic() + 20
        while min(stamps()) <= max(first) and time.monotonic() < deadline:
            time.sleep(0.1)  # nothing is appended: only the refresh can renew them
        assert min(stamps()) > max(first), "cosignatures of an idle log were not refreshed"
        assert publisher.cosigned().checkpoint.checkpoint.size == size  # type: ignore[union-attr]
        policy.with_max_age(5).check(publisher.cosigned().checkpoint)  # type: ignore[union-attr]
    finally:
        publisher.close()
        log.close()
