"""A real HAProxy (Debian's ``haproxy``) running the configuration a docs page shows.

The page's one ```` ```haproxy ```` block is taken as it stands; only addresses change: the
frontend binds a listening socket this process hands over (``fd@N``, no race for the port), its
certificate is a throwaway self-signed one, and each ``server`` line points at a real replica.
A second file, which the page does not show, adds a stats socket so the test can read how
HAProxy sees each server. ``-dW`` turns every configuration warning into a failure.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.support.tls import self_signed

__all__ = ["HAProxy", "docs_config", "haproxy_missing", "start_haproxy"]

_FENCE = re.compile(r"^```haproxy\n(.*?)^```$", re.S | re.M)
_BIND = re.compile(r"^(\s*bind )\S+( ssl crt )\S+$", re.M)
_SERVER = re.compile(r"^(\s*server \S+ )\S+( .*)$", re.M)


def haproxy_missing() -> str | None:
    """Why HAProxy cannot run here (None when it can)."""
    if shutil.which("haproxy") is None:
        return (
            "HAPROXY STEP NOT RUN: no `haproxy` command (Debian haproxy); run "
            "`bash scripts/test-deps.sh` as root to install it"
        )
    return None


def docs_config(page: Path) -> str:
    """The page's one HAProxy block, as shown."""
    blocks = _FENCE.findall(page.read_text())
    assert len(blocks) == 1, f"{page}: expected one ```haproxy block, found {len(blocks)}"
    return str(blocks[0])


def _certificate(pem: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and its key in ``pem`` (HAProxy's ``crt``
    format: certificate, then key); the certificate alone is returned for clients."""
    cert_pem, key_pem = self_signed()
    pem.write_bytes(cert_pem + key_pem)
    ca = pem.with_suffix(".crt")
    ca.write_bytes(cert_pem)
    return ca


@dataclass
class HAProxy:
    """A running ``haproxy -db`` process."""

    base_url: str
    process: subprocess.Popen[bytes]
    stats_socket: Path
    tls: ssl.SSLContext
    log_path: Path
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    def servers(self) -> dict[str, dict[str, str]]:
        """``show stat`` for the backend's servers: name -> the CSV row (status, check_status,
        hrsp_2xx, ...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            r["svname"]: r
            for r in rows
            if r["pxname"] == "replicas" and r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop HAProxy (SIGTERM, SIGKILL after 15 s) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def start_haproxy(page: Path, backends: list[str], work: Path) -> HAProxy:
    """Run ``page``'s HAProxy block with its servers at ``backends`` (``host:port`` each, in
    the block's order) in front; returns once HAProxy answers on its stats socket.

    Raises:
        AssertionError: the block does not have one server line per backend, or HAProxy
            refused the configuration (a warning included) or exited.
    """
    config = docs_config(page)
    servers = _SERVER.findall(config)
    assert len(servers) == len(backends), f"{page}: {len(servers)} server lines"
    pem = work / "custodes.pem"
    ca = _certificate(pem)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    config, binds = _BIND.subn(rf"\g<1>fd@{listener.fileno()}\g<2>{pem}", config)
    assert binds == 1, f"{page}: expected one `bind ... ssl crt ...` line"
    addresses = iter(backends)
    config = _SERVER.sub(lambda m: f"{m.group(1)}{next(addresses)}{m.group(2)}", config)
    (work / "haproxy.cfg").write_text(config)
    stats_socket = work / "haproxy.sock"
    (work / "stats.cfg").write_text(f"global\n    stats socket {stats_socket} mode 600\n")
    log_path = work / "haproxy.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - closed by HAProxy.stop
    command = ["haproxy", "-dW", "-f", str(work / "haproxy.cfg"), "-f", str(work / "stats.cfg")]
    try:
        checked = subprocess.run(
            [*command, "-c"],
            pass_fds=[listener.fileno()],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if checked.returncode != 0:
            log_file.close()
            raise AssertionError(f"HAProxy refused the configuration:\n{checked.stderr}")
        process = subprocess.Popen(
            [*command, "-db"],
            pass_fds=[listener.fileno()],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    finally:
        listener.close()
    proxy = HAProxy(
        f"https://127.0.0.1:{port}",
        process,
        stats_socket,
        ssl.create_default_context(cafile=str(ca)),
        log_path,
        log_file,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            proxy.stop()
            raise AssertionError(f"HAProxy exited with {process.returncode}\n{proxy.output()}")
        try:
            proxy.servers()
            return proxy
        except OSError as e:
            if time.monotonic() > deadline:
                proxy.stop()
                raise AssertionError(f"HAProxy did not answer in 60 s\n{proxy.output()}") from e
            time.sleep(0.05)
