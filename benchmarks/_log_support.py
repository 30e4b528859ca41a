"""Shared pieces of the log benchmarks: a server to measure, a cheap HTTP/1.1 load generator.

The load generator speaks HTTP/1.1 with keep-alive over asyncio streams (uvloop) and parses only
the status line and Content-Length, so that on a 2-core machine the client spends as little CPU
as possible and the figures measure the server, not the client.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from sqlalchemy import event  # noqa: E402
from tests.support.keys import LOG_WRITER, issue_keys  # noqa: E402
from tests.support.server import ServerProcess, start_server  # noqa: E402

from custodes.config import Settings  # noqa: E402
from custodes.log import NoteSigner, TransparencyLog  # noqa: E402
from custodes.store import create_db_engine, migrate  # noqa: E402

ENTRY_TEMPLATE = (
    b'{"body":{"data":null,"subject":null,"text":"bench %d"},"principal":"bench",'
    b'"time":"2026-11-22T12:00:00.000000Z","type":"log.annotation/v1"}'
)


def entry_json(i: int) -> bytes:
    """A valid log.annotation/v1 entry in RFC 8785 form (what Entry.to_json() gives)."""
    return ENTRY_TEMPLATE % i


# What a client sends to POST /log/entries: the server stamps the principal and the time.
CLIENT_TEMPLATE = b'{"body":{"text":"bench %d"},"type":"log.annotation/v1"}'


def client_entry_json(i: int) -> bytes:
    """An append request's entry (type and body; the server adds principal and time)."""
    return CLIENT_TEMPLATE % i


CHUNK = 10_000  # entries per transaction when building a log for a benchmark


def build(data_dir: Path, entries: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    key = data_dir / "log.key"
    if not key.exists():
        key.write_text(NoteSigner.generate("custodes.local/log").to_key())
    engine = create_db_engine(f"sqlite:///{data_dir / 'custodes.db'}")

    @event.listens_for(engine, "connect")
    def _big_cache(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.execute("PRAGMA cache_size=-2000000")  # type: ignore[attr-defined]

    migrate(engine)
    log = TransparencyLog(engine, NoteSigner.from_key(key.read_text()))
    size = log.size()
    started = time.perf_counter()
    while size < entries:
        n = min(CHUNK, entries - size)
        log._writer.integrate(
            [entry_json(size + i) for i in range(n)],
            sign=(size // CHUNK) % 100 == 0 or size + n == entries,
        )
        size += n
        if size % 500_000 == 0:
            rate = size / (time.perf_counter() - started)
            print(f"  built {size:,} entries ({rate:,.0f}/s)", flush=True)
    log.latest_checkpoint()
    engine.dispose()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def postgres_url() -> Iterator[str]:
    from tests.support.postgres import start_cluster

    with start_cluster() as cluster:
        yield cluster.create_database()


@contextmanager
def server_for(
    data_dir: Path, database_url: str = "", **settings: object
) -> Iterator[ServerProcess]:
    data_dir.mkdir(parents=True, exist_ok=True)
    key = data_dir / "log.key"
    if not key.exists():
        key.write_text(NoteSigner.generate("custodes.local/log").to_key())
    config = Settings(data_dir=data_dir, database_url=database_url, demo=True, **settings)  # type: ignore[arg-type]
    # Appends need a log writer's API key (the demo constitution lets engineers append).
    api_key = issue_keys(config, LOG_WRITER)[LOG_WRITER]
    server = start_server(config, log_path=data_dir / "server.log")
    server.api_key = api_key  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        api_key: str | None = None,
    ) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""

    @classmethod
    async def connect(cls, base_url: str, api_key: str | None = None) -> Http:
        hostport = base_url.split("//", 1)[1]
        host, port = hostport.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, hostport, api_key)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def run(coro: object) -> object:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def now() -> float:
    return time.perf_counter()


def cpu_note() -> str:
    load = os.getloadavg()[0]
    return (
        f"(load average {load:.1f} on {os.cpu_count()} cores; other work on the machine skews this)"
    )
