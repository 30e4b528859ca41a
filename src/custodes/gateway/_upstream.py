"""Upstreams: where a model call goes once every check has passed.

:class:`Upstream` is the role; :class:`HttpUpstream` speaks to any OpenAI-compatible server over
one shared ``aiohttp.ClientSession`` (connection pooling, per-model timeouts and credentials);
:class:`custodes.gateway.ScriptedUpstream` answers from a file of canned replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import aiohttp

from custodes.errors import UpstreamError
from custodes.gateway._models import ModelRoute

__all__ = ["HttpUpstream", "Upstream", "UpstreamReply", "UpstreamTimeout"]

Operation = Literal["chat/completions", "embeddings"]


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


# An idle upstream connection is dropped after this long, before the upstream drops it: servers
# commonly close idle keep-alive connections after 5 s (uvicorn, so vLLM; llama.cpp's server),
# and a request sent on a connection the server is closing fails (a POST is never retried).
_KEEPALIVE_S = 4.0


async def _nothing() -> None:
    return None


@dataclass
class UpstreamReply:
    """An upstream's answer: a whole ``body``, or (streams with status 200) ``chunks``."""

    status: int
    content_type: str
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    close: Callable[[], Awaitable[None]] = field(default=_nothing)


class Upstream(Protocol):
    """Sends one request body (already checked, model already rewritten) to a model server.

    Raises:
        UpstreamError: the upstream cannot be reached, or did not answer in time.
    """

    async def send(self, route: ModelRoute, operation: Operation, body: bytes, *,
                   stream: bool) -> UpstreamReply: ...


class HttpUpstream:
    """Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, a hosted API).

    One shared ``aiohttp`` session per event loop, created on first use: its connector keeps
    idle connections in a per-host stack and checks only the one it takes, where httpx's pool
    polls every idle connection's socket on each request (a 100-connection pool made that most
    of the gateway's CPU time per call under load).

    Args:
        max_connections: the pool size of the one shared session.
    """

    def __init__(self, *, max_connections: int = 200) -> None:
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                               keepalive_timeout=_KEEPALIVE_S),
                # Credentials and hosts come only from the models file, never from the caller.
                trust_env=False,
                skip_auto_headers=("user-agent",),
            )
            self._loop = loop
        return self._session

    async def send(self, route: ModelRoute, operation: Operation, body: bytes, *,
                   stream: bool) -> UpstreamReply:
        assert route.base_url is not None
        headers = {"content-type": "application/json",
                   "accept": "text/event-stream" if stream else "application/json"}
        if route.api_key:
            headers["authorization"] = f"Bearer {route.api_key}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(route.timeout_s, 10.0),
                                        sock_read=route.timeout_s)
        try:
            response = await self._client().post(
                f"{route.base_url}/{operation}", data=body, headers=headers, timeout=timeout,
                allow_redirects=False)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} cannot be reached: {type(exc).__name__}"
            ) from exc
        content_type = response.headers.get("content-type", "application/json")
        if stream and response.status == 200:
            return UpstreamReply(200, content_type, chunks=_chunks(response, route),
                                 close=_closer(response))
        try:
            data = await response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} broke off its answer") from exc
        finally:
            response.release()
        return UpstreamReply(response.status, content_type, body=data)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def _closer(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        # A stream read to its end hands the connection back; one cut short is closed.
        if response.content.at_eof():
            response.release()
        else:
            response.close()
    return close


async def _chunks(response: aiohttp.ClientResponse,
                  route: ModelRoute) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except TimeoutError as exc:
        raise UpstreamTimeout(f"the upstream of model {route.name!r} stalled mid-stream") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"the upstream of model {route.name!r} broke off its stream") from exc
