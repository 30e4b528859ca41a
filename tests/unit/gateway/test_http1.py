"""The gateway's HTTP/1.1 client against raw socket servers: framing, keep-alive, TLS, failures."""

from __future__ import annotations

import asyncio
import gc
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from custodes.gateway._http1 import (
    ConnectFailed,
    Http1Client,
    HttpFailure,
    ReadTimeout,
    Response,
    Target,
)
from tests.support.tls import self_signed

Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Body = Callable[["Server", Http1Client], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class Server:
    """A raw TCP server; counts connections and keeps every request head it read."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.heads: list[bytes] = []
        self.open_now = 0
        self.most_open = 0

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            try:
                await self.handler(self, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self.open_now -= 1
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        return head

    def target(self, scheme: str = "http", prefix: str = "/v1") -> Target:
        return Target.parse(f"{scheme}://127.0.0.1:{self.port}{prefix}")


async def _post(
    client: Http1Client, target: Target, body: bytes = b"{}", read_timeout: float = 5
) -> Response:
    return await client.post(
        target,
        "/chat/completions",
        [("content-type", "application/json")],
        body,
        connect_timeout=5,
        read_timeout=read_timeout,
    )


async def _answers_ok(
    server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers every request on the connection with ``OK``."""
    while True:
        await server.head(reader)
        writer.write(OK)


def _exchange(
    handler: Handler,
    body: Body,
    *,
    client: Callable[[], Http1Client] = Http1Client,
    tls: ssl.SSLContext | None = None,
) -> Server:
    """Run ``body`` against a server answering with ``handler``, with a fresh client."""

    async def main() -> Server:
        async with Server(handler, tls) as server:
            http = client()
            try:
                await body(server, http)
            finally:
                await http.aclose()
        return server

    return asyncio.run(main())


def test_a_request_is_framed_exactly_and_connections_are_kept_alive() -> None:
    async def body(server: Server, client: Http1Client) -> None:
        for _ in range(5):
            response = await _post(client, server.target(), b'{"a": 1}')
            assert (response.status, await response.read()) == (200, b"{}")
            assert response.header("Content-Type") == "application/json"
            response.release()

    server = _exchange(_answers_ok, body)
    assert server.connections == 1
    assert server.heads[0] == (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
        b"content-type: application/json\r\ncontent-length: 8\r\n\r\n" % server.port
    )


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await server.head(reader)
        if b"/chunked" in head:
            writer.write(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
            )
            await server.head(reader)  # kept alive: a second request on the same connection
            writer.write(OK)
        else:  # no length: the body ends when the server closes (HTTP/1.0 style)
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b" the end")

    async def body(server: Server, client: Http1Client) -> None:
        for prefix, expected in (
            ("/chunked", b"abcdefg"),
            ("/chunked", b"{}"),
            ("/close", b"until the end"),
            ("/close", b"until the end"),
        ):
            response = await _post(client, server.target(prefix=prefix))
            assert await response.read() == expected
            response.release()

    server = _exchange(handler, body)
    assert server.connections == 3  # a close-delimited connection is never reused


def test_a_stream_arrives_piece_by_piece_and_a_large_one_intact() -> None:
    big = bytes(range(256)) * 16 * 1024  # 4 MiB: past the reader's high-water mark
    sent_second = asyncio.Event()

    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await server.head(reader)
        if b"/big" in head:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big))
            for i in range(0, len(big), 65536):
                writer.write(big[i : i + 65536])
                await writer.drain()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n7\r\nfirst\n\n\r\n"
        )
        await writer.drain()
        await sent_second.wait()
        writer.write(b"8\r\nsecond\n\n\r\n0\r\n\r\n")

    async def body(server: Server, client: Http1Client) -> None:
        response = await _post(client, server.target())
        got = []
        async for chunk in response.iter_chunks():
            got.append(chunk)
            sent_second.set()  # the second piece is sent only after the first arrived
        assert got == [b"first\n\n", b"second\n\n"] and response.at_eof
        response.release()
        response = await _post(client, server.target(prefix="/big"))
        await asyncio.sleep(0.2)  # let the buffer pass the high-water mark
        assert await response.read() == big
        response.release()

    _exchange(handler, body)


def test_an_interim_response_is_skipped() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n" + OK)

    async def body(server: Server, client: Http1Client) -> None:
        response = await _post(client, server.target())
        assert response.status == 200 and response.header("link") == ""
        assert await response.read() == b"{}"
        response.release()

    _exchange(handler, body)


def test_connections_the_server_closed_or_kept_too_long_are_not_reused() -> None:
    async def closes(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.head(reader)
        writer.write(OK)
        await writer.drain()
        # then the server closes this idle connection (as uvicorn does after 5 s)

    def body(pauses: tuple[float, ...]) -> Body:
        async def run(server: Server, client: Http1Client) -> None:
            for pause in pauses:
                await asyncio.sleep(pause)
                response = await _post(client, server.target())
                assert await response.read() == b"{}"
                response.release()

        return run

    # the server's close reaches the client during each pause
    assert (
        _exchange(
            closes, body((0, 0.05, 0.05)), client=lambda: Http1Client(keepalive=5)
        ).connections
        == 3
    )
    # the connection idle past keepalive was replaced
    assert (
        _exchange(
            _answers_ok, body((0, 0.2, 0)), client=lambda: Http1Client(keepalive=0.1)
        ).connections
        == 2
    )


def test_a_body_cut_short_or_garbage_is_a_failure_and_the_connection_is_dropped() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await server.head(reader)
        if b"/garbage" in head:
            writer.write(b"SMTP ready\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()

    async def body(server: Server, client: Http1Client) -> None:
        response = await _post(client, server.target())
        with pytest.raises(HttpFailure, match="closed before the response was complete"):
            await response.read()
        response.release()
        with pytest.raises(HttpFailure, match="malformed HTTP response"):
            await _post(client, server.target(prefix="/garbage"))
        assert client._idle.get(server.target()) in (None, [])

    _exchange(handler, body)


def test_silence_times_out_and_nothing_listening_fails_to_connect() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.head(reader)
        await asyncio.sleep(2)

    async def body(server: Server, client: Http1Client) -> None:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ReadTimeout, match="0.2 s"):
            await _post(client, server.target(), read_timeout=0.2)
        assert asyncio.get_running_loop().time() - started < 1.5
        with pytest.raises(ConnectFailed):
            await _post(client, Target.parse("http://127.0.0.1:9/v1"))

    _exchange(handler, body)


@pytest.mark.timeout(30)  # a leaked place in the limit shows as a hang
def test_no_more_connections_than_allowed_and_header_injection_is_refused() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            await server.head(reader)
            await asyncio.sleep(0.05)
            writer.write(OK)

    async def one(server: Server, client: Http1Client) -> bytes:
        response = await _post(client, server.target())
        try:
            return await response.read()
        finally:
            response.release()

    async def body(server: Server, client: Http1Client) -> None:
        assert await asyncio.gather(*(one(server, client) for _ in range(6))) == [b"{}"] * 6
        assert server.most_open == 2
        # Responses dropped without release (a stream whose client left before it began)
        # give their places in the limit back when collected.
        for _ in range(3):
            await _post(client, server.target())
        gc.collect()
        assert await asyncio.wait_for(one(server, client), 5) == b"{}"
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            await client.post(
                server.target(),
                "/x",
                [("authorization", "a\r\nx: y")],
                b"",
                connect_timeout=1,
                read_timeout=1,
            )

    _exchange(handler, body, client=lambda: Http1Client(max_connections=2))


def test_targets_parse_the_origin_and_prefix() -> None:
    t = Target.parse("https://api.example.org/v1/")
    assert (t.scheme, t.host, t.port, t.prefix, t.host_header) == (
        "https",
        "api.example.org",
        443,
        "/v1",
        "api.example.org",
    )
    t = Target.parse("http://[::1]:8000")
    assert (t.host, t.port, t.prefix, t.host_header) == ("::1", 8000, "", "[::1]:8000")
    for bad in ("ftp://x/v1", "http:///v1", "127.0.0.1:8000/v1"):
        with pytest.raises(ValueError, match="http"):
            Target.parse(bad)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert_pem, key_pem = self_signed()
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    return cert_file, key_file


def test_https_verifies_the_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)

    async def body(server: Server, client: Http1Client) -> None:
        untrusting = Http1Client()  # the system's CAs do not know this certificate
        with pytest.raises(ConnectFailed, match="SSL"):
            await _post(untrusting, server.target("https"))
        for _ in range(2):
            response = await _post(client, server.target("https"))
            assert await response.read() == b"{}"
            response.release()

    trusting = ssl.create_default_context(cafile=str(cert_file))
    server = _exchange(_answers_ok, body, client=lambda: Http1Client(tls=trusting), tls=server_tls)
    assert server.connections == 1  # one kept alive (the refused handshake never got in)
