"""A lean HTTP/1.1 client for the gateway's one hop to its upstreams.

Every model call crosses this hop, so its cost is custodes' latency. General-purpose clients do
much that this hop never needs (cookies, redirects, proxies, tracing, multipart, compression):
through ``aiohttp`` it took 1.1 ms where a bare request took 0.66 ms on this project's 2-vCPU
machine at a paced load, a fifth of the gateway's 2 ms budget; httpx's pool polls every idle
socket on each request. What the hop needs is small: send one request, read a whole body or
stream it as it comes, keep connections alive, time out, fail clearly. Responses are parsed by
llhttp (``httptools``, the parser under uvicorn); this module only frames requests, pools
connections and times reads.

Reads time out like a socket read timeout: ``read_timeout`` seconds with no bytes from the
upstream (the answer's first byte included). Idle connections are kept for ``keepalive``
seconds, below the 5 s after which common servers (uvicorn, so vLLM; llama.cpp's server) drop
them, and never reused once the server has closed its side: a request is never sent twice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["ConnectFailed", "Http1Client", "HttpFailure", "ReadTimeout", "Response", "Target"]

_HIGH_WATER = 1 << 20  # stop reading a stream when this much is buffered and unread


class HttpFailure(Exception):
    """The exchange failed (connection refused or lost, malformed response)."""


class ConnectFailed(HttpFailure):
    """No connection could be opened (refused, unreachable, TLS handshake failed)."""


class ConnectTimeout(ConnectFailed):
    """Opening the connection took longer than the connect timeout."""


class ReadTimeout(HttpFailure):
    """The upstream sent nothing for the read timeout."""


@dataclass(frozen=True)
class Target:
    """Where requests to one base URL go: the origin, and the path prefix of every request."""

    scheme: str
    host: str
    port: int
    prefix: str
    host_header: str

    @classmethod
    def parse(cls, base_url: str) -> Target:
        """``http(s)://host[:port][/prefix]``.

        Raises:
            ValueError: not an http or https URL with a host.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL with a host")
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        return cls(
            parts.scheme,
            host,
            port,
            parts.path.rstrip("/"),
            shown if port == default else f"{shown}:{port}",
        )


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.framed = False  # the body's end is marked (Content-Length or chunked)
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.error: HttpFailure | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.last_read = 0.0
        self.read_timeout = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        if self.complete or self.error is not None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpFailure(f"malformed HTTP response: {exc}"))

    def eof_received(self) -> bool:
        if self.head_done and not self.complete and not self.framed:
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if not self.complete:
            self._fail(HttpFailure("the connection closed before the response was complete"))
        self._stop_timer()

    # --- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:
            return  # an interim response (103 Early Hints): the real one follows
        self.framed = any(
            n == b"content-length" or (n == b"transfer-encoding" and b"chunked" in v.lower())
            for n, v in self.headers
        ) or self.status in (204, 304)
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            self.status, self.headers = 0, []
            return
        self.keep_alive = self.parser.should_keep_alive()  # valid only inside this callback
        self.complete = True
        self._stop_timer()
        self._wake()

    # --- the exchange ------------------------------------------------------------------------

    def start(self, request: bytes, read_timeout: float) -> None:
        self._reset()
        self.read_timeout = read_timeout
        self.last_read = self.loop.time()
        self.timer = self.loop.call_at(self.last_read + read_timeout, self._check_timeout)
        assert self.transport is not None
        self.transport.write(request)

    async def wait(self) -> None:
        """Until something more is known: the head, a body chunk, the end or a failure."""
        if self.error is not None:
            raise self.error
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.last_read = self.loop.time()
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and self.keep_alive
        )

    def close(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: HttpFailure) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _check_timeout(self) -> None:
        self.timer = None
        if self.complete or self.error is not None:
            return
        now = self.loop.time()
        if self.paused:  # the reader is behind, not the upstream
            self.last_read = now
        elif now >= self.last_read + self.read_timeout:
            self._fail(ReadTimeout(f"no bytes from the upstream for {self.read_timeout} s"))
            return
        self.timer = self.loop.call_at(self.last_read + self.read_timeout, self._check_timeout)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Response:
    """An upstream's answer, headers read; read the body whole or as it comes, then release."""

    def __init__(self, client: Http1Client, target: Target, conn: _Connection) -> None:
        self._client = client
        self._target = target
        self._conn = conn
        self.status = conn.status
        self.headers = conn.headers
        self._released = False

    def header(self, name: str, default: str = "") -> str:
        key = name.lower().encode("latin-1")
        for n, v in self.headers:
            if n == key:
                return v.decode("latin-1")
        return default

    async def read(self) -> bytes:
        """The whole body.

        Raises:
            HttpFailure, ReadTimeout: the body broke off or stalled.
        """
        conn = self._conn
        parts: list[bytes] = []
        while True:
            if conn.chunks:
                parts.append(conn.take())
            if conn.complete:
                return b"".join(parts)
            await conn.wait()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (chunked framing removed).

        Raises:
            HttpFailure, ReadTimeout: the body broke off or stalled.
        """
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
                continue
            if conn.complete:
                return
            await conn.wait()

    @property
    def at_eof(self) -> bool:
        return self._conn.complete and not self._conn.chunks

    def release(self) -> None:
        """Give the connection back (kept alive when the body was read to its end), else close."""
        if self._released:
            return
        self._released = True
        self._client._put(self._target, self._conn)

    def __del__(self) -> None:
        # Never released (say, a stream whose client left before it began): its connection
        # cannot be trusted, but its place in the pool's limit must come back.
        if not self._released:
            self._released = True
            self._conn.close()
            self._client._free_slot()


class Http1Client:
    """Pooled HTTP/1.1 connections per origin (most recently used first), on one event loop.

    Args:
        max_connections: the most connections open at once, over all origins.
        keepalive: seconds an idle connection is kept.
        tls: how https upstreams are verified; by default the system's trusted CAs
            (``ssl.create_default_context``, which honours ``SSL_CERT_FILE``).
    """

    def __init__(
        self,
        *,
        max_connections: int = 200,
        keepalive: float = 4.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive = keepalive
        self._idle: dict[Target, list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tls = tls

    async def post(
        self,
        target: Target,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Response:
        """POST ``body`` to ``target.prefix + path``; returns once the response's head is read.

        Raises:
            ValueError: a header name or value contains CR, LF or NUL.
            ConnectFailed, ConnectTimeout, HttpFailure, ReadTimeout.
        """
        lines = [f"POST {target.prefix}{path} HTTP/1.1", f"host: {target.host_header}"]
        for name, value in headers:
            if any(c in name or c in value for c in "\r\n\0"):
                raise ValueError(f"header {name!r} contains CR, LF or NUL")
            lines.append(f"{name}: {value}")
        lines.append(f"content-length: {len(body)}\r\n\r\n")
        request = "\r\n".join(lines).encode("latin-1") + body
        slots = self._slots_for_loop()
        await slots.acquire()
        try:
            conn = self._take(target) or await self._connect(target, connect_timeout)
        except BaseException:
            slots.release()
            raise
        try:
            conn.start(request, read_timeout)
            while not conn.head_done:
                await conn.wait()
        except BaseException:
            conn.close()
            slots.release()
            raise
        return Response(self, target, conn)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    # --- the pool ----------------------------------------------------------------------------

    def _slots_for_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._slots is None:
            # A new event loop (tests run several): connections of the old one are unusable.
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle = {}
            self._slots = asyncio.Semaphore(self.max_connections)
            self._loop = loop
        return self._slots

    def _take(self, target: Target) -> _Connection | None:
        conns = self._idle.get(target)
        if not conns:
            return None
        horizon = asyncio.get_running_loop().time() - self.keepalive
        while conns:
            conn = conns.pop()
            if (
                conn.idle_since > horizon
                and not conn.closed
                and conn.transport is not None
                and not conn.transport.is_closing()
            ):
                return conn
            conn.close()
        return None

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _put(self, target: Target, conn: _Connection) -> None:
        self._free_slot()
        if not conn.reusable():
            conn.close()
            return
        conn.idle_since = conn.loop.time()
        conns = self._idle.setdefault(target, [])
        conns.append(conn)
        horizon = conn.idle_since - self.keepalive
        while conns and (conns[0].idle_since <= horizon or conns[0].closed):
            conns.pop(0).close()

    async def _connect(self, target: Target, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if target.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
        except TimeoutError as exc:
            raise ConnectTimeout(f"connecting took more than {timeout} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        return conn
