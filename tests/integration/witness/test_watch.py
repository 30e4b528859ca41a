"""``custodes witness watch`` against a real log server: quiet when honest, loud when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from custodes.cli import main
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine
from tests.integration.witness.support import WitnessProcess, policy_text
from tests.integration.witness.test_three_witnesses import (
    _copy_db,
    append,
    post_entries,
    start_log,
    wait_cosigned,
)

pytestmark = pytest.mark.slow


def _watch(tmp_path: Path, url: str, log_signer: NoteSigner, *extra: str) -> int:
    return main(
        [
            "--data-dir",
            str(tmp_path / "overseer"),
            "witness",
            "watch",
            url,
            "--log-key",
            log_signer.verifier.to_key(),
            "--once",
            *extra,
        ]
    )


def test_watch_follows_an_honest_log_and_alarms_on_rollback_fork_and_bad_entry(
    tmp_path: Path,
    witnesses: list[WitnessProcess],
    log_signer: NoteSigner,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "log"
    policy = policy_text(witnesses, 2)
    (tmp_path / "client.policy").write_text(policy)
    server = start_log(data, log_signer, policy)
    try:
        first = append(server, 300, "many")  # more than one entry bundle
        wait_cosigned(server, first, cosigners=2)
        assert _watch(tmp_path, server.base_url, log_signer) == 0
        assert f"verified up to size {first}" in capsys.readouterr().err
        size = append(server, 4, "more")
        wait_cosigned(server, size, cosigners=2)
        assert (
            _watch(
                tmp_path, server.base_url, log_signer, "--policy", str(tmp_path / "client.policy")
            )
            == 0
        )
        assert f"verified up to size {size}" in capsys.readouterr().err
    finally:
        server.stop()
    _copy_db(data, tmp_path / "backup")
    # A malformed entry slipped past validation (a buggy or dishonest log) is caught.
    engine = create_db_engine(f"sqlite:///{data / 'custodes.db'}")
    log = TransparencyLog(engine, log_signer)
    log._sequencer.enqueue([b'{"not": "an entry"}'], inline_if_idle=False).result(30)
    log.close()
    engine.dispose()
    server = start_log(data, log_signer, policy)
    try:
        assert _watch(tmp_path, server.base_url, log_signer) == 1
        err = capsys.readouterr().err
        assert "ALARM malformed-entry" in err and f"(entry {size})" in err
    finally:
        server.stop()
    # The backup restored and one honest entry added: the watcher follows (it never took the
    # bad entry as verified). The witnesses cosigned the bad entry, so the restored log is a
    # rollback: it refuses appends until its operator resumes it, explicitly and unsafely.
    shutil.rmtree(data)
    _copy_db(tmp_path / "backup", data)
    server = start_log(data, log_signer, policy)
    try:
        refused = post_entries(server, ["refused"])
        assert refused.status_code == 503 and "rolled back" in refused.text
        resume = ["--data-dir", str(data), "log", "unsafe-resume", "--yes", "--reason", "test"]
        assert main(resume) == 0
        assert append(server, 1, "a") == size + 1
        assert _watch(tmp_path, server.base_url, log_signer) == 0
    finally:
        server.stop()
    # Rolled back to the backup: alarm. Then a different entry at the same size: equivocation.
    shutil.rmtree(data)
    _copy_db(tmp_path / "backup", data)
    server = start_log(data, log_signer, policy)
    try:
        capsys.readouterr()
        assert _watch(tmp_path, server.base_url, log_signer) == 1
        assert "ALARM rollback" in capsys.readouterr().err
        # The witnesses hold more than the backup again: the operator must resume again.
        main(["--data-dir", str(data), "log", "unsafe-resume", "--yes", "--reason", "test 2"])
        capsys.readouterr()
        assert append(server, 1, "b") == size + 1
        assert _watch(tmp_path, server.base_url, log_signer) == 1
        assert "ALARM equivocation" in capsys.readouterr().err
    finally:
        server.stop()
    [evidence] = list((tmp_path / "overseer" / "watch" / "evidence").iterdir())
    assert (
        main(
            [
                "witness",
                "evidence",
                "verify",
                str(evidence),
                "--log-key",
                log_signer.verifier.to_key(),
            ]
        )
        == 0
    )
    assert "EQUIVOCATION PROVEN" in capsys.readouterr().out


def test_an_entry_changed_on_the_server_is_reported_as_stored_data_not_equivocation(
    tmp_path: Path,
    witnesses: list[WitnessProcess],
    log_signer: NoteSigner,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlalchemy import select, update

    from custodes.log import log_entries

    data = tmp_path / "log"
    policy = policy_text(witnesses, 2)
    server = start_log(data, log_signer, policy)
    try:
        first = append(server, 20, "first")
        wait_cosigned(server, first, cosigners=2)
        assert _watch(tmp_path, server.base_url, log_signer) == 0
        size = append(server, 600, "more")
        wait_cosigned(server, size, cosigners=2)
        # An entry the watcher has not read yet is changed in the server's database (not at
        # the tree's right edge, so the server goes on serving): its tiles still hold the
        # signed tree, so the log's consistency proof verifies.
        engine = create_db_engine(f"sqlite:///{data / 'custodes.db'}")
        with engine.begin() as conn:
            changed = conn.execute(
                select(log_entries.c.data).where(log_entries.c.idx == first + 3)
            ).scalar_one()
            changed = bytes(changed).replace(b"more", b"MORE")
            conn.execute(
                update(log_entries).where(log_entries.c.idx == first + 3).values(data=changed)
            )
        engine.dispose()
        capsys.readouterr()
        assert _watch(tmp_path, server.base_url, log_signer) == 1
        err = capsys.readouterr().err
        assert "ALARM entry-mismatch" in err and "stored data changed" in err, err
        assert "equivocation" not in err
    finally:
        server.stop()
    assert not (tmp_path / "overseer" / "watch" / "evidence").exists()


def test_an_entry_of_a_type_the_watcher_was_not_given_is_an_alarm(
    tmp_path: Path, witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    from custodes.log import ANNOTATION
    from custodes.wiring import all_entry_types
    from custodes.witness import LogWatcher

    every = all_entry_types()
    assert ANNOTATION in every
    without_notes = {name: t for name, t in every.items() if name != ANNOTATION}
    data = tmp_path / "log"
    server = start_log(data, log_signer, policy_text(witnesses, 2))
    try:
        size = append(server, 3, "note")
        wait_cosigned(server, size, cosigners=2)  # the served checkpoint covers the notes
        state = tmp_path / "watch.json"
        narrow = LogWatcher(server.base_url, log_signer.verifier, state, entry_types=without_notes)
        try:
            alarms = narrow.poll()
        finally:
            narrow.close()
        assert {a.index for a in alarms} >= set(range(size - 3, size))
        assert all(a.kind == "malformed-entry" and ANNOTATION in a.message for a in alarms)
        assert not state.exists()  # nothing was taken as verified
        full = LogWatcher(server.base_url, log_signer.verifier, state, entry_types=every)
        try:
            assert full.poll() == []
        finally:
            full.close()
        assert state.exists()
    finally:
        server.stop()
