"""The log side of witnessing: send each new checkpoint to the witnesses, keep cosignatures.

The publisher listens to the log (``TransparencyLog.add_checkpoint_listener``) and, on its own
thread with an asyncio loop and one keep-alive ``httpx.AsyncClient``, asks every witness the
policy names to cosign the newest checkpoint (C2SP tlog-witness ``add-checkpoint``), each with
a consistency proof from the size that witness last cosigned. Witnesses are asked concurrently
and independently: one that is down or slow never holds up the others, and never the log,
which goes on appending. A 409 answer names the size the witness holds; the publisher retries
once from there. Cosignatures are verified before they are stored. A checkpoint is marked
``quorum_met`` once its cosigners satisfy the policy; until then it lacks quorum, and the
publisher keeps retrying the newest checkpoint every ``retry_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from custodes.bounds import check_int
from custodes.clock import Clock, SystemClock
from custodes.errors import Error, InputError, NotFoundError
from custodes.log import Note, Receipt, SignedCheckpoint
from custodes.store import writer
from custodes.witness._policy import PolicyWitness, WitnessPolicy
from custodes.witness._protocol import AddCheckpointRequest, parse_signature_lines, parse_size_body
from custodes.witness._tables import (
    witness_cosignatures,
    witness_peers,
    witness_published,
)

if TYPE_CHECKING:
    from custodes.config import Settings
    from custodes.constitution import Constitution
    from custodes.log import TransparencyLog

__all__ = [
    "CosignedCheckpoint",
    "WitnessPeerStatus",
    "WitnessPublisher",
    "WitnessReport",
    "start_publisher",
    "witness_policy_for",
]

_log = logging.getLogger(__name__)
_REPEAT_FAILURE = 300.0  # seconds before an unchanged failure is logged and stored again


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A log checkpoint with the witness cosignatures collected for it."""

    checkpoint: SignedCheckpoint
    witnesses: tuple[str, ...]
    quorum_met: bool

    def to_text(self) -> str:
        """The C2SP signed note: the log's signature line, then one cosignature line per witness."""
        return self.checkpoint.to_text()


@dataclass(frozen=True)
class WitnessPeerStatus:
    """What the publisher knows of one witness."""

    name: str
    url: str | None
    size: int
    last_ok_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class WitnessReport:
    """Where the witnessing of one log stands (``GET /witnesses``).

    Attributes:
        quorum: the policy's quorum, in words.
        latest_size: the size of the newest published checkpoint (None: none yet).
        latest_quorum_met: whether that checkpoint has the quorum yet.
        cosigned_size: the size of the newest checkpoint that has it (None: none yet).
        witnesses: each witness of the policy.
    """

    quorum: str
    latest_size: int | None
    latest_quorum_met: bool
    cosigned_size: int | None
    witnesses: tuple[WitnessPeerStatus, ...]


class WitnessPublisher:
    """Collects witness cosignatures for the log's checkpoints.

    Args:
        engine: the log's database (the publisher's tables are on the ``witness`` branch).
        log: the transparency log whose checkpoints are published.
        policy: the witnesses (with their submission URLs) and the quorum.
        clock: the time source for stored timestamps.
        timeout: seconds one add-checkpoint request may take.
        retry_interval: seconds between requests to one witness: after a cosignature, the
            witness is next asked for the newest checkpoint this much later; after a failure,
            the wait doubles with each failure in a row.
        max_backoff: the longest wait after failures in a row.
        refresh_interval: seconds after which a witness is asked again to cosign the newest
            checkpoint even if it already did, so that an idle log's cosignatures stay fresh
            (verifiers may require cosignatures newer than a maximum age: ``--max-age``).
    """

    def __init__(
        self,
        engine: Engine,
        log: TransparencyLog,
        policy: WitnessPolicy,
        *,
        clock: Clock | None = None,
        timeout: float = 5.0,
        retry_interval: float = 1.0,
        max_backoff: float = 30.0,
        policy_source: Callable[[], WitnessPolicy | None] | None = None,
        refresh_interval: float = 300.0,
    ) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock or SystemClock()
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.max_backoff = max(max_backoff, retry_interval)
        self.refresh_interval = refresh_interval
        self._last_ok: dict[str, float] = {}  # witness -> monotonic time of its last cosignature
        self._cosigned: dict[str, int] = {}  # witness -> largest size whose cosignature is stored
        self._next_try: dict[str, float] = {}  # witness -> monotonic time it may be asked
        self._failures: dict[str, int] = {}  # witness -> failures in a row
        self._last_error: dict[str, tuple[str, float]] = {}  # witness -> (error, logged at)
        self.policy_source = policy_source
        self._use_policy(policy)
        self._sizes: dict[str, int] = {}
        self._latest: SignedCheckpoint | None = None
        self._quorum_size = -1
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._started = threading.Event()
        self._last_published = -1
        self._background: set[asyncio.Task[None]] = set()
        # Each witness is asked once at start even if its cosignature of the newest checkpoint
        # is stored: a witness holding a larger tree is how a rolled-back store is found, and
        # it must be found before the log hands out the indices again.
        self._answered: set[str] = set()
        self._probed = threading.Event()
        self.probe_timeout = min(timeout, 5.0)

    def _use_policy(self, policy: WitnessPolicy) -> None:
        """Use ``policy`` from the next round. A witness it names without a URL still counts
        in its quorum but is never asked (a warning says so)."""
        self.policy = policy
        self.witnesses = [w for w in policy.witnesses if w.url]
        for w in policy.witnesses:
            if not w.url:
                _log.warning("witness %s has no URL: it cannot be asked to cosign", w.name)

    def _refresh_policy(self) -> None:
        """Read the policy in force again (a failure to read it keeps the current one)."""
        # An amendment of the constitution's witnesses section takes effect at the next round.
        if self.policy_source is None:
            return
        try:
            policy = self.policy_source()
        except Error as exc:
            _log.error("cannot read the witness policy, keeping the current one: %s", exc.message)
            return
        if policy is not None and policy != self.policy:
            _log.warning("witness policy changed: quorum %s", policy.describe())
            self._use_policy(policy)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Load what is known of the witnesses, listen to the log and start the sender thread."""
        if self._thread is not None:
            return
        with self.engine.connect() as conn:
            for row in conn.execute(select(witness_peers.c.witness, witness_peers.c.size)):
                self._sizes[row.witness] = int(row.size)
            for name, size in conn.execute(
                select(
                    witness_cosignatures.c.witness, func.max(witness_cosignatures.c.size)
                ).group_by(witness_cosignatures.c.witness)
            ):
                self._cosigned[name] = int(size)
            best = conn.execute(
                select(func.max(witness_published.c.size)).where(witness_published.c.quorum_met)
            ).scalar()
        self._quorum_size = -1 if best is None else int(best)
        self._thread = threading.Thread(
            target=self._run, name="custodes-witness-publisher", daemon=True
        )
        self._thread.start()
        self._started.wait(10)
        self.log.add_checkpoint_listener(self.notify)
        if self.witnesses and not self._probed.wait(self.probe_timeout):
            _log.warning(
                "not every witness answered within %.1f s of start; a rollback they would "
                "reveal is found when they do",
                self.probe_timeout,
            )

    def close(self) -> None:
        """Stop the publishing thread and wait for it (at most the HTTP timeout and 5 s)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self.log.remove_checkpoint_listener(self.notify)
        except ValueError:
            pass
        self._stopping = True
        self._poke()
        thread.join(timeout=self.timeout + 5)

    def notify(self, checkpoint: SignedCheckpoint) -> None:
        """The log listener: remember the newest checkpoint and wake the sender."""
        with self._cond:
            if self._latest is None or checkpoint.checkpoint.size >= self._latest.checkpoint.size:
                self._latest = checkpoint
        self._poke()

    def _poke(self) -> None:
        """Wake the sender loop, from any thread."""
        # An asyncio.Event is not thread-safe: it is set by the loop itself, scheduled with
        # call_soon_threadsafe (which also wakes a loop blocked in its selector).
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    # --- reading -------------------------------------------------------------

    def wait_for_quorum(self, size: int, timeout: float) -> bool:
        """Block until a checkpoint of at least ``size`` has quorum; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._quorum_size >= size, timeout=timeout)

    def cosigned(self, *, require_quorum: bool = True) -> CosignedCheckpoint | None:
        """The newest published checkpoint with quorum (or with any cosignature at all)."""
        query = select(witness_published).order_by(witness_published.c.size.desc()).limit(1)
        if require_quorum:
            query = query.where(witness_published.c.quorum_met)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            lines = conn.execute(
                select(witness_cosignatures.c.witness, witness_cosignatures.c.line)
                .where(witness_cosignatures.c.size == row.size)
                .order_by(witness_cosignatures.c.witness)
            ).all()
        note = Note.from_text(row.note)
        extra = tuple(s for r in lines for s in parse_signature_lines(r.line))
        merged = Note(text=note.text, signatures=note.signatures + extra)
        signed = SignedCheckpoint.from_text(merged.to_text(), self.log.signer.verifier)
        return CosignedCheckpoint(
            checkpoint=signed,
            witnesses=tuple(r.witness for r in lines),
            quorum_met=bool(row.quorum_met),
        )

    def status(self) -> list[WitnessPeerStatus]:
        """Each witness of the policy: its URL, the size it last cosigned, its last success and
        its last error.

        Raises:
            SQLAlchemyError: the status cannot be read.
        """
        with self.engine.connect() as conn:
            rows = {r.witness: r for r in conn.execute(select(witness_peers))}
        out = []
        for w in self.policy.witnesses:
            r = rows.get(w.name)
            out.append(
                WitnessPeerStatus(
                    name=w.name,
                    url=w.url,
                    size=int(r.size) if r else 0,
                    last_ok_at=r.last_ok_at if r else None,
                    last_error=r.last_error if r else ("no URL" if not w.url else None),
                )
            )
        return out

    def report(self) -> WitnessReport:
        """Each witness's state, the quorum, and how far the cosigned checkpoints reach.

        Raises:
            SQLAlchemyError: the state cannot be read.
        """
        peers = self.status()
        latest = self.cosigned(require_quorum=False)
        best = self.cosigned(require_quorum=True)
        return WitnessReport(
            quorum=self.policy.describe(),
            latest_size=latest.checkpoint.checkpoint.size if latest else None,
            latest_quorum_met=latest.quorum_met if latest else False,
            cosigned_size=best.checkpoint.checkpoint.size if best else None,
            witnesses=tuple(peers),
        )

    def cosigned_receipt(self, index: int) -> Receipt:
        """A C2SP tlog-proof receipt for entry ``index`` on the newest checkpoint that met the
        quorum: its checkpoint carries the cosignatures, so a client checks it offline against
        its own witness policy (``custodes witness verify FILE --policy ...``).

        Raises:
            InputError: ``index`` is negative or beyond a 64-bit index.
            NotFoundError: no checkpoint with the quorum covers ``index`` yet.
        """
        if index < 0:
            raise InputError("index must not be negative", where="index", actual=str(index))
        check_int(index, where="index")  # the database holds 64-bit indices
        found = self.cosigned(require_quorum=True)
        size = found.checkpoint.checkpoint.size if found is not None else 0
        if found is None or index >= size:
            raise NotFoundError(
                f"entry {index} is not yet covered by a checkpoint that met the witness quorum",
                where="index",
                expected=f"index < {size}",
                hint="retry once the witnesses have cosigned a newer checkpoint",
            )
        # The proof is to the cosigned size, not the log's newest: the receipt's checkpoint is
        # the one the witnesses signed, and an inclusion proof holds only for its own tree.
        return Receipt.build(
            index=index,
            proof=self.log.inclusion_proof(index, size),
            checkpoint=found.checkpoint,
            entry_data=self.log.entry_data(index),
        )

    # --- sending -------------------------------------------------------------

    def _run(self) -> None:
        """The sender thread: its own event loop, so no log thread ever waits on a witness."""
        asyncio.run(self._main())

    async def _main(self) -> None:
        """The sender loop: a round at each new checkpoint, or every ``retry_interval``
        seconds; requests still in flight at stop are cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._started.set()
        inflight: dict[str, asyncio.Task[None]] = {}
        # One kept-alive connection per witness (and a spare): a round is one request each.
        limits = httpx.Limits(max_keepalive_connections=len(self.witnesses) + 1)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            while not self._stopping:
                self._refresh_policy()
                checkpoint = await self._newest()
                if checkpoint is not None:
                    await self._round(client, checkpoint, inflight)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.retry_interval)
                except TimeoutError:
                    pass
                self._wake.clear()
            for task in inflight.values():
                task.cancel()
            await asyncio.gather(*inflight.values(), return_exceptions=True)

    async def _newest(self) -> SignedCheckpoint | None:
        """The newest checkpoint the listener was given, or the log's own at the first round
        (None, logged, if the log cannot be read)."""
        with self._cond:
            latest = self._latest
        if latest is None:
            try:
                latest = await asyncio.to_thread(self.log.latest_checkpoint)
            except Error as exc:
                _log.warning("cannot read the log's checkpoint: %s", exc.message)
                return None
            self.notify(latest)
        return latest

    async def _round(
        self,
        client: httpx.AsyncClient,
        checkpoint: SignedCheckpoint,
        inflight: dict[str, asyncio.Task[None]],
    ) -> None:
        """Ask every witness that is due to cosign ``checkpoint``: one not backing off, not
        being asked already, and without a recent cosignature of this size (each is asked at
        least once after start)."""
        size = checkpoint.checkpoint.size
        now = time.monotonic()
        due = []
        for w in self.witnesses:
            if now < self._next_try.get(w.name, 0.0):
                continue  # paced / backing off (see _ask)
            if (
                self._cosigned.get(w.name, 0) >= size
                and w.name in self._answered
                and now - self._last_ok.get(w.name, float("-inf")) < self.refresh_interval
            ):
                continue  # cosigned already, recently enough (and asked once since start)
            task = inflight.get(w.name)
            if task is not None and not task.done():
                continue
            due.append(w)
        if not due:
            return
        if size != self._last_published:
            # Recorded beside the requests, not before them: the first cosignature must not
            # wait for an extra durable write (the cosignature's own write records it too).
            self._last_published = size
            record = asyncio.create_task(asyncio.to_thread(self._record_published, checkpoint))
            self._background.add(record)
            record.add_done_callback(self._background.discard)
        for w in due:
            inflight[w.name] = asyncio.create_task(
                self._ask(client, w, checkpoint), name=f"witness {w.name} size {size}"
            )

    async def _ask(
        self, client: httpx.AsyncClient, w: PolicyWitness, signed: SignedCheckpoint
    ) -> None:
        """Ask ``w`` to cosign, then pace it: a witness that answered is asked again (for the
        newest checkpoint then) after ``retry_interval``; one that failed waits twice as long
        after each failure in a row, up to ``max_backoff``. A failure is logged and stored when
        it starts or changes (and again every five minutes while it lasts), not on every
        retry: a witness that is down must not flood the log file or the database."""
        size = signed.checkpoint.size
        try:
            error = await self._ask_once(client, w, signed)
        except Exception as exc:  # a bug must not kill the sender loop; keep it visible
            _log.exception("publishing to witness %s failed", w.name)
            error = f"internal error: {exc}"
        now = time.monotonic()
        self._answered.add(w.name)
        if self._answered.issuperset(x.name for x in self.witnesses):
            self._probed.set()
        if error is None:
            self._last_ok[w.name] = now
            if self._failures.pop(w.name, 0):
                _log.warning("witness %s cosigned size %d again", w.name, size)
            self._last_error.pop(w.name, None)
            self._next_try[w.name] = now + self.retry_interval
            return
        failures = self._failures[w.name] = self._failures.get(w.name, 0) + 1
        backoff = min(self.retry_interval * 2 ** (failures - 1), self.max_backoff)
        self._next_try[w.name] = now + backoff
        last = self._last_error.get(w.name)
        if last is not None and last[0] == error and now - last[1] < _REPEAT_FAILURE:
            return
        self._last_error[w.name] = (error, now)
        _log.warning(
            "witness %s did not cosign size %d: %s (failure %d in a row; next try in %.1f s)",
            w.name,
            size,
            error,
            failures,
            backoff,
        )
        await asyncio.to_thread(self._record_peer, w.name, None, error)

    async def _ask_once(
        self, client: httpx.AsyncClient, w: PolicyWitness, signed: SignedCheckpoint
    ) -> str | None:
        """Ask one witness; return None when cosigned, else what went wrong."""
        cp = signed.checkpoint
        old = self._sizes.get(w.name, 0)
        for _attempt in range(3):
            if old > cp.size:
                # Another process sharing the database may have signed (and published) more
                # than this publisher knows of: then the newest stored checkpoint is sent.
                newest = await asyncio.to_thread(self._stored_newest)
                if newest is not None and newest.checkpoint.size >= old:
                    signed, cp = newest, newest.checkpoint
                    self.notify(newest)
                    continue
                detail = (
                    f"witness {w.name} holds size {old}, larger than the log's {cp.size}: the "
                    "log was rolled back (a restored backup, a truncated database) or forked"
                )
                await asyncio.to_thread(self._alarm, w.name, old, detail)
                return detail
            try:
                # From size 0 or to the same size the proof is empty: C2SP tlog-witness sends
                # none from 0, and RFC 9162 §2.1.4.2 verifies equal sizes with no hashes.
                proof = (
                    await asyncio.to_thread(self.log.consistency_proof, old, cp.size)
                    if 0 < old < cp.size
                    else []
                )
            except Error as exc:
                return f"cannot prove consistency from size {old}: {exc.message}"
            body = AddCheckpointRequest.build(old, proof, signed.note.to_text())
            url = w.url.rstrip("/") + "/add-checkpoint" if w.url else ""
            try:
                resp = await client.post(url, content=body)
            except httpx.HTTPError as exc:
                return f"unreachable: {exc.__class__.__name__}: {exc}"
            # 409 Conflict: the witness holds another size than the one the request was built
            # from and answers it (C2SP tlog-witness, text/x.tlog.size); the request is built
            # again from there, unless that was the size sent: then the two trees differ.
            if resp.status_code == 409:
                try:
                    held = parse_size_body(resp.text)
                except InputError:
                    return f"409 with a malformed body {resp.text[:80]!r}"
                if held == old:
                    return (
                        f"witness refuses size {cp.size} from its size {held}: it holds a "
                        "different tree (split view or fork)"
                    )
                old = held
                self._sizes[w.name] = held
                continue
            if resp.status_code != 200:
                return f"HTTP {resp.status_code}: {resp.text.strip()[:200]}"
            try:
                sigs = parse_signature_lines(resp.text)
            except InputError as exc:
                return f"malformed cosignature answer: {exc.message}"
            good = [
                s
                for s in sigs
                if s.name == w.verifier.name
                and s.key_id == w.verifier.key_id
                and w.verifier.verify(signed.note.text.encode(), s.signature)
            ]
            if not good:
                return "answer carries no valid cosignature by the witness's key"
            self._sizes[w.name] = cp.size
            await asyncio.to_thread(self._record_cosignature, w.name, signed, good[0].to_line())
            return None
        return "too many 409 answers"

    def _stored_newest(self) -> SignedCheckpoint | None:
        """The newest checkpoint stored in the database (which another process sharing it may
        have signed), or None if it cannot be read."""
        try:
            return self.log.latest_checkpoint(fresh=False)
        except Error:
            return None

    def _alarm(self, witness: str, held: int, detail: str) -> None:
        """Rollback is fatal: the log stops appending until an operator resumes it."""
        try:
            self.log.raise_alarm("rollback", detail, witness=witness, witness_size=held)
        except Error as exc:
            _log.critical("cannot record the rollback alarm (appends are stopped): %s", exc)

    # --- storing -------------------------------------------------------------

    def _record_published(self, signed: SignedCheckpoint) -> None:
        """Record that ``signed`` was sent out (lacking quorum until cosignatures arrive)."""
        try:
            with writer(self.engine).begin() as conn:
                self._ensure_published(conn, signed)
        except IntegrityError:
            pass  # a cosignature's transaction recorded it first
        except SQLAlchemyError:
            _log.exception("cannot record published checkpoint %d", signed.checkpoint.size)

    def _ensure_published(self, conn: Connection, signed: SignedCheckpoint) -> None:
        """In ``conn``'s transaction: the published row of ``signed`` (inserted if missing;
        met at once under a policy that needs no cosignature), locked for the count."""
        cp = signed.checkpoint
        row = conn.execute(
            select(witness_published.c.root_hash).where(witness_published.c.size == cp.size)
        ).first()
        if row is None:
            conn.execute(
                insert(witness_published).values(
                    size=cp.size,
                    root_hash=cp.root_hash,
                    note=signed.note.to_text(),
                    quorum_met=not self.policy.requires_cosignatures,
                    published_at=self.clock.now(),
                )
            )
        elif bytes(row.root_hash) != cp.root_hash:
            # Only a log that signed two roots for one size gets here: keep the first.
            _log.error("the log signed two roots for size %d", cp.size)
        # Cosignatures for one checkpoint are counted one transaction at a time (PostgreSQL
        # row lock; SQLite's BEGIN IMMEDIATE already serialises), so two arriving together
        # cannot each miss the other and leave a met quorum unmarked.
        conn.execute(
            select(witness_published.c.size)
            .where(witness_published.c.size == cp.size)
            .with_for_update()
        )

    def _record_cosignature(self, name: str, signed: SignedCheckpoint, line: str) -> None:
        """Store the verified cosignature ``line`` of witness ``name`` for ``signed``, mark the
        checkpoint's quorum met if its cosigners now satisfy the policy, and record the
        witness's status: one transaction, so a counted cosignature is a stored one."""
        cp = signed.checkpoint
        now = self.clock.now()
        try:
            with writer(self.engine).begin() as conn:
                self._ensure_published(conn, signed)
                exists = conn.execute(
                    select(witness_cosignatures.c.witness).where(
                        witness_cosignatures.c.size == cp.size,
                        witness_cosignatures.c.witness == name,
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        insert(witness_cosignatures).values(
                            size=cp.size, witness=name, line=line, received_at=now
                        )
                    )
                else:  # a refresh: the newer cosignature (timestamp) replaces the older one
                    conn.execute(
                        update(witness_cosignatures)
                        .where(
                            witness_cosignatures.c.size == cp.size,
                            witness_cosignatures.c.witness == name,
                        )
                        .values(line=line, received_at=now)
                    )
                names = set(
                    conn.execute(
                        select(witness_cosignatures.c.witness).where(
                            witness_cosignatures.c.size == cp.size
                        )
                    ).scalars()
                )
                met = self.policy.satisfied_by(names)
                if met:
                    conn.execute(
                        update(witness_published)
                        .where(
                            witness_published.c.size == cp.size,
                            witness_published.c.quorum_met.is_(False),
                        )
                        .values(quorum_met=True, quorum_at=now)
                    )
                self._upsert_peer(conn, name, cp.size, None, now)
        except SQLAlchemyError:
            # Not stored means not counted; the next round asks this witness again.
            _log.exception("cannot store cosignature of %s for size %d", name, cp.size)
            self._sizes.pop(name, None)
            return
        self._cosigned[name] = max(self._cosigned.get(name, 0), cp.size)
        if met:
            with self._cond:
                self._quorum_size = max(self._quorum_size, cp.size)
                self._cond.notify_all()

    def _record_peer(self, name: str, size: int | None, error: str | None) -> None:
        """Store a witness's status (its last error, or its success) in a transaction of its
        own; a database failure is logged, never raised into the sender loop."""
        try:
            with writer(self.engine).begin() as conn:
                self._upsert_peer(conn, name, size, error, self.clock.now())
        except SQLAlchemyError:
            _log.exception("cannot record witness %s status", name)

    def _upsert_peer(
        self, conn: Connection, name: str, size: int | None, error: str | None, now: datetime
    ) -> None:
        """Update (or insert) witness ``name``'s status row in ``conn``: the size it holds
        (``size``, else the last known), its error, and when it last cosigned."""
        known = self._sizes.get(name, 0) if size is None else size
        values: dict[str, object] = {"size": known, "last_error": error, "updated_at": now}
        if error is None:
            values["last_ok_at"] = now
        exists = conn.execute(
            select(witness_peers.c.witness).where(witness_peers.c.witness == name)
        ).first()
        if exists is None:
            conn.execute(insert(witness_peers).values(witness=name, **values))
        else:
            conn.execute(
                update(witness_peers).where(witness_peers.c.witness == name).values(**values)
            )


def witness_policy_for(
    settings: Settings, constitution: Constitution | None
) -> WitnessPolicy | None:
    """The witnesses the log publishes to: the policy file if set, else the constitution's.

    Args:
        settings: ``witness_policy_file`` and ``constitution_file``.
        constitution: the constitution in force (its active version, amendments included, so
            an amendment changes the witnesses at the next start); None falls back to
            ``constitution_file``.

    Raises:
        InputError: the policy file is malformed.
        ConstitutionError: the constitution file is refused.
    """
    if settings.witness_policy_file is not None:
        return WitnessPolicy.from_file(settings.witness_policy_file)
    if constitution is None and settings.constitution_file is not None:
        from custodes.constitution import read_constitution

        constitution = read_constitution(settings.constitution_file)
    if constitution is None or not constitution.witnesses.witnesses:
        return None
    return WitnessPolicy.from_constitution(constitution.witnesses)


def start_publisher(
    settings: Settings,
    *,
    engine: Engine,
    log: TransparencyLog,
    clock: Clock,
    constitution: Callable[[], Constitution | None],
) -> WitnessPublisher | None:
    """Start publishing the log's checkpoints to the configured witnesses.

    Args:
        settings: the deployment's settings (``witness_*``).
        engine: the migrated database (cosignatures, witness status).
        log: the log whose checkpoints are published.
        clock: the deployment's clock.
        constitution: the constitution in force, read again on every round unless a policy
            file is set, so an amendment's witnesses apply without a restart.

    Returns:
        The running publisher, or None when no witnesses are configured.

    Raises:
        InputError: the policy file is malformed.
        ConstitutionError: the constitution file is refused.
    """
    policy = witness_policy_for(settings, constitution())
    if policy is None:
        _log.warning("no witnesses configured: checkpoints are not cosigned")
        return None
    source = None if settings.witness_policy_file is not None else _policy_source(constitution)
    publisher = WitnessPublisher(
        engine,
        log,
        policy,
        clock=clock,
        retry_interval=settings.witness_retry_interval_ms / 1000,
        policy_source=source,
    )
    publisher.start()
    return publisher


def _policy_source(
    constitution: Callable[[], Constitution | None],
) -> Callable[[], WitnessPolicy | None]:
    """The witness policy of the constitution in force, rebuilt only when it changes."""
    cache: dict[str, WitnessPolicy | None] = {}

    def source() -> WitnessPolicy | None:
        current = constitution()
        if current is None:
            return None
        if current.digest not in cache:
            cache.clear()
            config = current.witnesses
            cache[current.digest] = (
                WitnessPolicy.from_constitution(config) if config.witnesses else None
            )
        return cache[current.digest]

    return source
