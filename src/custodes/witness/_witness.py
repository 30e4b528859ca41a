"""The witness: verify a log's new checkpoint against the last one cosigned, store it, cosign.

C2SP tlog-witness. Requests are checked in two steps. Everything that needs no state (body
syntax, known origin, the log's signature) is checked by the caller's thread. Everything that
depends on the stored checkpoint runs in one committer thread that drains queued requests into a
single database transaction (group commit: one fsync for many cosignatures): it compares the
old size with the size held, verifies the consistency proof against the held root, and writes
the new checkpoint. A cosignature is made only after that transaction has committed, so a
witness never cosigns a checkpoint it has not durably recorded, and a restart (or SIGKILL) can
never take it back to an older state. Two validly signed checkpoints that cannot both be true
(the same size with different roots, or a consistency proof that leads to the offered root but
to another root than the held one at the held size) are stored as :class:`Evidence` in the
same transaction. A proof that is merely malformed or wrong proves nothing: it is refused (422)
and not kept.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock, SystemClock
from custodes.errors import InputError, VerificationError, WitnessError
from custodes.log import (
    ALG_COSIGNATURE_V1,
    EMPTY_ROOT,
    NoteSigner,
    NoteVerifier,
    Signature,
    SignedCheckpoint,
    implied_old_root,
    verify_consistency,
)
from custodes.store import writer
from custodes.witness._evidence import Evidence, EvidenceKind
from custodes.witness._protocol import CONTENT_TYPE_SIZE, AddCheckpointRequest
from custodes.witness._tables import witness_evidence, witness_state

__all__ = ["AddCheckpointError", "Witness", "load_evidence", "migrate_witness"]

_log = logging.getLogger(__name__)


class AddCheckpointError(WitnessError):
    """An add-checkpoint request refused with the protocol's status code.

    Attributes:
        status: the HTTP status C2SP tlog-witness prescribes.
        body: the exact answer body (the held size for 409), else the message.
        content_type: the answer's media type.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else message + "\n"
        self.content_type = content_type


def _conflict(held_size: int, message: str) -> AddCheckpointError:
    # C2SP tlog-witness: 409 with the held size in decimal and a newline, text/x.tlog.size.
    return AddCheckpointError(
        message, status=409, body=f"{held_size}\n", content_type=CONTENT_TYPE_SIZE
    )


@dataclass
class _Pending:
    """A request that passed the stateless checks, waiting for the committer's decision."""

    request: AddCheckpointRequest
    note_text: str
    future: Future[str]


@dataclass
class _Held:
    """The checkpoint held for one origin, as the batch being decided sees it."""

    size: int
    root_hash: bytes
    note: str
    stored: bool  # a row exists (UPDATE) or not yet (INSERT)


class Witness:
    """A tlog-witness with its own key and its own durable state.

    Args:
        engine: the witness's database, migrated to the ``witness`` branch.
        signer: the witness's cosignature/v1 key (signature type 0x04).
        logs: the log verifier keys it trusts; each key's name is the log's origin.
        clock: the time source for cosignature timestamps.
        batch_max: the most requests committed in one transaction.

    Raises:
        InputError: the key is not a cosignature/v1 key.
    """

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        logs: Iterable[NoteVerifier],
        *,
        clock: Clock | None = None,
        batch_max: int = 512,
    ) -> None:
        if signer.alg != ALG_COSIGNATURE_V1:
            raise InputError(
                "a witness key must be a cosignature/v1 key",
                expected="signature type 0x04 (C2SP tlog-cosignature)",
                hint="create one with `custodes witness keygen`",
            )
        self.engine = engine
        self.signer = signer
        self.clock = clock or SystemClock()
        self.batch_max = batch_max
        self.logs: dict[str, list[NoteVerifier]] = {}
        # Several keys per origin: a log rotating its key stays trusted under both meanwhile.
        for key in logs:
            self.logs.setdefault(key.name, []).append(key)
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def verifier(self) -> NoteVerifier:
        """The key that checks this witness's cosignatures (what policies list)."""
        return self.signer.verifier

    @property
    def name(self) -> str:
        """The witness's key name (its identity in cosignature lines)."""
        return self.signer.name

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the thread that cosigns queued checkpoints in batches (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="custodes-witness", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the cosigning thread once the queued checkpoints are done."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    # --- the protocol --------------------------------------------------------

    def add_checkpoint(self, body: bytes, *, timeout: float | None = 30.0) -> str:
        """Handle one request body; return the cosignature line(s).

        Raises:
            AddCheckpointError: refused, with the protocol's status code.
        """
        return self.submit(body).result(timeout=timeout)

    def submit(self, body: bytes) -> Future[str]:
        """Check ``body`` and queue it; the future holds the cosignature lines once durable.

        Raises:
            AddCheckpointError: refused before it reached the stored state (400/403/404).
        """
        request, note_text = self.check(body)
        future: Future[str] = Future()
        self.start()
        self._queue.put(_Pending(request, note_text, future))
        return future

    def check(self, body: bytes) -> tuple[AddCheckpointRequest, str]:
        """The stateless checks: syntax (400), known origin (404), log signature (403).

        Raises:
            AddCheckpointError: the request is refused.
        """
        try:
            request = AddCheckpointRequest.from_bytes(body)
        except InputError as exc:
            where = f"{exc.where}: " if exc.where else ""
            raise AddCheckpointError(f"bad request: {where}{exc.message}", status=400) from exc
        origin = request.checkpoint.origin
        keys = self.logs.get(origin)
        if keys is None:
            raise AddCheckpointError(f"unknown log origin {origin!r}", status=404)
        # C2SP tlog-witness: signatures by unknown keys are ignored; 403 if none verifies.
        if not request.note.verified_by(keys):
            raise AddCheckpointError(
                f"no signature on the checkpoint verifies with a key trusted for {origin!r}",
                status=403,
            )
        if request.old_size > request.checkpoint.size:
            # C2SP tlog-witness: checked after the signature, answered with 400 Bad Request.
            raise AddCheckpointError(
                f"bad request: old size {request.old_size} is larger than the checkpoint size "
                f"{request.checkpoint.size}",
                status=400,
            )
        return request, request.note.to_text()

    def latest(self, origin: str) -> SignedCheckpoint | None:
        """The last checkpoint this witness cosigned for ``origin``."""
        with self.engine.connect() as conn:
            note = conn.execute(
                select(witness_state.c.note).where(witness_state.c.origin == origin)
            ).scalar()
        if note is None:
            return None
        # A log no longer trusted shows nothing, even while its last checkpoint is stored.
        return (
            SignedCheckpoint.from_text(note, self.logs[origin][0], origin=origin)
            if origin in self.logs
            else None
        )

    def held_sizes(self) -> dict[str, int]:
        """The size of the checkpoint held for each log origin."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(witness_state.c.origin, witness_state.c.size)).all()
        return {r.origin: int(r.size) for r in rows}

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        """Stored evidence of equivocation, oldest first."""
        return load_evidence(self.engine, origin=origin, witness=self.name)

    # --- the committer -------------------------------------------------------

    def _run(self) -> None:
        """The committer thread: take every request waiting (up to ``batch_max``) and decide
        them in one transaction; ``None`` in the queue stops it after the batch in hand."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.batch_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: Sequence[_Pending]) -> None:
        """Decide a batch against the held checkpoints, store the new ones and any evidence in
        one transaction, and only then sign: a cosignature is returned only for a checkpoint
        durably recorded as held (C2SP tlog-witness persists it first, so a restarted witness
        cannot be led to cosign a fork). A storage failure answers the whole batch 503."""
        outcomes: list[AddCheckpointError | None] = []
        try:
            with writer(self.engine).begin() as conn:
                held = self._read_held(conn, {p.request.checkpoint.origin for p in batch})
                evidence: list[dict[str, Any]] = []
                changed: set[str] = set()
                for p in batch:
                    outcome = self._decide(p, held, evidence)
                    if outcome is None:
                        changed.add(p.request.checkpoint.origin)
                    outcomes.append(outcome)
                self._write(conn, held, changed, evidence)
        except SQLAlchemyError as exc:
            _log.exception("witness state could not be written")
            error = AddCheckpointError(
                f"witness storage unavailable: {exc.__class__.__name__}", status=503
            )
            for p in batch:
                p.future.set_exception(error)
            return
        # One time for the batch: one commit made all of its checkpoints durable.
        timestamp = int(self.clock.now().timestamp())
        for p, outcome in zip(batch, outcomes, strict=True):
            if outcome is not None:
                p.future.set_exception(outcome)
                continue
            body = p.request.note.text.encode()
            line = Signature(
                name=self.signer.name,
                key_id=self.signer.key_id,
                signature=self.signer.sign(body, timestamp=timestamp),
            ).to_line()
            p.future.set_result(line)

    def _read_held(self, conn: Connection, origins: set[str]) -> dict[str, _Held]:
        """The checkpoints held for ``origins``, their rows locked until the transaction ends
        (another process sharing the database waits rather than deciding on the same state)."""
        rows = conn.execute(
            select(witness_state).where(witness_state.c.origin.in_(origins)).with_for_update()
        ).all()
        return {r.origin: _Held(int(r.size), bytes(r.root_hash), r.note, True) for r in rows}

    def _decide(
        self, p: _Pending, held: dict[str, _Held], evidence: list[dict[str, Any]]
    ) -> AddCheckpointError | None:
        """Compare one request with the held checkpoint; update ``held`` if accepted."""
        req = p.request
        new = req.checkpoint
        cur = held.get(new.origin)
        held_size = cur.size if cur is not None else 0
        if req.old_size != held_size:
            return _conflict(
                held_size, f"old size {req.old_size} is not the size held, {held_size}"
            )
        if cur is not None:
            # The same checkpoint again (a retry after a lost answer) is cosigned again.
            if new.size == cur.size:
                if new.root_hash != cur.root_hash:
                    self._keep_evidence(evidence, "same-size", cur, p)
                    return _conflict(
                        held_size,
                        f"checkpoint of size {new.size} has a different "
                        "root than the one cosigned: equivocation",
                    )
            # A held empty tree is a prefix of every tree: there is nothing to prove.
            elif cur.size > 0 or cur.root_hash != EMPTY_ROOT:
                try:
                    verify_consistency(cur.size, new.size, req.proof, cur.root_hash, new.root_hash)
                except VerificationError as exc:
                    implied = implied_old_root(cur.size, new.size, req.proof, new.root_hash)
                    if implied is not None and implied != cur.root_hash:
                        # The proof binds the offered tree to another root at the held size.
                        self._keep_evidence(evidence, "inconsistent", cur, p)
                        return AddCheckpointError(
                            f"the offered checkpoint's tree has a different root at size "
                            f"{cur.size} than the one cosigned: equivocation ({exc.message})",
                            status=422,
                        )
                    _log.warning(
                        "log %r sent a consistency proof from %d to %d that does not verify "
                        "(refused; it proves nothing, so no evidence is kept): %s",
                        new.origin,
                        cur.size,
                        new.size,
                        exc.message,
                    )
                    return AddCheckpointError(
                        f"consistency proof does not verify: {exc.message}", status=422
                    )
        stored = cur.stored if cur is not None else False
        # The batch's view moves on too: the next request of the same batch is decided against
        # this checkpoint, exactly as if each had been committed alone.
        held[new.origin] = _Held(new.size, new.root_hash, p.note_text, stored)
        return None

    def _keep_evidence(
        self, evidence: list[dict[str, Any]], kind: EvidenceKind, cur: _Held, p: _Pending
    ) -> None:
        """Keep the two notes that conflict (and the proof, if any) as evidence of the log's
        equivocation: both are signed by the log, so anyone can check the evidence."""
        _log.error(
            "EQUIVOCATION by log %r: %s conflict (held size %d, offered size %d)",
            p.request.checkpoint.origin,
            kind,
            cur.size,
            p.request.checkpoint.size,
        )
        evidence.append(
            {
                "origin": p.request.checkpoint.origin,
                "kind": kind,
                "held_note": cur.note,
                "offered_note": p.note_text,
                "old_size": p.request.old_size,
                "proof": b"".join(p.request.proof),
                "detected_at": self.clock.now(),
            }
        )

    def _write(
        self,
        conn: Connection,
        held: Mapping[str, _Held],
        changed: set[str],
        evidence: list[dict[str, Any]],
    ) -> None:
        """Write the batch's outcome in ``conn``: the changed held checkpoints (updated or
        inserted, each kind in one statement) and the evidence not stored before."""
        now = self.clock.now()
        updates = [
            {
                "b_origin": o,
                "b_size": held[o].size,
                "b_root": held[o].root_hash,
                "b_note": held[o].note,
            }
            for o in changed
            if held[o].stored
        ]
        inserts = [
            {
                "origin": o,
                "size": held[o].size,
                "root_hash": held[o].root_hash,
                "note": held[o].note,
                "updated_at": now,
            }
            for o in changed
            if not held[o].stored
        ]
        if updates:  # one executemany per batch: group commit is also group execution
            conn.execute(
                update(witness_state)
                .where(witness_state.c.origin == bindparam("b_origin"))
                .values(
                    size=bindparam("b_size"),
                    root_hash=bindparam("b_root"),
                    note=bindparam("b_note"),
                    updated_at=now,
                ),
                updates,
            )
        if inserts:
            conn.execute(insert(witness_state), inserts)
        seen: set[tuple[str, str, str]] = set()
        for ev in evidence:
            # A log that keeps retrying the same conflict is one piece of evidence, not many.
            key = (ev["origin"], ev["held_note"], ev["offered_note"])
            if key in seen:
                continue
            seen.add(key)
            known = conn.execute(
                select(witness_evidence.c.id)
                .where(
                    witness_evidence.c.origin == key[0],
                    witness_evidence.c.held_note == key[1],
                    witness_evidence.c.offered_note == key[2],
                )
                .limit(1)
            ).first()
            if known is None:
                conn.execute(insert(witness_evidence).values(**ev))


def load_evidence(
    engine: Engine, *, origin: str | None = None, witness: str = ""
) -> list[Evidence]:
    """The evidence a witness database holds, oldest first."""
    query = select(witness_evidence).order_by(witness_evidence.c.id)
    if origin is not None:
        query = query.where(witness_evidence.c.origin == origin)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Evidence(
            origin=r.origin,
            kind=r.kind,
            held_note=r.held_note,
            offered_note=r.offered_note,
            old_size=int(r.old_size),
            proof=tuple(bytes(r.proof[i : i + 32]) for i in range(0, len(r.proof), 32)),
            detected_at=r.detected_at,
            witness=witness,
        )
        for r in rows
    ]


def migrate_witness(engine: Engine) -> None:
    """Create or upgrade a witness's own database: only the ``witness`` Alembic branch.

    Raises:
        StoreError: the database cannot be reached or migrated.
    """
    from custodes.store import migrate

    migrate(engine, branch="witness")
