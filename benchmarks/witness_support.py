"""Helpers shared by the witness benchmarks: witness processes and a lean HTTP/1.1 client."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from custodes.log import NoteSigner, NoteVerifier
from custodes.log._note import ALG_COSIGNATURE_V1

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WitnessServer:
    """``python -m custodes.witness`` in a subprocess with its own SQLite database."""

    def __init__(self, name: str, logs: list[NoteVerifier], workers: int = 1) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="witness-bench-"))
        self.signer = NoteSigner.generate(name, alg=ALG_COSIGNATURE_V1)
        (self.dir / "witness.key").write_text(self.signer.to_key() + "\n")
        self.logs_file = self.dir / "logs.txt"
        self.logs_file.write_text("".join(f"log {k.to_key()}\n" for k in logs))
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "custodes.witness",
                "--key",
                str(self.dir / "witness.key"),
                "--db",
                f"sqlite:///{self.dir / 'witness.db'}",
                "--logs-file",
                str(self.logs_file),
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> WitnessServer:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("witness did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


class RawConnection:
    """One keep-alive HTTP/1.1 connection: POST bodies, read status and body. No parsing
    overhead beyond what HTTP needs, so the load generator costs little CPU."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()
