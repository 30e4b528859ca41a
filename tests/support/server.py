"""Run a real custodes server (uvicorn, uvloop/httptools when installed) in a subprocess.

Settings in, base URL out, clean shutdown::

    with running_server(Settings(data_dir=tmp_path, demo=True)) as server:
        httpx.get(server.url("/checkpoint"))

The parent binds a listening socket on a free loopback port and hands it to the child, so there
is no race for the port and the server accepts connections as soon as it is up. Settings travel
as ``CUSTODES_*`` environment variables, exactly as a deployment would pass them. ``kill()``
sends SIGKILL (crash tests); ``stop()`` shuts down cleanly (SIGTERM, then SIGKILL after a
timeout).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from custodes.config import Settings

__all__ = ["ServerProcess", "running_server", "settings_env", "start_server"]

_ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings | Mapping[str, Any]) -> dict[str, str]:
    """``CUSTODES_*`` variables for the fields set in ``settings`` (None fields are left out)."""
    values = (
        settings.model_dump(exclude_unset=False)
        if isinstance(settings, Settings)
        else dict(settings)
    )
    env = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dict | list | tuple):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"CUSTODES_{name.upper()}"] = text
    return env


@dataclass
class ServerProcess:
    """A running server subprocess."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the server (no cleanup runs) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._close_log()

    def stop(self, timeout: float = 15.0) -> int:
        """Shut down cleanly (SIGTERM); SIGKILL if it does not exit in ``timeout`` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def start_server(
    settings: Settings | Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    ready_timeout: float = 60.0,
) -> ServerProcess:
    """Start a server for ``settings`` on a free loopback port and wait until it answers.

    Raises:
        RuntimeError: the server exited or did not answer ``/healthz`` in ``ready_timeout``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    child_env.update(settings_env(settings))
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(_ROOT), str(_ROOT / "src"), child_env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    log_file = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed by ServerProcess
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.server", str(sock.fileno())],
            env=child_env,
            cwd=_ROOT,
            pass_fds=[sock.fileno()],
            stdout=log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log_file else None,
        )
    finally:
        sock.close()
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path, log_file)
    deadline = time.monotonic() + ready_timeout
    with httpx.Client(timeout=5.0) as client:
        while True:
            if process.poll() is not None:
                server.stop()
                raise RuntimeError(
                    f"server exited with {process.returncode} before answering\n{server.output()}"
                )
            try:
                if client.get(server.url("/healthz")).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"server did not answer in {ready_timeout}s\n{server.output()}")
            time.sleep(0.05)


@contextmanager
def running_server(
    settings: Settings | Mapping[str, Any], **kwargs: Any
) -> Iterator[ServerProcess]:
    """:func:`start_server` as a context manager that stops the server on exit."""
    server = start_server(settings, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _serve(fd: int) -> None:
    import uvicorn

    from custodes.server import create_app

    settings = Settings()
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        create_app(settings), log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
