"""Upstreams: where a model call goes once every check has passed.

:class:`Upstream` is the role; :class:`HttpUpstream` speaks to any OpenAI-compatible server over
one shared pool of keep-alive HTTP/1.1 connections (aiohttp; per-model timeouts and
credentials); :class:`custodes.gateway.ScriptedUpstream` answers from a file of canned replies.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import aiohttp

from custodes.errors import UpstreamError
from custodes.gateway._models import ModelRoute

__all__ = ["HttpUpstream", "Upstream", "UpstreamReply", "UpstreamTimeout"]

Operation = Literal["chat/completions", "embeddings"]


class UpstreamTimeout(UpstreamError):
    """The upstream sent nothing for the model's ``timeout_s`` (answered as HTTP 504)."""

    status = 504
    code = "upstream_timeout"


# An idle upstream connection is dropped after this long, before the upstream drops it: servers
# commonly close idle keep-alive connections after 5 s (uvicorn, so vLLM; llama.cpp's server),
# and a request sent on a connection the server is closing fails (a POST is never retried).
_KEEPALIVE_S = 4.0
# Opening a connection is bounded apart from the model's own (often minutes-long) timeout_s.
_CONNECT_TIMEOUT_S = 10.0


async def _nothing() -> None:
    return None


@dataclass
class UpstreamReply:
    """An upstream's answer: a whole ``body``, or (streams with status 200) ``chunks``.

    Attributes:
        status: the upstream's HTTP status.
        content_type: its ``content-type`` (``application/json`` when it sent none).
        body: the whole body (empty for a stream).
        chunks: a stream's body as it arrives; raises :class:`UpstreamError` (or
            :class:`UpstreamTimeout`) when the stream breaks off (or stalls).
        close: hands the connection back (or closes it, for a stream cut short); call it once
            the stream is done with.
    """

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

    async def send(
        self, route: ModelRoute, operation: Operation, body: bytes, *, stream: bool
    ) -> UpstreamReply: ...


class HttpUpstream:
    """Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, a hosted API).

    All routes share one ``aiohttp.ClientSession``: one pool of keep-alive HTTP/1.1 connections
    (idle ones kept :data:`_KEEPALIVE_S`), responses parsed by aiohttp's llhttp-based parser
    with its limits on the head (line and field sizes, header count). The session is made for
    one hop to upstreams the operator named: no cookie jar, no proxy from the environment, no
    redirect followed, no content coding asked for or decoded (bytes are relayed and screened
    as sent). Credentials and hosts come only from the models file, never from the caller.
    Reads time out like a socket read timeout: ``timeout_s`` seconds with no bytes from the
    upstream, the answer's first byte included. ``benchmarks/upstream_clients.py`` measures
    this client against the others.

    Args:
        max_connections: the most upstream connections open at once.
        keepalive: seconds an idle connection is kept.
        tls: how https upstreams are verified; by default the system's trusted CAs
            (``ssl.create_default_context``, which honours ``SSL_CERT_FILE``).
    """

    def __init__(
        self,
        *,
        max_connections: int = 200,
        keepalive: float = _KEEPALIVE_S,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive = keepalive
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop and not self._session.closed:
            return self._session
        if self._session is not None and not self._session.closed:
            # A session belongs to the event loop it was made on; its idle connections are
            # unusable from another one (test runs start several loops).
            connector = self._session.connector
            self._session.detach()
            if connector is not None:
                connector._close()  # sync: the other loop cannot be awaited from this one
        self._loop = loop
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.max_connections,
                keepalive_timeout=self.keepalive,
                ssl=self._tls or ssl.create_default_context(),
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            # ``sock_read`` is a per-read timeout (no bytes for so long), not a deadline for the
            # whole answer: a long stream that keeps talking is not cut. Waiting for a free
            # place in the pool is not bounded (``connect`` None), as before.
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(
                total=None,
                connect=None,
                sock_connect=min(seconds, _CONNECT_TIMEOUT_S),
                sock_read=seconds,
            )
        return timeout

    async def send(
        self, route: ModelRoute, operation: Operation, body: bytes, *, stream: bool
    ) -> UpstreamReply:
        """POST ``body`` to the route's upstream; a stream's reply is read as it comes.

        Raises:
            UpstreamTimeout: no connection within 10 s (or ``timeout_s``, if shorter), or no
                byte of the answer for ``timeout_s``.
            UpstreamError: the upstream cannot be reached (refused, unresolvable, TLS
                verification failed), broke off its answer, answered something that is not
                HTTP/1.1, or the route is misconfigured (an API key with CR or LF).
        """
        assert route.base_url is not None
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            # RFC 9110 §12.5.3: without Accept-Encoding any coding is acceptable; the body is
            # relayed and screened as bytes, so ask for none.
            "accept-encoding": "identity",
        }
        if route.api_key:
            headers["authorization"] = f"Bearer {route.api_key}"
        try:
            response = await self._session_here().post(
                f"{route.base_url.rstrip('/')}/{operation}",
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(route.timeout_s),
            )
        except TimeoutError as exc:  # aiohttp.ServerTimeoutError: connect or first byte
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} is misconfigured: not a URL: {exc}"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            cause = type(exc.os_error).__name__ if exc.os_error else "connection failed"
            raise UpstreamError(  # the upstream's address stays in the server's log
                f"the upstream of model {route.name!r} cannot be reached: {cause}"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        except ValueError as exc:  # a header aiohttp refuses to write (CR, LF)
            raise UpstreamError(
                f"the upstream of model {route.name!r} is misconfigured: {exc}"
            ) from exc
        content_type = response.headers.get("content-type", "application/json")
        if stream and response.status == 200:
            return UpstreamReply(
                200, content_type, chunks=_chunks(response, route), close=_closer(response)
            )
        try:
            data = await response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} broke off its answer"
            ) from exc
        finally:
            response.release()
        return UpstreamReply(response.status, content_type, body=data)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _closer(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        # A stream read to its end hands the connection back; one cut short is closed, since
        # what the upstream still sends would be read as the next answer's start.
        if response.content.at_eof():
            response.release()
        else:
            response.close()

    return close


async def _chunks(response: aiohttp.ClientResponse, route: ModelRoute) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except TimeoutError as exc:
        raise UpstreamTimeout(f"the upstream of model {route.name!r} stalled mid-stream") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(f"the upstream of model {route.name!r} broke off its stream") from exc
