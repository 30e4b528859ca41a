"""The command blocks of a Markdown page, as the docs tests run them.

A fenced block in ``console`` (``$ `` prompts, output below each command), ``sh``, ``shell``
or ``bash`` (every line a command, ``#`` lines are comments) is run. Lines ending in ``\\``
continue the command. ``$ .venv/bin/python`` followed by ``>>>`` lines is a Python session.

Directives are HTML comments (invisible on GitHub) in the lines just above a block, one each::

    <!-- docs-test: skip needs a second machine -->   not run; the reason is required
    <!-- docs-test: expect granted -->                the output must contain "granted"
    <!-- docs-test: background listening on -->       started in the background; the test
                                                      waits for this text and stops it at
                                                      the end of the page
    <!-- docs-test: env NAME=value -->                set for this and every later block
    <!-- docs-test: python -->                        above a ``python`` block: run it as a
                                                      script with ``.venv/bin/python``
    <!-- docs-test: file lab/constitution.yaml -->    write the block (any language) there
    <!-- docs-test: ports 8080 8091 -->               this page's own servers: each port is
                                                      replaced by a free one on the whole page
    <!-- docs-test: retry 30 -->                      what the block shows becomes true soon
                                                      (a cosignature): run it again until it
                                                      passes, for up to 30 seconds

``export NAME=value`` lines set ``NAME`` for the page's later commands, as in a shell. In an
``env`` value, ``{database}`` is a fresh database (PostgreSQL when the suite runs it).

Expected output is not compared line by line (other messages change); a command is expected to
fail when its shown output starts with ``error:``, and the ids it shows (request ids, grant ids,
API keys, finding ids, detection ids) are matched to the real ones, so that the next commands
use the real ids.
"""

from __future__ import annotations

import codeop
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "Command", "blocks_of", "page_ports"]

_RUN = {"console", "sh", "shell", "bash"}
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
_KNOWN = {"skip", "expect", "background", "env", "python", "file", "ports", "retry"}


@dataclass
class Command:
    """One command of a block: its text, the output the page shows, Python input if any."""

    text: str
    line: int
    shown: list[str] = field(default_factory=list)
    python: list[str] = field(default_factory=list)


@dataclass
class Block:
    """A fenced block with its directives."""

    path: Path
    line: int
    language: str
    commands: list[Command]
    skip: str | None = None
    expect: list[str] = field(default_factory=list)
    background: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    text: str = ""
    retry: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The runnable blocks of ``path`` in page order.

    Raises:
        ValueError: a directive is unknown or malformed, or a fence is not closed.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    pending: list[tuple[str, str, int]] = []
    i = 0
    while i < len(lines):
        directive = _DIRECTIVE.match(lines[i])
        if directive:
            name, value = directive.groups()
            if name not in _KNOWN:
                raise ValueError(f"{path}:{i + 1}: unknown docs-test directive {name!r}")
            if name != "ports":  # a page's ports hold for the whole page (page_ports)
                pending.append((name, value, i + 1))
            i += 1
            continue
        fence = _FENCE.match(lines[i])
        if not fence:
            if lines[i].strip():
                pending = []  # directives apply to the block right below them
            i += 1
            continue
        indent, language = fence.groups()
        start = i + 1
        end = start
        while end < len(lines) and not re.match(rf"^{indent}```\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: the fenced block is not closed")
        body = [line[len(indent) :] for line in lines[start:end]]
        wants_python = any(name == "python" for name, _, _ in pending)
        wants_file = any(name == "file" for name, _, _ in pending)
        if wants_python and language != "python":
            raise ValueError(f"{path}:{i + 1}: docs-test python above a {language!r} block")
        if language in _RUN or wants_python or wants_file:
            commands = (
                [Command(".venv/bin/python -", start + 1, python=body)]
                if wants_python
                else []
                if wants_file
                else _commands(language, body, start + 1)
            )
            block = Block(path, i + 1, language, commands, text="\n".join(body) + "\n")
            for name, value, where in pending:
                _apply(block, name, value, f"{path}:{where}")
            out.append(block)
        elif pending:
            raise ValueError(
                f"{path}:{pending[0][2]}: docs-test directive above a {language!r} block"
            )
        pending = []
        i = end + 1
    return out


def page_ports(path: Path) -> tuple[int, ...]:
    """The ports a page's own servers use (``docs-test: ports``, anywhere on the page).

    Raises:
        ValueError: the directive does not list port numbers.
    """
    ports: list[int] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        directive = _DIRECTIVE.match(line)
        if directive and directive.group(1) == "ports":
            if not re.fullmatch(r"\d+( \d+)*", directive.group(2)):
                raise ValueError(f"{path}:{n}: docs-test ports needs port numbers")
            ports += [int(p) for p in directive.group(2).split()]
    return tuple(ports)


def _apply(block: Block, name: str, value: str, where: str) -> None:
    if name == "skip":
        if not value:
            raise ValueError(f"{where}: docs-test skip needs a reason")
        block.skip = value
    elif name == "expect":
        if not value:
            raise ValueError(f"{where}: docs-test expect needs the text to expect")
        block.expect.append(value)
    elif name == "background":
        if not value:
            raise ValueError(f"{where}: docs-test background needs the text that says it is up")
        block.background = value
    elif name == "python":
        pass  # handled where the block is read
    elif name == "file":
        if not value or value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"{where}: docs-test file needs a path inside the workspace")
        block.file = value
    elif name == "retry":
        if not re.fullmatch(r"\d+", value) or not 0 < int(value) <= 120:
            raise ValueError(f"{where}: docs-test retry needs seconds (1 to 120)")
        block.retry = float(value)
    elif name == "env":
        key, sep, val = value.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise ValueError(f"{where}: docs-test env needs NAME=value")
        block.env[key] = val


def _commands(language: str, body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    current: Command | None = None
    continuing = False
    for n, raw in enumerate(body, start=first_line):
        line = raw.rstrip()
        if continuing and current is not None:
            current.text += "\n" + line
            continuing = line.endswith("\\")
            continue
        if language == "console":
            if line.startswith("$ "):
                current = Command(line[2:], n)
                commands.append(current)
                continuing = line.endswith("\\")
            elif current is not None and (line.startswith(">>> ") or line == ">>>"):
                current.python.append(line[4:])
            elif current is not None and line.startswith("... ") and _incomplete(current.python):
                current.python.append(line[4:])  # a continuation line of the Python session
            elif current is not None:
                current.shown.append(line)
        else:
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                if current is not None:
                    current.shown.append(line.lstrip()[1:].strip())
                continue
            current = Command(line, n)
            commands.append(current)
            continuing = line.endswith("\\")
    return commands


def _incomplete(python: list[str]) -> bool:
    """True when the Python typed so far waits for more lines (the REPL would show ``...``)."""
    if not python:
        return False
    try:
        return codeop.compile_command("\n".join(python), symbol="single") is None
    except SyntaxError:
        return False
