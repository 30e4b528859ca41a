"""The demo's overseer witnesses, started beside ``custodes serve --demo``.

In a real deployment each overseer runs ``custodes witness serve`` on its own machine with its
own key. The demo publishes those keys (``examples/keys/witness.*.skey``, demo-only) so that one
command shows the whole loop: the log signs a checkpoint, the overseers' witnesses check its
consistency and cosign it, and ``/checkpoint/cosigned`` serves the result.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from custodes.config import Settings

__all__ = ["demo_witnesses"]

_log = logging.getLogger(__name__)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@contextmanager
def demo_witnesses(settings: Settings, log_vkey: str) -> Iterator[list[str]]:
    """Start a witness process for each loopback witness of the demo constitution.

    Yields the URLs started; the processes are stopped on exit. Witnesses whose key is not in
    ``examples/keys/`` or whose URL is not on this machine are left alone.
    """
    from custodes.authority._start import demo_constitution_path
    from custodes.constitution import read_constitution

    path = settings.constitution_file or demo_constitution_path()
    procs: list[subprocess.Popen[bytes]] = []
    started: list[str] = []
    try:
        if path is not None:
            keys = path.parent / "keys"
            for witness in read_constitution(path).witnesses.witnesses:
                url = urlsplit(witness.url or "")
                key_file = keys / f"{witness.name}.skey"
                if url.hostname not in _LOOPBACK or url.port is None or not key_file.is_file():
                    continue
                state = settings.data_dir / "witnesses" / f"{witness.name}.db"
                state.parent.mkdir(parents=True, exist_ok=True)
                procs.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and module
                        [
                            sys.executable,
                            "-m",
                            "custodes.witness",
                            "--key",
                            str(key_file),
                            "--db",
                            f"sqlite:///{state.resolve()}",
                            "--log",
                            log_vkey,
                            "--host",
                            url.hostname,
                            "--port",
                            str(url.port),
                        ],
                        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads started yet here
                    )
                )
                started.append(witness.url)
        _wait_until_up(started)
        yield started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_until_up(urls: list[str], timeout: float = 30.0) -> None:
    """Wait for the witnesses to answer, so the log's first checkpoints find them up."""
    deadline = time.monotonic() + timeout
    for url in urls:
        while time.monotonic() < deadline:
            try:
                httpx.get(url.rstrip("/") + "/", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            _log.warning("demo witness at %s did not start in %.0f s", url, timeout)


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the server dies, however it dies."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
