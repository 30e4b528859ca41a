"""The README's run command: `custodes serve --demo` brings up the whole demo deployment.

The demo constitution names two overseer witnesses on loopback; the demo starts them with the
published demo keys, so the log's checkpoints come back cosigned. The tests run everything on
free ports (`--port 0 --witness-ports 0`), so they pass beside a running `make run`.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from custodes.config import Settings
from custodes.log import NoteSigner, NoteVerifier, SignedCheckpoint
from custodes.witness import cosignature_verifier
from tests.support.keys import LOG_WRITER, issue_keys

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}


def _custodes(*args: str) -> list[str]:
    return [sys.executable, "-m", "custodes", *args]


def _wait_for(log: Path, proc: subprocess.Popen[bytes], pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + 90
    while True:
        found = re.search(pattern, log.read_text())
        if found:
            return found
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {pattern!r} in 90 s: {log.read_text()}"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def listening_socket() -> Iterator[int]:
    """A port another process (this one) listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_demo_serves_a_witnessed_log_and_the_constitution(tmp_path: Path) -> None:
    api_key = issue_keys(Settings(data_dir=tmp_path / "demo", demo=True), LOG_WRITER)[LOG_WRITER]
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as output:
        proc = subprocess.Popen(
            _custodes(
                "serve",
                "--demo",
                "--data-dir",
                str(tmp_path / "demo"),
                "--port",
                "0",
                "--witness-ports",
                "0",
            ),
            cwd=REPO,
            env=_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base = _wait_for(serve_log, proc, r"custodes listening on (http://\S+)").group(1)
        text = serve_log.read_text()
        witness_ports = [
            int(p) for p in re.findall(r"demo witness .* at http://[\d.]+:(\d+)", text)
        ]
        assert len(witness_ports) == 2, text
        assert 8091 not in witness_ports and 8092 not in witness_ports
        # "listening" comes only once requests are answered.
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{base}/constitution", timeout=10).status_code == 200
        reported = httpx.get(f"{base}/witnesses", timeout=10).json()
        assert sorted(int(w["url"].rsplit(":", 1)[1]) for w in reported["witnesses"]) == sorted(
            witness_ports
        )

        entry = {"type": "log.annotation/v1", "body": {"text": "hello, overseers"}}
        anonymous = httpx.post(f"{base}/log/entries", json=entry, timeout=10)
        assert anonymous.status_code == 401, anonymous.text
        appended = httpx.post(
            f"{base}/log/entries",
            json=entry,
            headers={"authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        assert appended.status_code == 201, appended.text

        # The demo's tuned model serves weights whose lineage it registered and promoted.
        weights = re.search(r"demo model frontier-tuned serves promoted weights (\S+)", text)
        assert weights is not None, text
        auth = {"authorization": f"Bearer {api_key}"}
        verdict = httpx.get(
            f"{base}/provenance/weights/{weights.group(1)}/serving/tuned", headers=auth, timeout=60
        ).json()
        assert verdict["approved"] is True, verdict
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "frontier-tuned", "messages": [{"role": "user", "content": "hi"}]},
            headers=auth,
            timeout=60,
        )
        assert reply.status_code == 200, reply.text

        log_key = NoteVerifier.from_key(
            NoteSigner.from_key((tmp_path / "demo" / "log.key").read_text()).verifier.to_key()
        )
        witnesses = [
            cosignature_verifier(line.split("key: ", 1)[1].strip())
            for line in (REPO / "examples" / "constitution.yaml").read_text().splitlines()
            if line.strip().startswith("key: witness.")
        ]
        assert len(witnesses) == 2
        deadline = time.monotonic() + 30
        while True:
            # 404 until a checkpoint has met the witness quorum.
            answer = httpx.get(f"{base}/checkpoint/cosigned", timeout=10)
            if answer.status_code == 200:
                signed = SignedCheckpoint.from_text(answer.text, log_key)
                cosigners = {v.name for v in signed.cosigned_by(witnesses)}
                if signed.checkpoint.size >= 2 and len(cosigners) == 2:
                    break
            else:
                assert answer.status_code == 404, answer.text
            assert time.monotonic() < deadline, f"not cosigned by both witnesses: {answer.text}"
            time.sleep(0.5)
    finally:
        _stop(proc)
    # The demo's witnesses go away with the server.
    deadline = time.monotonic() + 15
    while any(_port_open(p) for p in witness_ports):
        assert time.monotonic() < deadline, "demo witnesses outlived the server"
        time.sleep(0.2)


def test_a_taken_port_is_one_error_before_anything_starts(
    tmp_path: Path, listening_socket: int
) -> None:
    done = subprocess.run(
        _custodes("serve", "--demo", "--data-dir", str(tmp_path), "--port", str(listening_socket)),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{listening_socket}: the port is taken" in done.stderr
    assert "--port" in done.stderr
    assert "listening on" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "custodes.db").exists()


def test_a_taken_witness_port_is_one_error(tmp_path: Path, listening_socket: int) -> None:
    done = subprocess.run(
        _custodes(
            "serve",
            "--demo",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
            "--witness-ports",
            f"{listening_socket},0",
        ),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"port {listening_socket} for the demo witness witness.asi.example is taken" in (
        done.stderr
    )
    assert "--witness-ports" in done.stderr
    assert "listening on" not in done.stderr and "Traceback" not in done.stderr


def test_a_missing_log_key_is_one_error_and_writes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        _custodes("serve", "--data-dir", str(tmp_path / "lab"), "--port", "0"),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "log signing key" in done.stderr and "does not exist" in done.stderr
    assert "listening on" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "lab").exists()


def test_a_refused_start_up_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "lab"
    keygen = subprocess.run(
        _custodes("--data-dir", str(data), "log", "keygen"),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keygen.returncode == 0, keygen.stderr
    broken = tmp_path / "constitution.yaml"
    broken.write_text("version: 1\n")
    done = subprocess.run(
        _custodes("serve", "--data-dir", str(data), "--port", "0", "--constitution", str(broken)),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 1
    assert "the constitution is refused" in done.stderr
    assert "listening on" not in done.stderr and "Traceback" not in done.stderr
