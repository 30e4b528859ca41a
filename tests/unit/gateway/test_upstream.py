"""HttpUpstream against raw sockets that stall or break off: the errors callers are promised."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from custodes.errors import UpstreamError
from custodes.gateway import HttpUpstream, UpstreamTimeout
from custodes.gateway._models import ModelRoute

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _route(port: int, timeout_s: float = 0.3) -> ModelRoute:
    return ModelRoute(
        name="m",
        capability="general",
        upstream_model="m",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="upstream-secret",
        timeout_s=timeout_s,
        scripted_file=None,
        owned_by="test",
    )


async def _serve(
    handler: Handler, body: Callable[[HttpUpstream, ModelRoute], Awaitable[None]]
) -> list[bytes]:
    seen: list[bytes] = []

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream = HttpUpstream()
    try:
        await body(upstream, _route(port))
    finally:
        await upstream.aclose()
        server.close()
        await server.wait_closed()
    return seen


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(2)


def test_a_silent_upstream_times_out() -> None:
    async def body(upstream: HttpUpstream, route: ModelRoute) -> None:
        with pytest.raises(UpstreamTimeout) as timed_out:
            await upstream.send(route, "chat/completions", b"{}", stream=False)
        assert timed_out.value.status == 504 and "0.3 s" in timed_out.value.message

    [head] = asyncio.run(_serve(_stall, body))
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"authorization: bearer upstream-secret" in head.lower()
    assert b"\r\naccept-encoding: identity\r\n" in head.lower()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("coding", ["gzip", "br", "GZIP", "identity, gzip"])
def test_an_encoded_answer_is_refused_not_relayed(stream: bool, coding: str) -> None:
    # The gateway screens and logs plain bytes; a compressed answer would pass unscreened.
    async def encoded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-encoding: " + coding.encode() + b"\r\ncontent-length: 2\r\n\r\n{}"
        )
        await writer.drain()

    async def body(upstream: HttpUpstream, route: ModelRoute) -> None:
        with pytest.raises(UpstreamError) as refused:
            await upstream.send(route, "chat/completions", b"{}", stream=stream)
        assert not isinstance(refused.value, UpstreamTimeout)
        assert "content-encoding" in refused.value.message
        assert coding.lower() in refused.value.message

    asyncio.run(_serve(encoded, body))


def test_an_identity_coded_answer_is_relayed() -> None:
    async def identity(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-encoding: identity\r\ncontent-length: 2\r\n\r\n{}"
        )
        await writer.drain()

    async def body(upstream: HttpUpstream, route: ModelRoute) -> None:
        reply = await upstream.send(route, "chat/completions", b"{}", stream=False)
        assert (reply.status, reply.body) == (200, b"{}")

    asyncio.run(_serve(identity, body))


def test_an_upstream_that_breaks_off_its_body_is_an_upstream_error() -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"id":'
        )
        await writer.drain()

    async def body(upstream: HttpUpstream, route: ModelRoute) -> None:
        with pytest.raises(UpstreamError) as broke:
            await upstream.send(route, "chat/completions", b"{}", stream=False)
        assert not isinstance(broke.value, UpstreamTimeout)
        assert "broke off" in broke.value.message

    asyncio.run(_serve(half, body))


def test_a_stream_that_stalls_mid_way_times_out() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            b'10\r\ndata: {"a": 1}\n\n\r\n'
        )
        await writer.drain()
        await asyncio.sleep(2)

    async def body(upstream: HttpUpstream, route: ModelRoute) -> None:
        reply = await upstream.send(route, "chat/completions", b"{}", stream=True)
        assert reply.chunks is not None and reply.content_type == "text/event-stream"
        got = b""
        with pytest.raises(UpstreamTimeout) as stalled:
            async for chunk in reply.chunks:
                got += chunk
        await reply.close()
        assert got == b'data: {"a": 1}\n\n'
        assert "stalled mid-stream" in stalled.value.message

    asyncio.run(_serve(stalls, body))


def test_nothing_listening_is_an_upstream_error() -> None:
    async def body() -> None:
        upstream = HttpUpstream()
        try:
            with pytest.raises(UpstreamError) as refused:
                await upstream.send(_route(9), "embeddings", b"{}", stream=False)
            assert "cannot be reached" in refused.value.message
        finally:
            await upstream.aclose()

    asyncio.run(body())
