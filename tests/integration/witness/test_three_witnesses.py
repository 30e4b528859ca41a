"""Three witnesses in separate processes, a real log server, real HTTP on loopback."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tlog_scales.signing import Vkey
from tlog_scales.tlog import Checkpoint as ScalesCheckpoint

from custodes.cli import main
from custodes.config import Settings
from custodes.errors import VerificationError
from custodes.log import NoteSigner, SignedCheckpoint
from custodes.witness import Evidence, WitnessPolicy, verify_evidence
from tests.integration.witness.support import WitnessProcess, policy_text
from tests.support.keys import LOG_WRITER, issue_keys
from tests.support.server import ServerProcess, start_server

pytestmark = pytest.mark.slow

CONSTITUTION = Path(__file__).resolve().parents[3] / "examples" / "constitution.yaml"


def start_log(data_dir: Path, signer: NoteSigner, policy: str) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    key = data_dir / "log.key"
    if not key.exists():
        key.write_text(signer.to_key() + "\n")
    (data_dir / "witnesses.policy").write_text(policy)
    settings = Settings(
        data_dir=data_dir,
        log_origin=signer.name,
        log_key_file=key,
        witness_policy_file=data_dir / "witnesses.policy",
        witness_retry_interval_ms=100,
        log_checkpoint_interval_ms=20,
        constitution_file=CONSTITUTION,
    )
    # A log writer's API key, issued once per test (kept beside the data directories: the
    # rollback and fork tests start servers on copies of a database that holds the key).
    api_key = data_dir.parent / "log-writer.api-key"
    if not api_key.exists():
        api_key.write_text(issue_keys(settings, LOG_WRITER)[LOG_WRITER])
    server = start_server(settings, log_path=data_dir / "server.log")
    server.api_key = api_key.read_text()  # type: ignore[attr-defined]
    return server


def post_entries(server: ServerProcess, texts: list[str]) -> httpx.Response:
    """POST annotations as the test's log writer (the server stamps principal and time)."""
    entries = [{"type": "log.annotation/v1", "body": {"text": t}} for t in texts]
    key = server.api_key  # type: ignore[attr-defined]
    return httpx.post(
        server.url("/log/entries"),
        json={"entries": entries},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def append(server: ServerProcess, n: int, tag: str) -> int:
    resp = post_entries(server, [f"{tag} {i}" for i in range(n)])
    assert resp.status_code == 201, resp.text
    return int(resp.json()["entries"][-1]["index"]) + 1


def wait_cosigned(
    server: ServerProcess, size: int, *, cosigners: int = 2, timeout: float = 30.0
) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        resp = httpx.get(server.url("/checkpoint/cosigned"), params={"quorum": "any"}, timeout=5)
        if resp.status_code == 200:
            names = [n for n in resp.headers["x-custodes-cosigners"].split(",") if n]
            text = resp.text
            last = (names, text.splitlines()[1])
            if int(text.splitlines()[1]) >= size and len(names) >= cosigners:
                return text
        time.sleep(0.05)
    raise AssertionError(f"size {size} not cosigned by {cosigners} in {timeout}s: {last}")


def status(server: ServerProcess) -> dict[str, dict[str, object]]:
    doc = httpx.get(server.url("/witnesses"), timeout=5).json()
    return {w["name"]: w for w in doc["witnesses"]}


def wait_status(
    server: ServerProcess,
    done: Callable[[dict[str, dict[str, object]]], bool],
    what: str,
    timeout: float = 30.0,
) -> dict[str, dict[str, object]]:
    """``GET /witnesses`` once ``done`` holds of it. The publisher asks each witness on its own
    and stores a failure in a thread, so a status is waited for, never assumed after a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        peers = status(server)
        if done(peers):
            return peers
        if time.monotonic() > deadline:
            raise AssertionError(f"GET /witnesses did not show {what} within {timeout} s: {peers}")
        time.sleep(0.05)


def policy_2_of_3(ws: list[WitnessProcess], log_signer: NoteSigner) -> WitnessPolicy:
    return WitnessPolicy.threshold(2, [w.verifier for w in ws], logs=[log_signer.verifier])


def test_normal_operation_cosigned_by_all_verified_by_tlog_scales(
    tmp_path: Path, witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    server = start_log(tmp_path / "log", log_signer, policy_text(witnesses, 2))
    try:
        append(server, 5, "first")
        size = append(server, 7, "second")
        text = wait_cosigned(server, size, cosigners=3)
        # The client-side command: a 2-of-3 policy accepts the log's cosigned checkpoint and a
        # receipt made from it; a policy naming a witness that did not cosign refuses.
        policy_file = tmp_path / "client.policy"
        policy_file.write_text(policy_text(witnesses, 2))
        key = log_signer.verifier.to_key()
        assert (
            main(
                [
                    "witness",
                    "verify",
                    server.base_url,
                    "--log-key",
                    key,
                    "--policy",
                    str(policy_file),
                ]
            )
            == 0
        )
        receipt = httpx.get(server.url(f"/log/receipt/{size - 1}/cosigned"), timeout=10)
        assert receipt.status_code == 200, receipt.text
        receipt_file = tmp_path / "receipt.txt"
        receipt_file.write_text(receipt.text)
        assert (
            main(
                [
                    "witness",
                    "verify",
                    str(receipt_file),
                    "--log-key",
                    key,
                    "--policy",
                    str(policy_file),
                ]
            )
            == 0
        )
        ahead = httpx.get(server.url(f"/log/receipt/{size}/cosigned"), timeout=10)
        assert ahead.status_code == 404 and ahead.json()["error"]["where"] == "index"
        stranger = WitnessProcess("stranger.witness.test", tmp_path / "stranger", [])
        strict = tmp_path / "strict.policy"
        strict.write_text(policy_text([*witnesses, stranger], 4))
        assert (
            main(["witness", "verify", server.base_url, "--log-key", key, "--policy", str(strict)])
            == 1
        )
    finally:
        server.stop()
    signed = policy_2_of_3(witnesses, log_signer).verify(text)
    assert signed.checkpoint.size == size
    assert len(signed.cosigned_by([w.verifier for w in witnesses])) == 3
    # tlog-scales (PyPI, not ours) parses the note and verifies every signature.
    cp = ScalesCheckpoint.from_text(text)
    assert (cp.origin, cp.size, cp.root_hash) == (
        log_signer.name,
        size,
        signed.checkpoint.root_hash,
    )
    cp.verify(Vkey.from_string(log_signer.verifier.to_key()))
    for w in witnesses:
        vkey = Vkey.from_string(w.verifier.to_key())
        assert vkey.sig_type == 4
        cp.verify(vkey)  # raises on a bad cosignature
    for w in witnesses:
        assert w.held()[log_signer.name] == size


def test_one_witness_down_does_not_stop_the_log(
    tmp_path: Path, witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    server = start_log(tmp_path / "log", log_signer, policy_text(witnesses, 2))
    try:
        wait_cosigned(server, append(server, 3, "before"), cosigners=3)
        witnesses[2].kill()
        started = time.monotonic()
        size = append(server, 4, "while down")
        assert time.monotonic() - started < 5  # appends do not wait for witnesses
        text = wait_cosigned(server, size, cosigners=2)
        names = (
            policy_2_of_3(witnesses, log_signer)
            .verify(text)
            .cosigned_by([w.verifier for w in witnesses])
        )
        assert witnesses[2].verifier not in names
        # The quorum of two can be met before the third witness's failed attempt is stored
        # (each witness is asked on its own; the error is written in a thread), so the status
        # is read until it says so, within a generous deadline.
        name = witnesses[2].name
        down = wait_status(server, lambda s: bool(s[name]["last_error"]), f"an error of {name}")
        assert "unreachable" in str(down[name]["last_error"])
        # Back up: it is sent a proof from the size it last cosigned and catches up.
        witnesses[2].start()
        wait_cosigned(server, size, cosigners=3)
        assert witnesses[2].held()[log_signer.name] == size
    finally:
        server.stop()


def test_quorum_lacking_checkpoint_is_marked(
    tmp_path: Path, witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    server = start_log(tmp_path / "log", log_signer, policy_text(witnesses, 2))
    try:
        first = append(server, 2, "a")
        wait_cosigned(server, first, cosigners=3)
        witnesses[1].kill()
        witnesses[2].kill()
        size = append(server, 2, "b")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = httpx.get(server.url("/witnesses"), timeout=5).json()
            if doc["latest_size"] == size:
                break
            time.sleep(0.05)
        assert doc["latest_size"] == size and doc["latest_quorum_met"] is False
        assert doc["cosigned_size"] == first
        met = httpx.get(server.url("/checkpoint/cosigned"), timeout=5)
        assert met.headers["x-custodes-quorum"] == "met"
        assert met.text.splitlines()[1] == str(first)
        lacking = httpx.get(server.url("/checkpoint/cosigned"), params={"quorum": "any"})
        assert lacking.headers["x-custodes-quorum"] == "lacking"
        with pytest.raises(VerificationError, match="lacks the witness quorum"):
            policy_2_of_3(witnesses, log_signer).verify(lacking.text)
    finally:
        server.stop()


def _copy_db(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith("custodes.db") or f.name == "log.key":
            shutil.copy2(f, dst / f.name)


def test_rolled_back_log_is_never_cosigned(
    tmp_path: Path, witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    data = tmp_path / "log"
    policy = policy_text(witnesses, 2)
    server = start_log(data, log_signer, policy)
    kept = append(server, 5, "kept")
    wait_cosigned(server, kept, cosigners=3)
    server.stop()
    _copy_db(data, tmp_path / "backup")
    server = start_log(data, log_signer, policy)
    erased = append(server, 5, "later erased")
    held = wait_cosigned(server, erased, cosigners=3)
    server.stop()
    assert [w.held()[log_signer.name] for w in witnesses] == [erased] * 3
    # The operator restores the backup (size 5) and writes a different history on top.
    shutil.rmtree(data)
    _copy_db(tmp_path / "backup", data)
    server = start_log(data, log_signer, policy)
    try:
        # Rollback is fatal: the witnesses hold size 10, so the log (at 5) refuses to hand out
        # indices 5.. again, from its start, before any append.
        refused = post_entries(server, ["rewritten"])
        assert refused.status_code == 503, refused.text
        assert f"holds size {erased}, larger than the log's {kept}" in refused.text
        assert all(w.evidence(log_signer.name) == [] for w in witnesses)  # nothing proven yet
        # Only an explicit, logged, unsafe operator action resumes it.
        assert main(["--data-dir", str(data), "log", "alarms"]) == 0
        resume = ["--data-dir", str(data), "log", "unsafe-resume", "--yes"]
        assert main([*resume, "--reason", "test: rewrite the history on purpose"]) == 0
        size = append(server, 7, "rewritten")
        # Every witness is offered the rewritten history and refuses it...
        wait_status(
            server,
            lambda s: all("HTTP 422" in str(p["last_error"]) for p in s.values()),
            "every witness refusing with HTTP 422",
        )
        # ...and none moved on from the size it held.
        assert [w.held()[log_signer.name] for w in witnesses] == [erased] * 3
        best = httpx.get(server.url("/checkpoint/cosigned"), timeout=5).text
        assert int(best.splitlines()[1]) == kept  # nothing past the rollback point is cosigned
        assert size == kept + 7 > erased
    finally:
        server.stop()
    # Now every witness holds proof: the log's consistency proof from 10 leads to its new root
    # but to another size-10 root than the one it signed before.
    held_body = SignedCheckpoint.from_text(held, log_signer.verifier).note.text
    for w in witnesses:
        [ev] = w.evidence(log_signer.name)
        assert ev["kind"] == "inconsistent"
        assert str(ev["held_checkpoint"]).startswith(held_body + "\n")
        assert str(ev["offered_checkpoint"]).split("\n")[1] == str(kept + 7)
        finding = verify_evidence(Evidence.from_json(json.dumps(ev)), log_signer.verifier)
        assert finding.conclusive


def test_fork_split_view_is_detected_and_no_2_of_3_policy_accepts_both(
    tmp_path: Path, witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    w1, w2, w3 = witnesses
    base = tmp_path / "base"
    server = start_log(base, log_signer, policy_text(witnesses, 2))
    common = append(server, 4, "common")
    wait_cosigned(server, common, cosigners=3)
    server.stop()
    _copy_db(base, tmp_path / "fork-a")
    _copy_db(base, tmp_path / "fork-b")
    # Each half of the fork is shown to a different pair of witnesses.
    fork_a = start_log(tmp_path / "fork-a", log_signer, policy_text([w1, w2], 2))
    try:
        forked = append(fork_a, 3, "shown to regulators")
        text_a = wait_cosigned(fork_a, forked, cosigners=2)
    finally:
        fork_a.stop()
    fork_b = start_log(tmp_path / "fork-b", log_signer, policy_text([w2, w3], 2))
    try:
        # custodes itself refuses to fork (w2 holds a larger tree): the dishonest operator
        # must resume it explicitly, and the witnesses still catch the split view.
        refused = post_entries(fork_b, ["x"])
        assert refused.status_code == 503 and "rolled back" in refused.text
        fork = ["--data-dir", str(tmp_path / "fork-b"), "log", "unsafe-resume", "--yes"]
        assert main([*fork, "--reason", "a dishonest operator forks the log"]) == 0
        assert append(fork_b, 3, "shown to the public") == forked
        b_status = wait_status(
            fork_b,
            lambda s: "split view" in str(s[w2.name]["last_error"]),
            f"{w2.name} refusing the split view",
        )
        text_b = wait_cosigned(fork_b, forked, cosigners=1)
    finally:
        fork_b.stop()
    a = SignedCheckpoint.from_text(text_a, log_signer.verifier)
    b = SignedCheckpoint.from_text(text_b, log_signer.verifier)
    assert a.checkpoint.size == b.checkpoint.size == forked
    assert a.checkpoint.root_hash != b.checkpoint.root_hash
    # w2 refused the second half and kept conclusive evidence of the split view.
    assert "split view" in str(b_status[w2.name]["last_error"])
    [ev] = w2.evidence(log_signer.name)
    assert ev["kind"] == "same-size"
    evidence_file = tmp_path / "evidence.json"
    evidence_file.write_text(json.dumps(ev))
    assert (
        main(
            [
                "witness",
                "evidence",
                "verify",
                str(evidence_file),
                "--log-key",
                log_signer.verifier.to_key(),
            ]
        )
        == 0
    )
    assert w1.evidence(log_signer.name) == [] and w3.evidence(log_signer.name) == []
    # No 2-of-3 policy over these witnesses accepts both halves.
    policy = policy_2_of_3(witnesses, log_signer)
    policy.verify(text_a)
    with pytest.raises(VerificationError):
        policy.verify(text_b)
    assert b.cosigned_by([w.verifier for w in witnesses]) == [w3.verifier]
