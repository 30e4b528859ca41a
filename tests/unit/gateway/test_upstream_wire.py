"""HttpUpstream on the wire, against raw socket servers: framing, keep-alive, limits, TLS.

These pin what the gateway's upstream hop promises whatever client library carries it: the
request it sends, bodies framed by length, chunks or the connection's end, streams that arrive
piece by piece, connections kept alive and never reused once closed, the connection limit, and
https verified against the trusted CAs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from custodes.errors import UpstreamError
from custodes.gateway import HttpUpstream, UpstreamTimeout
from custodes.gateway._models import ModelRoute

Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Body = Callable[["Server", HttpUpstream], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class Server:
    """A raw TCP server; counts connections and keeps every request head it read."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
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
        self.bodies.append(await reader.readexactly(length))
        return head

    def route(
        self, scheme: str = "http", prefix: str = "/v1", timeout_s: float = 5, key: str = "k"
    ) -> ModelRoute:
        return ModelRoute(
            name="m",
            capability="general",
            upstream_model="m",
            base_url=f"{scheme}://127.0.0.1:{self.port}{prefix}",
            api_key=key,
            timeout_s=timeout_s,
            scripted_file=None,
            owned_by="test",
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
    upstream: Callable[[], HttpUpstream] = HttpUpstream,
    tls: ssl.SSLContext | None = None,
) -> Server:
    """Run ``body`` against a server answering with ``handler``, with a fresh upstream."""

    async def main() -> Server:
        async with Server(handler, tls) as server:
            http = upstream()
            try:
                await body(server, http)
            finally:
                await http.aclose()
        return server

    return asyncio.run(main())


async def _body(upstream: HttpUpstream, route: ModelRoute, sent: bytes = b"{}") -> bytes:
    reply = await upstream.send(route, "chat/completions", sent, stream=False)
    assert reply.status == 200
    return reply.body


def test_a_request_is_framed_exactly_and_connections_are_kept_alive() -> None:
    async def body(server: Server, upstream: HttpUpstream) -> None:
        for _ in range(5):
            reply = await upstream.send(
                server.route(key="upstream-secret"), "chat/completions", b'{"a": 1}', stream=False
            )
            assert (reply.status, reply.body, reply.content_type) == (
                200,
                b"{}",
                "application/json",
            )

    server = _exchange(_answers_ok, body)
    assert server.connections == 1
    request_line, *lines = server.heads[0].decode("latin-1").strip().split("\r\n")
    assert request_line == "POST /v1/chat/completions HTTP/1.1"
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == "8"
    assert headers["authorization"] == "Bearer upstream-secret"
    assert headers["accept"] == "application/json"
    assert headers["accept-encoding"] == "identity"  # bodies are screened as sent
    assert "cookie" not in headers and "user-agent" not in headers
    assert server.bodies[0] == b'{"a": 1}'


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        chunked = 0
        while True:  # kept alive until the client closes, or the body is close-delimited
            head = await server.head(reader)
            if b"/chunked" in head and not chunked:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
                )
                chunked += 1
            elif b"/chunked" in head:  # a second request on the same connection
                writer.write(OK)
            else:  # no length: the body ends when the server closes (HTTP/1.0 style)
                writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(b" the end")
                return

    async def body(server: Server, upstream: HttpUpstream) -> None:
        for prefix, expected in (
            ("/chunked", b"abcdefg"),
            ("/chunked", b"{}"),
            ("/close", b"until the end"),
            ("/close", b"until the end"),
        ):
            assert await _body(upstream, server.route(prefix=prefix)) == expected

    server = _exchange(handler, body)
    # the first close-delimited answer came on the kept-alive connection; that one ended with
    # its body, so the second needed a connection of its own
    assert server.connections == 2


def test_a_stream_arrives_piece_by_piece_and_a_large_body_intact() -> None:
    big = bytes(range(256)) * 16 * 1024  # 4 MiB: far past the reader's buffer
    sent_second = asyncio.Event()

    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            head = await server.head(reader)
            if b"/big" in head:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big))
                for i in range(0, len(big), 65536):
                    writer.write(big[i : i + 65536])
                    await writer.drain()
                continue
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n7\r\nfirst\n\n\r\n"
            )
            await writer.drain()
            await sent_second.wait()
            writer.write(b"8\r\nsecond\n\n\r\n0\r\n\r\n")

    async def body(server: Server, upstream: HttpUpstream) -> None:
        reply = await upstream.send(server.route(), "chat/completions", b"{}", stream=True)
        assert reply.chunks is not None and reply.content_type == "text/event-stream"
        got = []
        async for chunk in reply.chunks:
            got.append(chunk)
            sent_second.set()  # the second piece is sent only after the first arrived
        await reply.close()
        assert got == [b"first\n\n", b"second\n\n"]
        assert await _body(upstream, server.route(prefix="/big")) == big

    _exchange(handler, body)


def test_an_interim_response_is_skipped() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n" + OK)

    async def body(server: Server, upstream: HttpUpstream) -> None:
        assert await _body(upstream, server.route()) == b"{}"

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
        async def run(server: Server, upstream: HttpUpstream) -> None:
            for pause in pauses:
                await asyncio.sleep(pause)
                assert await _body(upstream, server.route()) == b"{}"

        return run

    # the server's close reaches the client during each pause: never sent on a closed one
    assert _exchange(closes, body((0, 0.05, 0.05))).connections == 3
    # the connection idle past keepalive was replaced
    assert (
        _exchange(
            _answers_ok, body((0, 0.3, 0)), upstream=lambda: HttpUpstream(keepalive=0.1)
        ).connections
        == 2
    )


def test_a_stream_cut_short_closes_its_connection() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            head = await server.head(reader)
            if b"/endless" in head:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n7\r\nfirst\n\n\r\n"
                )
                await asyncio.sleep(5)
            writer.write(OK)

    async def body(server: Server, upstream: HttpUpstream) -> None:
        reply = await upstream.send(
            server.route(prefix="/endless"), "chat/completions", b"{}", stream=True
        )
        assert reply.chunks is not None
        async for _ in reply.chunks:
            break  # the caller stops reading (the client went away)
        await reply.close()
        # what the upstream still sends on that connection is never read as the next answer
        assert await _body(upstream, server.route()) == b"{}"

    assert _exchange(handler, body).connections == 2


def test_a_body_cut_short_or_garbage_is_an_upstream_error() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await server.head(reader)
        if b"/garbage" in head:
            writer.write(b"SMTP ready\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()

    async def body(server: Server, upstream: HttpUpstream) -> None:
        with pytest.raises(UpstreamError, match="broke off its answer") as cut:
            await _body(upstream, server.route())
        assert not isinstance(cut.value, UpstreamTimeout)
        with pytest.raises(UpstreamError, match="failed") as garbage:
            await _body(upstream, server.route(prefix="/garbage"))
        assert not isinstance(garbage.value, UpstreamTimeout)

    _exchange(handler, body)


def test_silence_times_out_within_the_route_timeout() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.head(reader)
        await asyncio.sleep(2)

    async def body(server: Server, upstream: HttpUpstream) -> None:
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout, match="0.2 s"):
            await _body(upstream, server.route(timeout_s=0.2))
        assert asyncio.get_running_loop().time() - started < 1.5

    _exchange(handler, body)


@pytest.mark.timeout(30)  # a leaked place in the limit shows as a hang
def test_no_more_connections_than_allowed_and_header_injection_is_refused() -> None:
    async def handler(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            head = await server.head(reader)
            await asyncio.sleep(0.05)
            if b"/stream" in head:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n7\r\nfirst\n\n\r\n"
                )
                await asyncio.sleep(5)
            writer.write(OK)

    async def body(server: Server, upstream: HttpUpstream) -> None:
        answers = await asyncio.gather(*(_body(upstream, server.route()) for _ in range(6)))
        assert answers == [b"{}"] * 6
        assert server.most_open == 2
        # Stream replies dropped unread and unclosed (a stream whose client left before it
        # began) give their places in the limit back when collected.
        for _ in range(3):
            await upstream.send(
                server.route(prefix="/stream"), "chat/completions", b"{}", stream=True
            )
        gc.collect()
        assert await asyncio.wait_for(_body(upstream, server.route()), 5) == b"{}"
        with pytest.raises(UpstreamError, match="misconfigured"):
            await _body(upstream, server.route(key="a\r\nx: y"))

    _exchange(handler, body, upstream=lambda: HttpUpstream(max_connections=2))


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_verifies_the_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)

    async def body(server: Server, upstream: HttpUpstream) -> None:
        untrusting = HttpUpstream()  # the system's CAs do not know this certificate
        try:
            with pytest.raises(UpstreamError, match="cannot be reached: .*Cert"):
                await _body(untrusting, server.route("https"))
        finally:
            await untrusting.aclose()
        for _ in range(2):
            assert await _body(upstream, server.route("https")) == b"{}"

    trusting = ssl.create_default_context(cafile=str(cert_file))
    server = _exchange(
        _answers_ok, body, upstream=lambda: HttpUpstream(tls=trusting), tls=server_tls
    )
    assert server.connections == 1  # one kept alive (the refused handshake never got in)


def test_one_upstream_serves_one_event_loop_after_another() -> None:
    upstream = HttpUpstream()

    async def once() -> int:
        async with Server(_answers_ok) as server:
            assert await _body(upstream, server.route()) == b"{}"
            return server.connections

    # the second loop cannot use the first one's connections: it opens its own
    assert asyncio.run(once()) == 1
    assert asyncio.run(once()) == 1

    async def close() -> None:
        await upstream.aclose()

    asyncio.run(close())
