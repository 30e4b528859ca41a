"""Upstreams: where a model call goes once every check has passed.

:class:`Upstream` is the role; :class:`HttpUpstream` speaks to any OpenAI-compatible server over
one shared pool of keep-alive HTTP/1.1 connections (``_http1``; per-model timeouts and
credentials);
:class:`custodes.gateway.ScriptedUpstream` answers from a file of canned replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from custodes.errors import UpstreamError
from custodes.gateway._http1 import (
    ConnectFailed,
    ConnectTimeout,
    Http1Client,
    HttpFailure,
    ReadTimeout,
    Response,
    Target,
)
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

    async def aclose(self) -> None:
        """Close the connections it holds (the gateway's :meth:`stop` calls it once)."""
        ...


class HttpUpstream:
    """Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, a hosted API).

    All routes share one pool of keep-alive connections (:class:`Http1Client`, most recently
    used first, per origin). Credentials and hosts come only from the models file, never from
    the caller; no proxy from the environment is used and no redirect is followed.

    Args:
        max_connections: the most upstream connections open at once.
    """

    def __init__(self, *, max_connections: int = 200) -> None:
        self.max_connections = max_connections
        self._client = Http1Client(max_connections=max_connections, keepalive=_KEEPALIVE_S)
        self._targets: dict[str, Target] = {}

    def _target(self, route: ModelRoute) -> Target:
        """The route's parsed base URL (parsed once per base URL).

        Raises:
            ValueError: the base URL is not an http(s) URL with a host.
        """
        assert route.base_url is not None
        target = self._targets.get(route.base_url)
        if target is None:
            target = self._targets[route.base_url] = Target.parse(route.base_url)
        return target

    async def send(
        self, route: ModelRoute, operation: Operation, body: bytes, *, stream: bool
    ) -> UpstreamReply:
        """POST ``body`` to the route's upstream; a stream's reply is read as it comes.

        Raises:
            UpstreamTimeout: no connection within 10 s (or ``timeout_s``, if shorter), or no
                byte of the answer for ``timeout_s``.
            UpstreamError: the upstream cannot be reached (refused, unreachable, TLS
                verification failed), broke off its answer or answered something that is not
                HTTP/1.1, or the route is misconfigured (a base URL that is not one, an API key
                with CR or LF).
        """
        headers = [
            ("content-type", "application/json"),
            ("accept", "text/event-stream" if stream else "application/json"),
            # Without accept-encoding any coding is acceptable (RFC 9110 §12.5.3), and the
            # gateway screens, logs and relays bodies as plain bytes: ask for identity, and
            # refuse a coded answer below rather than pass unscreened bytes on.
            ("accept-encoding", "identity"),
        ]
        if route.api_key:
            headers.append(("authorization", f"Bearer {route.api_key}"))
        try:
            response = await self._client.post(
                self._target(route),
                f"/{operation}",
                headers,
                body,
                connect_timeout=min(route.timeout_s, 10.0),
                read_timeout=route.timeout_s,
            )
        except (ReadTimeout, ConnectTimeout) as exc:
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except ConnectFailed as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "connection failed"
            raise UpstreamError(  # the upstream's address stays in the server's log
                f"the upstream of model {route.name!r} cannot be reached: {cause}"
            ) from exc
        except HttpFailure as exc:
            raise UpstreamError(f"the upstream of model {route.name!r} failed: {exc}") from exc
        except ValueError as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} is misconfigured: {exc}"
            ) from exc
        coding = response.header("content-encoding").strip().lower()
        if coding not in ("", "identity"):
            response.release()  # the body is unread: the connection is closed, not reused
            raise UpstreamError(
                f"the upstream of model {route.name!r} answered with content-encoding "
                f"{coding[:40]!r}; the gateway relays only unencoded bodies (it asks for identity)"
            )
        content_type = response.header("content-type", "application/json")
        if stream and response.status == 200:
            return UpstreamReply(
                200, content_type, chunks=_chunks(response, route), close=_closer(response)
            )
        try:
            data = await response.read()
        except ReadTimeout as exc:
            raise UpstreamTimeout(
                f"the upstream of model {route.name!r} did not answer in {route.timeout_s} s"
            ) from exc
        except HttpFailure as exc:
            raise UpstreamError(
                f"the upstream of model {route.name!r} broke off its answer"
            ) from exc
        finally:
            response.release()
        return UpstreamReply(response.status, content_type, body=data)

    async def aclose(self) -> None:
        """Close every idle upstream connection."""
        await self._client.aclose()


def _closer(response: Response) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        # A stream read to its end hands the connection back; one cut short is closed.
        response.release()

    return close


async def _chunks(response: Response, route: ModelRoute) -> AsyncIterator[bytes]:
    """A stream's body chunks, with the client's failures as the gateway's errors."""
    try:
        async for chunk in response.iter_chunks():
            yield chunk
    except ReadTimeout as exc:
        raise UpstreamTimeout(f"the upstream of model {route.name!r} stalled mid-stream") from exc
    except HttpFailure as exc:
        raise UpstreamError(f"the upstream of model {route.name!r} broke off its stream") from exc
