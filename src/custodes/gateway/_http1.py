"""A lean HTTP/1.1 client for the gateway's one hop to its upstreams.

Every model call crosses this hop, so its cost is custodes' latency. General-purpose clients do
much that this hop never needs (cookies, redirects, proxies, tracing, multipart, compression):
through ``aiohttp`` it took 1.1 ms where a bare request took 0.66 ms on this project's 2-vCPU
machine at a paced load, a fifth of the gateway's 2 ms budget; httpx's pool polls every idle
socket on each request. What the hop needs is small: send one request, read a whole body or
stream it as it comes, keep connections alive, time out, fail clearly. Responses are parsed by
llhttp (``httptools``, the parser under uvicorn); this module only frames requests, pools
connections and times reads.

Issue 16 measured it again against the best library client tuned well
(``benchmarks/upstream_clients.py``; docs/gateway.md, "Issue 16"): aiohttp took 1.4-2.9 times
its CPU per call, and the gateway built on aiohttp served 20-45% fewer requests per second at
saturation, so it stays.

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

# Back-pressure: stop reading a stream when this much is buffered and unread, so a slow client
# of the gateway cannot make it hold an upstream's whole answer in memory.
_HIGH_WATER = 1 << 20


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
    """Where requests to one base URL go: the origin, and the path prefix of every request.

    Attributes:
        scheme: ``http`` or ``https``.
        host: the host name or IP address (without IPv6 brackets).
        port: the port (80 or 443 when the URL gives none).
        prefix: the URL's path without a trailing slash, put before every request path.
        host_header: the ``Host`` header value (RFC 9110 §7.2: the port only if not the
            scheme's default; an IPv6 address in brackets).
    """

    scheme: str
    host: str
    port: int
    prefix: str
    host_header: str

    @classmethod
    def parse(cls, base_url: str) -> Target:
        """``http(s)://host[:port][/prefix]``.

        Returns:
            The target.

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
    """One keep-alive connection; carries one exchange at a time.

    An ``asyncio.Protocol`` fed straight by the transport, with llhttp's callbacks filling in
    the response: no stream reader in between, so a small answer costs one callback chain.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        """Forget the previous exchange (called before each request on the connection)."""
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
        """Send ``request`` (head and body in one write) and start the read timer."""
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
        """Everything buffered so far; resumes reading if back-pressure had paused it."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.last_read = self.loop.time()
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        """Whether the connection may carry another request: the answer was read to its end,
        without error, the server did not ask to close, and the transport is open."""
        return (
            self.complete
            and self.error is None
            and not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and self.keep_alive
        )

    def close(self) -> None:
        """Drop the connection at once (abort, not a graceful close: nothing more is read)."""
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
        """The read timer: fail if no bytes came for ``read_timeout``, else re-arm it at the
        deadline after the last read (one timer per exchange, not one per read)."""
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
    """An upstream's answer, headers read; read the body whole or as it comes, then release.

    Attributes:
        status: the HTTP status.
        headers: the header fields, names lower-cased, in the order received.
    """

    def __init__(self, client: Http1Client, target: Target, conn: _Connection) -> None:
        self._client = client
        self._target = target
        self._conn = conn
        self.status = conn.status
        self.headers = conn.headers
        self._released = False

    def header(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (any case), or ``default``."""
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
        """Whether the body was read to its end."""
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

        Waits for a place in the connection limit first (no timeout: the limit is the
        gateway's own back-pressure).

        Returns:
            The response, its head read; release it once the body is read.

        Raises:
            ValueError: a header name or value contains CR, LF or NUL (header injection,
                RFC 9110 §5.5).
            ConnectTimeout: no connection within ``connect_timeout``.
            ConnectFailed: refused, unreachable, or the TLS handshake failed.
            ReadTimeout: no byte of the answer for ``read_timeout``.
            HttpFailure: the connection closed early, or the answer is not HTTP/1.1.
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
        """The most recently used idle connection to ``target`` that is still fresh and open
        (the newest is the least likely to be closed by the server under us); stale ones
        found on the way are closed."""
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
        """Give back a place in the limit, and the connection to the pool if reusable;
        connections idle past ``keepalive`` are closed from the oldest end."""
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
        """A new connection to ``target`` (TLS verified for https).

        Raises:
            ConnectTimeout: not connected within ``timeout``.
            ConnectFailed: refused, unreachable, or the TLS handshake failed.
        """
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
