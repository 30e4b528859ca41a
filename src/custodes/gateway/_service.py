"""The gateway: every request is authenticated, authorized, screened, forwarded and logged.

Per request: API key -> principal (in-memory, see :class:`KeyCache`) -> the body's model ->
an active grant for its capability (:class:`GrantCache`) -> gating monitors on the prompt ->
the upstream -> monitors on the response (streams: on the accumulated text, before each chunk
is passed on) -> a ``gateway.call/v1`` log entry made durable -> the response, carrying the
entry's index as a receipt. A request refused anywhere is logged too. If the log cannot be
written, the caller gets an error instead of the model's answer (invariant 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from custodes.clock import Clock
from custodes.constitution import Constitution
from custodes.errors import Error, LogWriteError, PolicyDenied, UpstreamError
from custodes.gateway._authorize import GrantCache, GrantDecision
from custodes.gateway._entries import (
    CALL_START,
    CallRecord,
    CallStart,
    MonitorVerdict,
    Outcome,
    call_entry,
)
from custodes.gateway._keys import ApiKey, KeyStore, hash_key, well_formed
from custodes.gateway._models import ModelRoute
from custodes.gateway._monitors import MonitorRegistry, Phase
from custodes.gateway._relay import RelayResponse, StreamOutcome
from custodes.gateway._serving import ServingGate
from custodes.gateway._stream_screen import StreamScreen
from custodes.gateway._upstream import Operation, Upstream, UpstreamReply
from custodes.gateway._usage import ON_BEHALF_OF, UsageGate
from custodes.gateway._wire import (
    AuthenticationFailed,
    MonitorBlocked,
    Refused,
    openai_error,
    parse_chat,
    parse_embeddings,
    response_text,
)
from custodes.log import Appended, Entry, TransparencyLog
from custodes.usage import OnBehalfOf

__all__ = ["Gateway", "KeyCache", "RECEIPT_INDEX", "RECEIPT_LEAF", "REQUEST_ID"]

_log = logging.getLogger(__name__)

RECEIPT_INDEX = "x-custodes-log-index"
RECEIPT_LEAF = "x-custodes-leaf-hash"
REQUEST_ID = "x-custodes-request-id"
ANONYMOUS = "anonymous"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class KeyCache:
    """Active API keys by hash, in memory, so authentication costs no database round trip.

    A background task reads the key change counter every ``poll`` seconds and reloads on any
    change (revocations by the CLI or other replicas); keys revoked through this process are
    dropped at once. A well-formed key not in the cache is looked up once in the database.
    """

    def __init__(self, store: KeyStore, *, poll: float) -> None:
        self.store = store
        self.poll = poll
        self._keys: dict[bytes, ApiKey] = {}
        self._version = -1
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load every active key, then watch the change counter (on the running loop).

        Raises:
            StoreError: the keys cannot be read.
        """
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="custodes-key-cache")

    def cancel(self) -> None:
        """Stop watching without waiting (no event loop needed: the server's shutdown)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Stop watching, and wait until the watcher has stopped."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """Reload every active key and the change counter they were read at.

        Raises:
            StoreError: the keys cannot be read (the last good view stays).
        """
        version, keys = await asyncio.to_thread(self.store.snapshot)
        self._keys, self._version = keys, version

    async def _watch(self) -> None:
        """Every ``poll`` seconds, reload the keys if their change counter moved. A failed
        read is logged and the last good view kept: a database that cannot be read for a
        moment does not refuse every caller."""
        while True:
            await asyncio.sleep(self.poll)
            try:
                version = await asyncio.to_thread(self.store.version)
                if version != self._version:
                    await self.refresh()
            except Exception:  # keep watching; a failed read leaves the last good view
                _log.exception("reading the API key change counter failed")

    def drop(self, key_id: str) -> None:
        """Forget a key at once (revoked through this process)."""
        self._keys = {h: k for h, k in self._keys.items() if k.key_id != key_id}

    async def lookup(self, key: str) -> ApiKey | None:
        """The active key with this secret, or None.

        A well-formed key the cache does not hold is looked up once in the database (a key issued
        since the last reload); the answer is cached.

        Raises:
            StoreError: that database lookup failed.
        """
        found = self._keys.get(hash_key(key))
        if found is not None or not well_formed(key):
            return found
        found = await asyncio.to_thread(self.store.find, key)
        if found is not None:
            self._keys = {**self._keys, hash_key(key): found}
        return found


@dataclass
class _Call:
    """What is known about one request as it goes through the checks."""

    request_id: str
    route: str
    method: str
    request_sha256: str = _EMPTY_SHA256
    principal: str = ANONYMOUS
    key_id: str | None = None
    model: str | None = None
    capability: str | None = None
    grant: str | None = None
    stream: bool = False
    directors: str | None = None  # the ON_BEHALF_OF header, read when authenticated
    on_behalf_of: OnBehalfOf | None = None
    weights: str | None = None  # the route's weights digest

    def record(
        self,
        outcome: Outcome,
        status: int,
        *,
        reason: str | None = None,
        response_sha256: str | None = None,
        usage: Mapping[str, Any] | None = None,
        monitors: list[MonitorVerdict] | None = None,
    ) -> CallRecord:
        """The call's log record with ``outcome`` and ``status``; the reason is cut to 1,000
        characters, and the token counts are kept only where the upstream's ``usage`` gives
        an integer (it is the upstream's word, not checked input)."""
        tokens = (
            {
                k: usage.get(k) if isinstance(usage.get(k), int) else None
                for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            }
            if isinstance(usage, Mapping)
            else {}
        )
        return CallRecord(
            request_id=self.request_id,
            route=self.route,
            method=self.method,
            model=self.model,
            capability=self.capability,
            grant=self.grant,
            key_id=self.key_id,
            outcome=outcome,
            status=status,
            reason=reason[:1000] if reason else None,
            stream=self.stream,
            request_sha256=self.request_sha256,
            response_sha256=response_sha256,
            monitors=monitors or [],
            on_behalf_of=self.on_behalf_of,
            weights=self.weights,
            **tokens,
        )


class Gateway:
    """The enforcing OpenAI-compatible front door.

    Args:
        log: the transparency log every call is recorded in.
        keys: the API key store.
        grants: the grant cache in front of the authority.
        routes: the models served.
        upstreams: which upstream serves each model (by model name).
        monitors: the inline monitors.
        clock: the time source.
        max_body_bytes: the largest request body accepted.
        key_poll: seconds between checks for key changes made elsewhere.
        usage: chains of direction and gating concentration rules (custodes.usage); none:
            calls are recorded without a chain and nothing is gated on use.
        serving: the serving check of routes that name their weights (none: a call to such
            a route is refused, fail closed).
        constitution: the constitution in force now (the authority's, amended while the
            gateway runs): a tier added to ``provenance.tiers`` refuses the routes in it that
            name no weights from the next call, and a change of version re-checks every
            cached serving verdict at once. None: the models file was checked at start only.
    """

    def __init__(
        self,
        *,
        log: TransparencyLog,
        keys: KeyStore,
        grants: GrantCache,
        routes: list[ModelRoute],
        upstreams: Mapping[str, Upstream],
        monitors: MonitorRegistry,
        clock: Clock,
        max_body_bytes: int = 4 << 20,
        key_poll: float = 0.1,
        usage: UsageGate | None = None,
        serving: ServingGate | None = None,
        constitution: Callable[[], Constitution | None] | None = None,
    ) -> None:
        self.log = log
        self.keys = keys
        self.key_cache = KeyCache(keys, poll=key_poll)
        self.grants = grants
        self.routes = {r.name: r for r in routes}
        self.upstreams = dict(upstreams)
        self.monitors = monitors
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.usage = usage
        self.serving = serving
        self._constitution = constitution
        in_force = constitution() if constitution is not None else None
        self._version = in_force.version if in_force is not None else None
        self._in_flight = 0  # calls being handled now (see serve and _record)
        self._started = False
        self._start_lock = asyncio.Lock()

    async def ensure_started(self) -> None:
        """Load the key cache and start watching for key changes (once, on first use)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.key_cache.start()
                if self.serving is not None:
                    self.serving.start_soon(
                        (r.weights, r.capability)
                        for r in self.routes.values()
                        if r.weights is not None
                    )
                self._started = True

    def close(self) -> None:
        """Stop background work without an event loop (the server context's shutdown)."""
        self.key_cache.cancel()
        if self.serving is not None:
            self.serving.cancel()

    async def stop(self) -> None:
        """Stop background work and close upstream connections."""
        self._started = False
        await self.key_cache.stop()
        if self.serving is not None:
            await self.serving.stop()
        closed: set[int] = set()
        for upstream in self.upstreams.values():
            # Routes share upstreams (one pool for every HTTP route): close each once.
            if id(upstream) not in closed:
                closed.add(id(upstream))
                await upstream.aclose()

    async def principal_of(self, key: str) -> str | None:
        """The principal of the active API key ``key`` (from the key cache); None if there is
        none. The one login check of the API and the dashboard.

        Raises:
            StoreError: the key had to be looked up in the database, and it failed.
        """
        await self.ensure_started()
        found = await self.key_cache.lookup(key)
        return None if found is None else found.principal

    def revoke_key(self, key_id: str, *, reason: str = "") -> ApiKey:
        """Revoke a key; this process refuses it from this moment."""
        key = self.keys.revoke(key_id, reason=reason)
        self.key_cache.drop(key_id)
        return key

    # --- the pieces of a request --------------------------------------------------------

    async def _authenticate(self, request: Request, call: _Call) -> ApiKey:
        """The active key of the request's ``Authorization: Bearer`` header; the call learns
        its principal and key id (and the on-behalf-of header, read only once authenticated).

        Raises:
            AuthenticationFailed: no header, several, another scheme, or an unknown or revoked
                key.
        """
        # Exactly one header: of two, a proxy in front and custodes might each read another.
        values = request.headers.getlist("authorization")
        if len(values) != 1:
            raise AuthenticationFailed(
                "send exactly one 'Authorization: Bearer <API key>' header"
                if values
                else "no API key was sent"
            )
        scheme, _, key = values[0].partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationFailed("the Authorization header must be 'Bearer <API key>'")
        found = await self.key_cache.lookup(key.strip())
        if found is None:
            raise AuthenticationFailed("the API key is not valid (unknown or revoked)")
        call.principal, call.key_id = found.principal, found.key_id
        call.directors = request.headers.get(ON_BEHALF_OF)
        return found

    async def _read_body(self, request: Request) -> bytes:
        """The request body, at most ``max_body_bytes``: a Content-Length over the limit is
        refused before anything is read, and a body without one is counted as it arrives.

        Raises:
            Refused: a Content-Length that is not a number (400), or a body over the limit (413).
        """
        length = request.headers.get("content-length")
        if length is not None:
            # ASCII digits only: str.isdigit alone passes "²", on which int() raises (a 500).
            if not (length.isascii() and length.isdigit()):
                raise Refused("Content-Length is not a number", where="content-length")
            if int(length) > self.max_body_bytes:
                raise Refused(
                    f"the request body is larger than {self.max_body_bytes} bytes",
                    status=413,
                    code="request_too_large",
                    actual=f"{length} bytes",
                )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise Refused(
                    f"the request body is larger than {self.max_body_bytes} bytes",
                    status=413,
                    code="request_too_large",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _route(self, model: str) -> ModelRoute:
        """The route that serves ``model``.

        Raises:
            Refused: no such model here (404 ``model_not_found``, as OpenAI's API answers).
        """
        route = self.routes.get(model)
        if route is None:
            raise Refused(
                f"the model {model!r} does not exist or is not served here",
                status=404,
                code="model_not_found",
                where="model",
                expected="a model from GET /v1/models",
            )
        return route

    async def _authorize(self, call: _Call, route: ModelRoute) -> GrantDecision:
        """The grant under which the caller may use the route's capability, then the usage
        rules (who directs the call) and, for a route that names its weights, the serving check.

        Raises:
            PolicyDenied: no grant, a usage rule or the serving check refuses.
            Refused: the route names its weights but no serving check runs (503, fail closed).
        """
        call.model, call.capability = route.name, route.capability
        grant = await self.grants.authorize(call.principal, route.capability)
        call.grant = grant.grant_id
        if self.usage is not None:
            call.on_behalf_of = self.usage.admit(call.principal, route.capability, call.directors)
        self._served_tiers(route)
        if route.weights is not None:
            call.weights = route.weights
            if self.serving is None:
                raise Refused(
                    f"model {route.name!r} names its weights but no serving check runs",
                    status=503,
                    code="serving_check_unavailable",
                    openai_type="api_error",
                )
            await self.serving.admit(route.name, route.weights, route.capability)
        return grant

    def _served_tiers(self, route: ModelRoute) -> None:
        """Follow the constitution in force: on a new version, re-check the cached serving
        verdicts; refuse a route that names no weights in a tier that serves only promoted
        weights (fail closed: the models file was checked against an older version).

        Raises:
            Refused: the route's tier serves only promoted weights and it names none (403).
        """
        if self._constitution is None:
            return
        c = self._constitution()
        if c is None:
            return  # no constitution in force: the grant check has denied the call already
        if c.version != self._version:
            self._version = c.version
            if self.serving is not None:
                self.serving.invalidate()
        if route.weights is None and route.capability in c.provenance.tiers_by_capability:
            raise Refused(
                f"model {route.name!r} is in {route.capability!r}, which serves only weights "
                f"promoted to it (provenance.tiers of constitution version {c.version}), but "
                "the models file names no weights for it",
                status=403,
                code="weights_required",
                openai_type="permission_error",
                where="model",
            )

    def _submit(self, record: CallRecord, principal: str) -> Future[list[Appended]]:
        """Hand a stream's closing record to the log without waiting (the relay sends the
        receipt once it is durable); usage rules observe it when it is."""
        entry = call_entry(record, principal, self.clock.now())
        pending = self.log.append_batch([entry], wait=False)
        if self.usage is not None:
            pending.add_done_callback(functools.partial(self._observed, entry))
        return pending

    def _observed(self, entry: Entry, pending: Future[list[Appended]]) -> None:
        """Let the usage rules count ``entry`` once it is in the log (never one that failed)."""
        if self.usage is not None and not pending.cancelled() and pending.exception() is None:
            self.usage.observe(pending.result()[0].index, entry.to_json())

    def _start_entry(self, call: _Call, verdicts: list[MonitorVerdict]) -> Entry:
        """The ``gateway.call_start/v1`` entry of an authorized, screened stream."""
        assert call.model and call.capability and call.grant
        start = CallStart(
            request_id=call.request_id,
            route=call.route,
            method=call.method,
            model=call.model,
            capability=call.capability,
            grant=call.grant,
            key_id=call.key_id,
            stream=call.stream,
            request_sha256=call.request_sha256,
            monitors=verdicts,
            weights=call.weights,
        )
        return call_entry(start, call.principal, self.clock.now(), entry_type=CALL_START)

    async def _record(self, record: CallRecord, principal: str) -> Appended:
        """Log ``record`` and wait until it is durable; usage rules observe it then.

        Raises:
            LogWriteError: it could not be logged.
        """
        entry = call_entry(record, principal, self.clock.now())
        appended = await self._durable_entry(entry)
        if self.usage is not None:
            self.usage.observe(appended.index, entry.to_json())
        return appended

    async def _durable_entry(self, entry: Entry) -> Appended:
        # A call alone in the process, with the log idle, commits its entry right here: the
        # event loop has nothing else to do during the commit, and the two thread hand-offs
        # of the sequencer (slow on VMs whose idle CPUs halt) are saved. With other calls in
        # flight, the sequencer batches the entry while the event loop serves them.
        pending = self.log.append_batch([entry], wait=False, inline_if_idle=self._in_flight <= 1)
        return (await _durable(pending))[0]

    def _receipt(self, call: _Call, appended: Appended) -> dict[str, str]:
        """The receipt headers: the request id, the entry's index and its leaf hash (RFC 9162
        §2.1.1, so a caller can ask for its inclusion proof and check it)."""
        return {
            REQUEST_ID: call.request_id,
            RECEIPT_INDEX: str(appended.index),
            RECEIPT_LEAF: appended.leaf_hash.hex(),
        }

    async def _refuse(self, call: _Call, exc: Error) -> Response:
        """Log the refusal of the call, then answer it as an OpenAI-style error with its
        receipt; if the refusal cannot be logged, the answer is the log failure instead."""
        status, body = openai_error(exc)
        outcome: Outcome = (
            "blocked"
            if isinstance(exc, MonitorBlocked)
            else "upstream_error"
            if isinstance(exc, UpstreamError)
            else "denied"
        )
        reason = exc.message
        if isinstance(exc, PolicyDenied) and exc.reasons:
            reason = body["error"]["message"]
        monitors = exc.verdicts if isinstance(exc, MonitorBlocked) else None
        headers = {REQUEST_ID: call.request_id}
        try:
            appended = await self._record(
                call.record(outcome, status, reason=reason, monitors=monitors), call.principal
            )
            headers = self._receipt(call, appended)
        except Exception as log_exc:
            return self._log_failed(call, log_exc)
        return Response(
            orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
        )

    def _log_failed(self, call: _Call, exc: BaseException) -> Response:
        """The answer when the call's entry could not be logged: an error, never the
        model's answer (invariant 1: no log, no action)."""
        _log.error("gateway request %s: the log write failed: %s", call.request_id, exc)
        status, body = openai_error(
            LogWriteError("the call could not be recorded in the log, so its result is withheld")
        )
        return Response(
            orjson.dumps(body),
            status_code=status,
            headers={REQUEST_ID: call.request_id},
            media_type="application/json",
        )

    def _new_call(self, request: Request) -> _Call:
        """A new call with a random 96-bit request id (unguessable, so one caller cannot name
        another's request)."""
        return _Call(
            request_id=secrets.token_hex(12), route=request.scope["path"], method=request.method
        )

    # --- routes ---------------------------------------------------------------------------

    async def serve(self, handler: str, request: Request) -> Response:
        """Answer ``request`` with the route handler named ``handler``, counting the calls
        in flight: a call alone in the process records its entry on the event loop (see
        :meth:`_record`)."""
        self._in_flight += 1
        try:
            response: Response = await getattr(self, handler)(request)
            return response
        finally:
            self._in_flight -= 1

    async def refuse_request(
        self, request: Request, status: int, code: str, message: str, param: str | None = None
    ) -> Response:
        """Refuse (and log) a request the raw-path guard stopped before routing."""
        call = self._new_call(request)
        call.route = request.scope.get("raw_path", b"").decode("latin-1")[:512] or call.route
        with contextlib.suppress(Refused):
            call.request_sha256 = hashlib.sha256(await self._read_body(request)).hexdigest()
        with contextlib.suppress(Refused):
            await self._authenticate(request, call)
        return await self._refuse(call, Refused(message, status=status, code=code, where=param))

    async def list_models(self, request: Request) -> Response:
        """GET /v1/models: only the models the caller holds an active grant for."""
        call = self._new_call(request)
        try:
            await self._authenticate(request, call)
            data = []
            for route in self.routes.values():
                try:
                    await self.grants.authorize(call.principal, route.capability)
                except PolicyDenied:
                    continue
                data.append(
                    {"id": route.name, "object": "model", "created": 0, "owned_by": route.owned_by}
                )
        except Error as exc:
            return await self._refuse(call, exc)
        body = orjson.dumps({"object": "list", "data": data})
        return await self._answer(call, body, None, [])

    async def chat_completions(self, request: Request) -> Response:
        """POST /v1/chat/completions, plain or streamed."""
        call = self._new_call(request)
        try:
            # The key first: an unauthenticated body is never read (its digest stays empty).
            await self._authenticate(request, call)
            body = await self._read_body(request)
            call.request_sha256 = hashlib.sha256(body).hexdigest()
            chat = parse_chat(body)
            call.stream = chat.stream
            route = self._route(chat.model)
            await self._authorize(call, route)
            verdicts = self._screen(chat.prompt_text(), "prompt")
        except Error as exc:
            return await self._refuse(call, exc)
        if chat.stream:
            # No byte of a stream before its entry is durable: the call is recorded before it
            # goes upstream, and a log that cannot record it stops it here (503, nothing else).
            try:
                await self._durable_entry(self._start_entry(call, verdicts))
            except Exception as exc:
                return self._log_failed(call, exc)
        try:
            reply = await self._forward(route, "chat/completions", chat.data, stream=chat.stream)
        except Error as exc:
            return await self._refuse(call, exc)
        if reply.chunks is not None:
            return self._stream(call, reply, verdicts)
        return await self._complete(call, reply, verdicts, chat=True)

    async def embeddings(self, request: Request) -> Response:
        """POST /v1/embeddings."""
        call = self._new_call(request)
        try:
            # The key first: an unauthenticated body is never read (its digest stays empty).
            await self._authenticate(request, call)
            body = await self._read_body(request)
            call.request_sha256 = hashlib.sha256(body).hexdigest()
            emb = parse_embeddings(body)
            route = self._route(emb.model)
            await self._authorize(call, route)
            verdicts = self._screen(emb.prompt_text(), "prompt")
            reply = await self._forward(route, "embeddings", emb.data, stream=False)
        except Error as exc:
            return await self._refuse(call, exc)
        return await self._complete(call, reply, verdicts, chat=False)

    # --- the model call -------------------------------------------------------------------

    def _screen(self, text: str, phase: Phase) -> list[MonitorVerdict]:
        """Run the gating monitors of ``phase`` over ``text``; their verdicts.

        Raises:
            MonitorBlocked: a monitor blocks it.
        """
        screening = self.monitors.screen(text, phase=phase)
        if screening.blocked_by is not None:
            raise MonitorBlocked(screening.blocked_by, phase, screening.verdicts)
        return list(screening.verdicts)

    async def _forward(
        self, route: ModelRoute, operation: Operation, data: dict[str, Any], *, stream: bool
    ) -> UpstreamReply:
        """Send the checked request to the route's upstream.

        Raises:
            UpstreamError: the upstream could not be reached or broke off.
        """
        # Re-serialised from what was checked, with the upstream's model name: the upstream
        # parses exactly the object custodes checked (no duplicate-key or encoding tricks).
        body = orjson.dumps({**data, "model": route.upstream_model})
        return await self.upstreams[route.name].send(route, operation, body, stream=stream)

    async def _complete(
        self, call: _Call, reply: UpstreamReply, verdicts: list[MonitorVerdict], *, chat: bool
    ) -> Response:
        """Answer a whole (not streamed) upstream reply: screen a chat answer's text, then
        log the call and answer with its receipt (or log and answer the refusal)."""
        if reply.status != 200:
            return await self._upstream_failed(call, reply, verdicts)
        try:
            data = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            return await self._refuse(
                call,
                UpstreamError(f"the upstream of model {call.model!r} answered with malformed JSON"),
            )
        if chat:
            screening = self.monitors.screen(response_text(data), phase="response")
            verdicts = verdicts + list(screening.verdicts)
            if screening.blocked_by is not None:
                return await self._refuse(
                    call, MonitorBlocked(screening.blocked_by, "response", verdicts)
                )
        usage = data.get("usage") if isinstance(data, dict) else None
        return await self._answer(call, reply.body, usage, verdicts)

    async def _answer(
        self, call: _Call, body: bytes, usage: Any, verdicts: list[MonitorVerdict]
    ) -> Response:
        """Log the answered call (with the SHA-256 of the body), then return ``body`` as it
        came, with the receipt headers."""
        record = call.record(
            "answered",
            200,
            response_sha256=hashlib.sha256(body).hexdigest(),
            usage=usage,
            monitors=verdicts,
        )
        try:
            appended = await self._record(record, call.principal)
        except Exception as exc:
            return self._log_failed(call, exc)
        return Response(
            body,
            status_code=200,
            headers=self._receipt(call, appended),
            media_type="application/json",
        )

    async def _upstream_failed(
        self, call: _Call, reply: UpstreamReply, verdicts: list[MonitorVerdict]
    ) -> Response:
        """Log and pass on an upstream's error answer: its body when it is an OpenAI-style
        error object, else an error of custodes' own; a status outside 4xx-5xx becomes 502."""
        try:
            shaped = orjson.loads(reply.body)
            ok = isinstance(shaped, dict) and isinstance(shaped.get("error"), dict)
        except orjson.JSONDecodeError:
            ok = False
        body = (
            reply.body
            if ok
            else orjson.dumps(
                openai_error(
                    UpstreamError(
                        f"the upstream of model {call.model!r} failed with status {reply.status}"
                    )
                )[1]
            )
        )
        status = reply.status if 400 <= reply.status <= 599 else 502
        record = call.record(
            "upstream_error",
            status,
            reason=f"upstream status {reply.status}",
            response_sha256=hashlib.sha256(body).hexdigest(),
            monitors=verdicts,
        )
        try:
            appended = await self._record(record, call.principal)
        except Exception as exc:
            return self._log_failed(call, exc)
        return Response(
            body,
            status_code=status,
            headers=self._receipt(call, appended),
            media_type="application/json",
        )

    def _stream(
        self, call: _Call, reply: UpstreamReply, verdicts: list[MonitorVerdict]
    ) -> Response:
        """Relay a streamed answer: each chunk screened before it is passed on, the call's
        closing record logged when the stream ends, and its receipt sent as a last SSE
        comment line (a comment, so OpenAI clients ignore it)."""

        def finish(state: StreamOutcome) -> Future[list[Appended]]:
            return self._submit(
                call.record(
                    state.outcome,
                    200,
                    reason=state.reason,
                    response_sha256=state.digest.hexdigest(),
                    usage=state.usage,
                    monitors=verdicts + state.verdicts,
                ),
                call.principal,
            )

        def receipt(appended: Appended) -> bytes:
            return (
                f": custodes-receipt {RECEIPT_INDEX}={appended.index} "
                f"{RECEIPT_LEAF}={appended.leaf_hash.hex()}\n\n"
            ).encode()

        return RelayResponse(
            reply=reply,
            screen=StreamScreen(functools.partial(self.monitors.screen, phase="response")),
            finish=finish,
            headers={REQUEST_ID: call.request_id, "cache-control": "no-cache"},
            receipt=receipt,
            request_id=call.request_id,
        )


async def _durable(pending: Future[list[Appended]]) -> list[Appended]:
    """Wait for the log; a caller that goes away must not cancel the entry itself."""
    if pending.done():  # committed inline (the log was idle): no trip through the event loop
        return pending.result()
    return await asyncio.shield(asyncio.wrap_future(pending))
