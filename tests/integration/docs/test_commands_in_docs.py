"""Every command block of the README, examples/README.md and docs/ runs against a real demo.

Datasette tests its documentation this way: the pages cannot drift from the code. Each page is
one test; its blocks run in order in one workspace (see ``conftest.py``), so ids printed by one
command are used by the next, as a reader would. What is checked is what a reader relies on:
the exit code (a shown ``error:`` means the command must fail, anything else that it succeeds),
the ``docs-test: expect`` facts, and that the ids the page shows exist in the real output. Whole
outputs are not compared: wording is free to improve.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docs._markdown import Block, Command, blocks_of, page_ports
from tests.integration.docs.conftest import REPO, Demo

pytestmark = pytest.mark.slow

_COMMAND_TIMEOUT_S = 240.0

# Ids a page shows in one command's output and uses in a later command. Each kind is matched in
# order of appearance between the page's output and the real one (longest kinds first).
_ID_KINDS = (
    re.compile(r"cust_[A-Za-z0-9_-]+(?:\.\.\.)?"),  # API keys (pages shorten them with ...)
    re.compile(r"ed25519:[A-Za-z0-9+/]{43}="),  # principals' public keys
    re.compile(r"[\w.-]+(?:/[\w.-]+)*\+[0-9a-f]{8}\+[A-Za-z0-9+/]{43,}={0,2}"),  # note vkeys
    re.compile(r"\b(?:g|bg)-[0-9a-f]{16}\b"),  # grants
    re.compile(r"\bCUSTODES-\d{4}-\d{4}\b"),  # findings
    re.compile(r"\bdet-[0-9a-f]{8,}\b"),  # detections
    re.compile(r"(?<![-\w])[0-9a-f]{16}(?![-\w])"),  # requests
)


_KEY_ID = re.compile(r"cust_([0-9a-f]{12})_")


# Pages another test already runs as written, block by block, against a demo server.
_RUN_ELSEWHERE = {
    "register-a-finding.md": "tests/integration/custody/test_docs_walkthrough.py",
}


# Pages whose commands do not run as written yet, each with why. Their tests are not run (some
# of their commands would write to /var/lib or start servers on fixed ports); take a page off
# this list once its commands run from the workspace.
_NOT_YET: dict[str, str] = {}


def _pages() -> list[Any]:
    docs = sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in _RUN_ELSEWHERE)
    # The demo walkthrough ends with an amendment that changes the demo's constitution: last.
    pages = [REPO / "README.md", *docs, REPO / "examples" / "README.md"]
    return [
        pytest.param(
            page,
            id=str(page.relative_to(REPO)),
            marks=[pytest.mark.xfail(run=False, reason=why)]
            if (why := _NOT_YET.get(str(page.relative_to(REPO))))
            else [],
        )
        for page in pages
    ]


@dataclass
class _Page:
    demo: Demo
    database: Callable[[], str]
    ids: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def substitute(self, text: str) -> str:
        for shown, real in sorted(self.ids.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(shown, real)
        # The page's own servers (docs-test: ports) get free ports; the demo's addresses it names
        # and does not claim for itself are rewritten to the demo's real ones.
        for named, free in self.ports.items():
            text = re.sub(rf"(?<![\w.+/]){named}(?!\d)", str(free), text)
        if 8080 not in self.ports:
            address = self.demo.base_url.removeprefix("http://")
            text = re.sub(r"\b(?:127\.0\.0\.1|localhost):8080\b", address, text)
        for named_port, witness_port in zip((8091, 8092), self.demo.witness_ports, strict=False):
            if named_port not in self.ports:
                text = re.sub(
                    rf"\b(127\.0\.0\.1|localhost):{named_port}\b", rf"\g<1>:{witness_port}", text
                )
        return text

    def use_ports(self, ports: tuple[int, ...]) -> None:
        for port in ports:
            self.ports.setdefault(port, _free_port())
        if 8080 in self.ports:
            self.env["CUSTODES_PORT"] = str(self.ports[8080])

    def set_env(self, name: str, value: str) -> None:
        if "{database}" in value:
            value = value.replace("{database}", self.database())
        self.env[name] = value

    def export(self, text: str) -> bool:
        """Apply an ``export NAME=value`` line as a shell would; False if it is not one."""
        found = re.fullmatch(r"export ([A-Z_][A-Z0-9_]*)=(.*?)(?:\s+#.*)?", text.strip())
        if not found:
            return False
        done = subprocess.run(
            ["bash", "-c", f"printf %s {found.group(2)}"],
            cwd=self.demo.workspace,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        self.env[found.group(1)] = done.stdout
        return True

    def learn(self, shown: str, real: str) -> None:
        """Pair the ids the page shows with the ids the command really printed."""
        for kind in _ID_KINDS:
            page_ids = [t for t in dict.fromkeys(kind.findall(shown)) if t not in self.ids]
            used = set(self.ids.values())
            real_ids = [t for t in dict.fromkeys(kind.findall(real)) if t not in used]
            for page_id, real_id in zip(page_ids, real_ids, strict=False):
                self.ids[page_id] = real_id
                # An API key carries its key id (cust_<id>_<secret>): `keys revoke <id>`.
                shown_key, real_key = _KEY_ID.match(page_id), _KEY_ID.match(real_id)
                if shown_key and real_key:
                    self.ids.setdefault(shown_key.group(1), real_key.group(1))

    def environment(self) -> dict[str, str]:
        return {**self.demo.env, **self.env}

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.background:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answer(shown: list[str]) -> str | None:
    """The answer the page types at a confirmation prompt, if it shows one."""
    for line in shown:
        found = re.search(r"\[y/N\]: (\w+)\s*$", line)
        if found:
            return found.group(1)
    return None


def _run(page: _Page, command: Command, text: str) -> tuple[int, str]:
    cwd = page.demo.workspace
    env = page.environment()
    answer = _answer(command.shown)
    if command.python:
        session = "\n".join(page.substitute(line) for line in command.python) + "\n"
        # A `$ python` session at the prompt runs interactively (an exception is shown and the
        # session goes on, as at a terminal); a script block runs as a script.
        argv = text if text.endswith(" -") else f"{text} -q -i"
        done = subprocess.run(
            ["bash", "-c", argv],
            cwd=cwd,
            env=env,
            input=session,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr
    if answer is None:
        done = subprocess.run(
            ["bash", "-c", text],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr
    return _run_at_a_terminal(text, cwd, env, answer)


def _run_at_a_terminal(text: str, cwd: Path, env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run as a person at a terminal would, typing ``answer`` at the prompt."""
    controller, terminal = pty.openpty()
    seen = b""
    try:
        proc = subprocess.Popen(
            ["bash", "-c", text], cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal
        )
        os.close(terminal)
        terminal = -1
        answered = False
        deadline = time.monotonic() + _COMMAND_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and b"[y/N]" in seen:
                    os.write(controller, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    return code, seen.decode(errors="replace").replace("\r\n", "\n")


def _start(page: _Page, block: Block, text: str) -> None:
    log = page.demo.workspace / f"background-{block.line}.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {text}"],
            cwd=page.demo.workspace,
            env=page.environment(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    page.background.append(proc)
    assert block.background is not None
    deadline = time.monotonic() + 120
    while block.background not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"{block.where}: `{text}` exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{block.where}: no {block.background!r} in 120 s"
        time.sleep(0.2)


def _check(block: Block, command: Command, text: str, code: int, output: str) -> None:
    where = f"{block.path.relative_to(REPO)}:{command.line}"
    report = f"{where}: `{text}` exited {code}\n{output[-4000:]}"
    must_fail = bool(command.shown) and command.shown[0].lstrip().startswith("error:")
    if must_fail:
        assert code != 0, f"the page shows an error, but the command succeeded\n{report}"
    else:
        assert code == 0, report
    interactive = bool(command.python) and not text.endswith(" -")
    assert "Traceback (most recent call last)" not in output or interactive, report


@pytest.mark.parametrize("page", _pages())
def test_every_command_block_runs(
    demo: Demo, page: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    def database() -> str:
        try:
            cluster = request.getfixturevalue("postgres_cluster")
        except pytest.skip.Exception:  # PostgreSQL tests are off: the page runs on SQLite
            return f"sqlite:///{tmp_path / 'custodes.db'}"
        return str(cluster.create_database())

    state = _Page(demo, database)
    state.use_ports(page_ports(page))
    try:
        for block in blocks_of(page):
            if block.skip:
                continue
            for name, value in block.env.items():
                state.set_env(name, value)
            if block.file is not None:
                target = demo.workspace / block.file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(state.substitute(block.text))
            deadline = time.monotonic() + block.retry
            while True:
                try:
                    _run_block(state, block)
                    break
                except AssertionError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(1.0)
    finally:
        state.stop()


# A page's commands run in the workspace: one that names a system folder would write outside it
# (the tests run as root in CI), so the page must use workspace paths or skip that block.
_SYSTEM_PATH = re.compile(r"(?<![\w.~-])/(?:etc|var|usr|opt|srv|root|home)/")


def _run_block(state: _Page, block: Block) -> None:
    """Run one block's commands in order and check them (AssertionError when one fails)."""
    outputs = []
    for command in block.commands:
        text = state.substitute(command.text)
        assert not _SYSTEM_PATH.search(text), (
            f"{block.where}: `{text}` names a system folder; use a path in the working folder "
            "or mark the block with a docs-test skip and the reason"
        )
        if state.export(text):
            for name, value in block.env.items():  # the directive wins over the page
                state.set_env(name, value)
            continue
        if block.background:
            _start(state, block, text)
            continue
        code, output = _run(state, command, text)
        _check(block, command, text, code, output)
        state.learn("\n".join(command.shown), output)
        outputs.append(output)
    combined = "\n".join(outputs)
    for fact in block.expect:
        assert state.substitute(fact) in combined, (
            f"{block.path.relative_to(REPO)}:{block.line}: expected {fact!r} in\n{combined[-4000:]}"
        )


def test_every_page_parses_and_skips_say_why() -> None:
    skipped = []
    for param in _pages():
        page = param.values[0]
        for block in blocks_of(page):  # raises on an unknown or malformed directive
            if block.skip:
                skipped.append(f"{block.path.relative_to(REPO)}:{block.line}: {block.skip}")
    print("blocks not run:\n  " + "\n  ".join(skipped))
