"""The README's run command: `custodes serve --demo` brings up the whole demo deployment.

The demo constitution names two overseer witnesses on loopback; the demo starts them with the
published demo keys, so the log's checkpoints come back cosigned.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from custodes.log import NoteVerifier, SignedCheckpoint
from custodes.witness import cosignature_verifier

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ports_free(*ports: int) -> bool:
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


def test_demo_serves_a_witnessed_log_and_the_constitution(tmp_path: Path) -> None:
    if not _ports_free(8091, 8092):
        pytest.fail("ports 8091/8092 (the demo witnesses) are taken by another process")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    output = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "custodes",
            "serve",
            "--demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the demo server did not start in 90 s"
            time.sleep(0.3)

        constitution = httpx.get(f"{base}/constitution", timeout=10)
        assert constitution.status_code == 200

        entry = {
            "type": "log.annotation/v1",
            "time": "2026-11-22T12:00:00Z",
            "principal": "demo-test",
            "body": {"text": "hello, overseers"},
        }
        appended = httpx.post(f"{base}/log/entries", json=entry, timeout=10)
        assert appended.status_code == 201, appended.text

        log_key = NoteVerifier.from_key(_verifier_key(tmp_path / "demo" / "log.key"))
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
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()
    # The demo's witnesses go away with the server.
    deadline = time.monotonic() + 15
    while not _ports_free(8091, 8092):
        assert time.monotonic() < deadline, "demo witnesses outlived the server"
        time.sleep(0.2)


def _verifier_key(path: Path) -> str:
    from custodes.log import NoteSigner

    return NoteSigner.from_key(path.read_text()).verifier.to_key()
