"""Relaying a streamed answer: server-sent events screened before release, and an outcome entry
that is written however the stream ends.

The call's start entry is durable before the request went upstream (see ``_service``), so no
byte is relayed for a call the log does not hold. :class:`RelayResponse` is the ASGI response
that then passes the upstream's events on. Its outcome entry (``gateway.call/v1``: response
digest, tokens, verdicts) is submitted in the response's own ``finally``, not in a generator's:
a client that goes away before the response starts, mid-stream, or a server shutting down all
still leave the outcome in the log (a generator that never started never runs its ``finally``).
The receipt, any error event and ``[DONE]`` are sent only once the outcome is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from custodes.errors import Error, LogWriteError, UpstreamError
from custodes.gateway._entries import MonitorVerdict, Outcome
from custodes.gateway._stream_screen import StreamScreen
from custodes.gateway._upstream import UpstreamReply
from custodes.gateway._wire import MonitorBlocked, openai_error, stream_delta_text
from custodes.log import Appended

__all__ = ["RelayResponse", "StreamOutcome"]

_log = logging.getLogger(__name__)


@dataclass
class StreamOutcome:
    """What is known of a stream as it is relayed; the outcome entry is made from it."""

    outcome: Outcome = "answered"
    reason: str | None = None
    cut_by: str = ""
    usage: Any = None
    digest: Any = field(default_factory=hashlib.sha256)
    verdicts: list[MonitorVerdict] = field(default_factory=list)
    relayed: int = 0  # events passed on
    complete: bool = False  # the relay reached its end (not interrupted)


class RelayResponse(Response):
    """The ASGI response of a streamed call.

    Args:
        reply: the upstream's streamed answer.
        screen: the response screening (see ``_stream_screen``).
        finish: submits the outcome entry; returns the log's future.
        headers: response headers (the request id).
        receipt: the receipt comment for the durable outcome entry.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        *,
        reply: UpstreamReply,
        screen: StreamScreen,
        finish: Callable[[StreamOutcome], Future[list[Appended]]],
        headers: dict[str, str],
        receipt: Callable[[Appended], bytes],
        request_id: str,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self.reply = reply
        self.screen = screen
        self.finish = finish
        self.receipt = receipt
        self.request_id = request_id
        self.state = StreamOutcome()
        self._pending: Future[list[Appended]] | None = None
        self._gone = False  # the client went away

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Relay the stream while watching for the client to go; however it ends (answered,
        cut by a monitor, the client gone, an error), the call's outcome is logged and waited
        for before the response is over."""
        relay = asyncio.ensure_future(self._relay(send))
        watch = asyncio.ensure_future(self._watch(receive))
        try:
            await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, watch):
                task.cancel()
            try:
                await relay  # its own cleanup (closing the upstream reply) runs first
            except asyncio.CancelledError:
                pass
            except Exception:
                _log.exception("gateway stream %s: relaying failed", self.request_id)
                if not self.state.complete:
                    self.state.reason = "custodes failed while relaying (see the server log)"
            # However the stream ended: the call happened, so its outcome is logged.
            self._submit_outcome()
            with contextlib.suppress(BaseException):
                await _durable(self._pending)

    async def _watch(self, receive: Receive) -> None:
        """Wait for the client's disconnect and mark the stream as abandoned."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone = True

    async def _relay(self, send: Send) -> None:
        """Send the headers, every screened event, then the trailer (the receipt, and
        ``[DONE]`` if answered) once the outcome entry is durable."""
        # An ASGI 2.3 server drops what is sent after the client left, without a word, and
        # upstream events already buffered are relayed without a pause: so the loop yields
        # after each send and stops once the watch saw the client go (its outcome then says
        # so, not "answered").
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await asyncio.sleep(0)
            if self._gone:
                return
            async for out in self._events():
                await send({"type": "http.response.body", "body": out, "more_body": True})
                await asyncio.sleep(0)
                if self._gone:
                    return
            self.state.complete = True
        finally:
            await self.reply.close()
        trailer = await self._trailer()
        await send({"type": "http.response.body", "body": trailer, "more_body": False})

    async def _events(self) -> AsyncIterator[bytes]:
        """Pass server-sent events on, each screened in its context before it is released
        (the whole text at growing intervals and at the end: see ``_stream_screen``)."""
        assert self.reply.chunks is not None
        state = self.state
        buffer = b""
        done = False
        try:
            async for chunk in self.reply.chunks:
                buffer += chunk.replace(b"\r\n", b"\n")
                while b"\n\n" in buffer and not done:
                    event, buffer = buffer.split(b"\n\n", 1)
                    payload = b"\n".join(
                        line[5:].lstrip(b" ")
                        for line in event.split(b"\n")
                        if line.startswith(b"data:")
                    )
                    if not payload:
                        continue
                    if payload == b"[DONE]":
                        done = True
                        screening = self.screen.finish()  # the whole text, before [DONE]
                        if screening.blocked_by is not None:
                            self._cut(screening.blocked_by)
                        return
                    try:
                        data = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        state.outcome, state.reason = "upstream_error", "malformed event"
                        return
                    if isinstance(data, dict) and isinstance(data.get("usage"), dict):
                        state.usage = data["usage"]
                    added = stream_delta_text(data)
                    if added:
                        screening = self.screen.add(added)
                        if screening.blocked_by is not None:
                            self._cut(screening.blocked_by)
                            return
                    out = b"data: " + payload + b"\n\n"
                    state.digest.update(out)
                    state.relayed += 1
                    yield out
            state.outcome, state.reason = "upstream_error", "the upstream ended the stream early"
        except UpstreamError as exc:
            state.outcome, state.reason = "upstream_error", exc.message

    def _cut(self, monitor: str) -> None:
        self.state.outcome, self.state.cut_by = "cut", monitor
        self.state.reason = f"stream cut by the gating monitor {monitor!r}"

    def _submit_outcome(self) -> None:
        """Submit the outcome entry once (synchronously: no await can cancel it)."""
        if self._pending is not None:
            return
        state = self.state
        if not state.complete and state.outcome == "answered":
            state.outcome = "abandoned"
            state.reason = state.reason or (
                "the client went away mid-stream"
                if state.relayed
                else "the client went away before the stream started"
            )
        if state.outcome != "cut":
            self.screen.finish()  # verdicts on everything the upstream said
        state.verdicts = list(self.screen.verdicts)
        self._pending = self.finish(state)

    async def _trailer(self) -> bytes:
        """What follows the relayed events, once the outcome entry is durable."""
        self._submit_outcome()
        assert self._pending is not None
        try:
            appended = (await _durable(self._pending))[0]
        except Exception as exc:
            _log.error("gateway stream %s: the log write failed: %s", self.request_id, exc)
            return _error_event(
                LogWriteError(
                    "the call's outcome could not be recorded in the log; the stream is void"
                )
            )
        state = self.state
        out = b""
        if state.outcome == "cut":
            out += _error_event(MonitorBlocked(state.cut_by, "response"))
        elif state.outcome == "upstream_error":
            out += _error_event(UpstreamError(state.reason or "upstream error"))
        out += self.receipt(appended)
        if state.outcome == "answered":
            out += b"data: [DONE]\n\n"
        return out


async def _durable(pending: Future[list[Appended]] | None) -> list[Appended]:
    """Wait for the log; a caller that goes away must not cancel the entry itself."""
    assert pending is not None
    return await asyncio.shield(asyncio.wrap_future(pending))


def _error_event(exc: Error) -> bytes:
    return b"data: " + orjson.dumps(openai_error(exc)[1]) + b"\n\n"
