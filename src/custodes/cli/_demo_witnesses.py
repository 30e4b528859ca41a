"""The demo's overseer witnesses, started beside ``custodes serve --demo``.

In a real deployment each overseer runs ``custodes witness serve`` on its own machine with its
own key. The demo publishes those keys (``examples/keys/witness.*.skey``, demo-only) so that one
command shows the whole loop: the log signs a checkpoint, the overseers' witnesses check its
consistency and cosign it, and ``/checkpoint/cosigned`` serves the result.

The constitution names the witnesses' URLs (ports 8091 and 8092). ``demo_witness_ports`` moves
them, so a second demo or the test suite can run beside ``make run``: the demo then writes a
C2SP tlog-policy file with the URLs it really used, and the log publishes to those.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from custodes.config import Settings
from custodes.errors import ConfigError

if TYPE_CHECKING:
    from custodes.constitution import Witness, WitnessConfig

__all__ = ["DemoWitness", "DemoWitnesses", "demo_witnesses"]

_log = logging.getLogger(__name__)
# Only witnesses on this machine are started: a URL elsewhere is someone else's witness.
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# A cold interpreter importing custodes on a loaded CI machine takes seconds per witness.
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DemoWitness:
    """One witness process the demo started."""

    name: str
    url: str


@dataclass(frozen=True)
class DemoWitnesses:
    """The witnesses the demo started, and the policy file naming their real URLs.

    ``policy_file`` is None when every witness runs at the URL the constitution names (the log
    then follows the constitution, amendments included).
    """

    started: tuple[DemoWitness, ...]
    policy_file: Path | None


@dataclass(frozen=True)
class _Planned:
    """A witness to start: its key, where it will listen and the port the constitution names."""

    name: str
    key_file: Path
    host: str
    port: int
    constitution_port: int


@contextmanager
def demo_witnesses(settings: Settings, log_vkey: str) -> Iterator[DemoWitnesses]:
    """Start a witness process for each loopback witness of the demo constitution.

    Witnesses whose key is not in ``examples/keys/`` or whose URL is not on this machine are
    left alone. The processes are stopped on exit (and die with the server however it dies).

    Raises:
        ConfigError: a witness port is taken, ``demo_witness_ports`` does not match the
            constitution's witnesses, or a witness process exits at start.
    """
    from custodes.authority import demo_constitution_path
    from custodes.constitution import read_constitution

    path = settings.constitution_file or demo_constitution_path()
    constitution = read_constitution(path) if path is not None else None
    config = constitution.witnesses if constitution is not None else None
    planned = _plan(settings, config.witnesses if config is not None else (), path)
    procs: list[tuple[_Planned, subprocess.Popen[bytes]]] = []
    try:
        for witness in planned:
            state = settings.data_dir / "witnesses" / f"{witness.name}.db"
            state.parent.mkdir(parents=True, exist_ok=True)
            procs.append((witness, _start(witness, state, log_vkey)))
        _wait_until_up(procs)
        policy_file = None
        if config is not None and any(w.port != w.constitution_port for w in planned):
            policy_file = _write_policy(settings, config, planned)
        yield DemoWitnesses(
            started=tuple(DemoWitness(w.name, _url(w.host, w.port)) for w, _ in procs),
            policy_file=policy_file,
        )
    finally:
        # All signalled first, then waited for: they stop in parallel, not one after another.
        for _, proc in procs:
            proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _plan(settings: Settings, witnesses: tuple[Witness, ...], path: Path | None) -> list[_Planned]:
    """Which witnesses to start, on which ports; refuses taken ports before starting any."""
    keys = path.parent / "keys" if path is not None else None
    local: list[tuple[str, Path, str, int]] = []
    for witness in witnesses:
        url = urlsplit(witness.url or "")
        if keys is None or url.hostname not in _LOOPBACK or url.port is None:
            continue
        key_file = keys / f"{witness.name}.skey"
        if key_file.is_file():
            local.append((witness.name, key_file, url.hostname, url.port))
    ports = settings.demo_witness_ports
    # A single 0 means "a free port for each", however many witnesses there are.
    if ports == (0,):
        ports = (0,) * len(local)
    if ports and len(ports) != len(local):
        raise ConfigError(
            f"demo_witness_ports names {len(ports)} ports, but the demo starts {len(local)} "
            f"witnesses ({', '.join(name for name, *_ in local) or 'none'})",
            hint="give one port per witness, in the constitution's order, or a single 0",
        )
    planned = []
    for i, (name, key_file, host, port) in enumerate(local):
        wanted = ports[i] if ports else port
        planned.append(
            _Planned(name, key_file, host, _free_port(host) if wanted == 0 else wanted, port)
        )
    # Every port checked before any process starts: a half-started demo is harder to read
    # than a refusal that names the taken port.
    for planned_witness in planned:
        _refuse_if_taken(planned_witness)
    return planned


def _free_port(host: str) -> int:
    """A port the kernel says is free on ``host`` now (the witness binds it moments later)."""
    with socket.socket(_family(host)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _family(host: str) -> socket.AddressFamily:
    """The socket family of a literal address (an IPv6 one has a colon)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _refuse_if_taken(witness: _Planned) -> None:
    """Bind the witness's port for a moment, to refuse a taken one before starting anything.

    Raises:
        ConfigError: the port is taken (or cannot be bound).
    """
    with socket.socket(_family(witness.host)) as s:
        # As uvicorn binds: a port left in TIME_WAIT by a demo just stopped is not "taken".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((witness.host, witness.port))
        except OSError as exc:
            reason = "is taken" if exc.errno == errno.EADDRINUSE else f"fails: {exc.strerror}"
            raise ConfigError(
                f"port {witness.port} for the demo witness {witness.name} {reason}",
                hint="is another demo running? Give the witnesses other ports with "
                "`--witness-ports 9091,9092` (CUSTODES_DEMO_WITNESS_PORTS), or 0 for free ones",
            ) from exc


def _url(host: str, port: int) -> str:
    """The witness's base URL (an IPv6 host in brackets, RFC 3986 §3.2.2)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _start(witness: _Planned, state: Path, log_vkey: str) -> subprocess.Popen[bytes]:
    """Start one witness process (this interpreter, ``python -m custodes.witness``)."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "custodes.witness",
            "--key",
            str(witness.key_file),
            "--db",
            f"sqlite:///{state.resolve()}",
            "--log",
            log_vkey,
            "--host",
            witness.host,
            "--port",
            str(witness.port),
        ],
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads started yet here
    )


def _wait_until_up(procs: list[tuple[_Planned, subprocess.Popen[bytes]]]) -> None:
    """Wait for the witnesses to answer, so the log's first checkpoints find them up.

    Raises:
        ConfigError: a witness process exited.
    """
    deadline = time.monotonic() + _START_TIMEOUT_S
    for witness, proc in procs:
        url = _url(witness.host, witness.port)
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                raise ConfigError(
                    f"the demo witness {witness.name} exited at start (code {code})",
                    hint="its error is printed above",
                )
            try:
                httpx.get(url + "/", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            _log.warning("demo witness at %s did not start in %.0f s", url, _START_TIMEOUT_S)


def _write_policy(settings: Settings, config: WitnessConfig, planned: list[_Planned]) -> Path:
    """Write the constitution's witness policy with the URLs the demo really used."""
    from custodes.witness import PolicyWitness, WitnessPolicy

    moved = {w.name: _url(w.host, w.port) for w in planned}
    constitution_policy = WitnessPolicy.from_constitution(config)
    members = [
        PolicyWitness(name=w.name, verifier=w.verifier, url=moved.get(w.name, w.url))
        for w in constitution_policy.witnesses
    ]
    policy = WitnessPolicy.threshold(config.quorum, members)
    path = settings.data_dir / "witnesses" / "policy.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a server reading the policy never sees half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(policy.to_text())
    os.replace(tmp, path)
    return path


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the server dies, however it dies."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
