"""One demo server for every docs test, in a workspace laid out like a checkout after `make run`.

The workspace has ``examples/`` and ``data/`` (links to the repository's), ``.venv/bin/custodes``
and ``.venv/bin/python`` (this interpreter), and the demo's state in ``.custodes/demo``, so the
pages' commands run exactly as written from the top of a checkout. The server listens on a free
port and its witnesses too (``--witness-ports 0``); commands reach it through ``CUSTODES_PORT``,
and the addresses the pages name (``127.0.0.1:8080``, the witnesses' ``8091``/``8092``) are
rewritten to the real ones.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Demo:
    workspace: Path
    base_url: str
    port: int
    witness_ports: tuple[int, ...]
    env: dict[str, str]
    log: Path


def _wrapper(path: Path, argv: str) -> None:
    path.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
    path.chmod(0o755)


def _environment(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env["PATH"] = f"{workspace / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(workspace / "home")  # `~/.custodes/me.key` must not land in the real home
    pythonpath = [str(REPO / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in pythonpath if p)
    env["COLUMNS"] = "200"
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workspace = tmp_path_factory.mktemp("checkout")
    (workspace / "home").mkdir()
    for name in ("examples", "data"):
        (workspace / name).symlink_to(REPO / name, target_is_directory=True)
    bin_dir = workspace / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    _wrapper(bin_dir / "python", sys.executable)
    _wrapper(bin_dir / "custodes", f"{sys.executable} -m custodes")
    env = _environment(workspace)
    log = workspace / "serve.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [
                str(bin_dir / "custodes"),
                "serve",
                "--demo",
                "--data-dir",
                ".custodes/demo",
                "--port",
                "0",
                "--witness-ports",
                "0",
            ],
            cwd=workspace,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            text = log.read_text(errors="replace")
            found = re.search(r"custodes listening on (http://[\d.]+:(\d+))", text)
            if found:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo server did not start:\n{text}")
            time.sleep(0.2)
        witnesses = tuple(
            int(p) for p in re.findall(r"demo witness \S+ .*? at http://[\d.]+:(\d+)", text)
        )
        env["CUSTODES_PORT"] = found.group(2)
        yield Demo(workspace, found.group(1), int(found.group(2)), witnesses, env, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
