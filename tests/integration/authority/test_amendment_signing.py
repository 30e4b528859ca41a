"""Signing an amendment: the signer sees what changes (text and coalitions) before signing, and
only a person at a terminal or an explicit ``--yes`` signs. A real demo server, the real CLI in
processes of its own (a terminal is a pseudo-terminal here)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.config import Settings
from tests.support.server import ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[3]
KEYS = ROOT / "examples" / "keys"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("amend")
    settings = Settings(
        data_dir=data, demo=True, constitution_file=ROOT / "examples" / "constitution.yaml"
    )
    with running_server(settings, log_path=data / "server.log") as s:
        yield s


def _custodes(
    server: ServerProcess, *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custodes", *args, "--server", server.base_url],
        cwd=ROOT,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _propose(server: ServerProcess, tmp_path: Path) -> str:
    text = (ROOT / "examples" / "constitution.yaml").read_text()
    start = text.index("\nbreak_glass:")
    end = text.index("\namendment:")
    new = text.replace("\nversion: 1\n", "\nversion: 2\n", 1)
    new = new.replace(text[start:end], "", 1)
    (tmp_path / "new.yaml").write_text(new)
    made = _custodes(
        server,
        "constitution",
        "propose",
        str(tmp_path / "new.yaml"),
        "--key",
        str(KEYS / "bob.key"),
        "--json",
    )
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def _approvals(server: ServerProcess, request_id: str) -> list[str]:
    shown = _custodes(server, "requests", request_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return [a["approver"] for a in json.loads(shown.stdout)["approvals"]]


def test_without_a_terminal_signing_needs_yes_and_nothing_is_signed(
    server: ServerProcess, tmp_path: Path
) -> None:
    request_id = _propose(server, tmp_path)
    for stdin in (subprocess.DEVNULL, None):  # no input at all; and input that is not a terminal
        refused = _custodes(
            server,
            "constitution",
            "sign",
            request_id,
            "--key",
            str(KEYS / "dana.key"),
            stdin=stdin if stdin is not None else subprocess.PIPE,
        )
        assert refused.returncode == 1, refused.stderr
        assert "--yes" in refused.stderr and "aborted" not in refused.stderr
        assert "Traceback" not in refused.stderr
    assert _approvals(server, request_id) == []


def test_the_signer_sees_the_diff_and_the_coalition_effect_then_signs(
    server: ServerProcess, tmp_path: Path
) -> None:
    request_id = _propose(server, tmp_path)
    signed = _custodes(
        server, "constitution", "sign", request_id, "--key", str(KEYS / "dana.key"), "--yes"
    )
    assert signed.returncode == 0, signed.stderr
    out = signed.stdout
    # The text diff: the version line and the removed break-glass rule.
    assert "-version: 1" in out and "+version: 2" in out
    assert "-  - id: lab-incident-weights" in out
    # The coalition effect: weights-export no longer falls to the lab's incident commander,
    # only to two amendment signers of two organisations (who could append a standing rule).
    [line] = [ln for ln in out.splitlines() if "use weights-export" in ln]
    assert "organisations 1 → 2" in line and "carol@lab" in line
    assert out.index("+version: 2") < out.index("approval by dana@asi submitted")
    assert _approvals(server, request_id) == ["dana@asi"]


def test_declining_at_a_terminal_sends_nothing(server: ServerProcess, tmp_path: Path) -> None:
    request_id = _propose(server, tmp_path)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "custodes",
                "constitution",
                "sign",
                request_id,
                "--key",
                str(KEYS / "erin.key"),
                "--server",
                server.base_url,
            ],
            cwd=ROOT,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
        )
        seen = b""
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            assert proc.poll() is None, seen.decode(errors="replace")
            seen += os.read(controller, 65536)
        os.write(controller, b"n\n")
        assert proc.wait(timeout=60) == 1
        time.sleep(0.2)
        seen += os.read(controller, 65536)
    finally:
        os.close(controller)
        os.close(terminal)
    assert b"not signed" in seen
    assert _approvals(server, request_id) == []
