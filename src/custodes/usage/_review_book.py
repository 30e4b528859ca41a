"""The review clocks' state and their renewals, over the log and the ``usage_reviews`` table.

A tier's current period starts at its newest recorded review, or, before the first, when the
constitution version that introduced its clock was adopted (read from the stored versions, so
every replica and every restart agrees); the review is due ``every`` after. An overdue review
is one of the tracker's breaches, so it is raised and ended by the same alarm machinery as the
concentration rules (once per overdue period, ended when a renewal is recorded).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import yaml
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from custodes.authority import ApprovalFacts, RequestFacts, approver_refusal, evaluate_quorum
from custodes.authority import request_digest as digest_of
from custodes.clock import Clock
from custodes.constitution import Constitution, adopted_versions, stored_document
from custodes.errors import Denial, InputError, NotFoundError, PolicyDenied
from custodes.log import Appended, Entry, format_time, parse_time
from custodes.store import writer
from custodes.usage import _entries as E
from custodes.usage._reviews import Refused, ReviewClock, members_of, review_clocks, review_request
from custodes.usage._tables import usage_reviews

__all__ = ["ReviewBook", "ReviewState", "StoredReview"]

_log = logging.getLogger(__name__)
_REVIEW_MARK = b'"type":"usage.review/v1"'  # canonical JSON: cheap to look for in every entry


@dataclass(frozen=True)
class StoredReview:
    """A recorded renewal of a restriction."""

    capability: str
    due: datetime
    decided_at: datetime
    next_due: datetime
    admitted: tuple[str, ...]
    refused: tuple[Refused, ...]
    never_considered: tuple[str, ...]
    reasons: str
    counted: tuple[tuple[str, str], ...]
    log_index: int


@dataclass(frozen=True)
class ReviewState:
    """Where a tier's review clock stands at ``at``: the period's start, when the review is
    due (overdue from that instant on), the organisations a renewal keeps admitted, the digest
    of the constitution a renewal names, and the last review (if any)."""

    clock: ReviewClock
    started: datetime
    due: datetime
    members: tuple[str, ...]
    constitution: str
    last: StoredReview | None
    at: datetime

    @property
    def overdue(self) -> bool:
        """Whether the review is due at ``at`` (overdue from the due instant on)."""
        return self.at >= self.due


class Appender(Protocol):
    """What the book needs of the log (:class:`custodes.log.TransparencyLog` is one)."""

    def append(self, entry: Entry, *, timeout: float | None = 30.0) -> Appended: ...


class ReviewBook:
    """Review clocks over one database and log.

    Args:
        engine: the database holding ``usage_reviews`` and the adopted constitution versions.
        log: where renewals are appended.
        clock: the time source. Clocks start at the book's creation when no adopted version
            is stored (a constitution given directly rather than adopted, as in tests).
    """

    def __init__(self, *, engine: Engine, log: Appender, clock: Clock) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock
        self._fallback = clock.now()
        self._lock = threading.Lock()
        self._starts: dict[tuple[int, str], datetime] = {}

    def _introduced(self, c: Constitution, capability: str) -> datetime:
        """When the unbroken run of adopted versions with a clock for ``capability`` began."""
        versions = [v for v in adopted_versions(self.engine) if v.version <= c.version]
        if not versions:
            return self._fallback
        key = (versions[-1].version, capability)
        if key in self._starts:
            return self._starts[key]
        start = versions[-1].adopted_at
        for v in reversed(versions):
            doc = yaml.safe_load(stored_document(self.engine, v.version)) or {}
            reviews = (doc.get("usage") or {}).get("reviews", [])
            if not any(r.get("capability") == capability for r in reviews):
                break
            start = v.adopted_at
        self._starts[key] = start
        return start

    def last(self, capability: str) -> StoredReview | None:
        """The newest recorded review of ``capability``."""
        found = self.recorded(capability, limit=1)
        return found[0] if found else None

    def recorded(self, capability: str | None = None, *, limit: int = 100) -> list[StoredReview]:
        """The recorded reviews (of one tier), newest first."""
        q = select(usage_reviews).order_by(usage_reviews.c.log_index.desc()).limit(limit)
        if capability is not None:
            q = q.where(usage_reviews.c.capability == capability)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        out = []
        for r in rows:
            body = json.loads(r.body)
            request = body["request"]
            out.append(
                StoredReview(
                    capability=r.capability,
                    due=r.due,
                    decided_at=r.decided_at,
                    next_due=r.next_due,
                    admitted=tuple(request["admitted"]),
                    refused=tuple(
                        Refused(x["organisation"], x["reason"]) for x in request["refused"]
                    ),
                    never_considered=tuple(body["never_considered"]),
                    reasons=request["reasons"],
                    counted=tuple((p, o) for p, o in body["counted"]),
                    log_index=int(r.log_index),
                )
            )
        return out

    def states(self, c: Constitution) -> list[ReviewState]:
        """Every review clock of ``c`` and where it stands now."""
        now = self.clock.now()
        out = []
        for clock in review_clocks(c):
            last = self.last(clock.capability)
            started = self._introduced(c, clock.capability)
            if last is not None:
                # A review made before the clock was last (re)introduced belongs to an earlier
                # run of it: the period then starts at the reintroduction.
                started = max(started, last.decided_at)
            out.append(
                ReviewState(
                    clock=clock,
                    started=started,
                    due=started + clock.every,
                    members=members_of(c, clock.capability),
                    constitution=c.digest,
                    last=last,
                    at=now,
                )
            )
        return out

    def renew(
        self,
        c: Constitution,
        *,
        capability: str,
        due: str,
        constitution: str,
        refused: Sequence[Refused],
        reasons: str,
        approvals: Sequence[E.ReviewApproval],
    ) -> StoredReview:
        """Record a renewal of ``capability``'s restriction, approved under its clock's quorum.

        Raises:
            NotFoundError: ``capability`` has no review clock.
            InputError: ``due`` is not the review due now, ``constitution`` is not the digest
                of the constitution in force, no reasons, an unknown or admitted organisation
                among ``refused`` (or one twice, or without a reason).
            PolicyDenied: the approvals that count do not meet the quorum (each refused one
                is named with why).
            LogWriteError: the renewal could not be logged (nothing is recorded).
        """
        # Under the lock from reading the clock to storing the renewal: two renewals of one
        # period sent at once must not both be recorded against the same due time.
        with self._lock:
            states = {s.clock.capability: s for s in self.states(c)}
            state = states.get(capability)
            if state is None:
                raise NotFoundError(
                    f"{capability!r} has no review clock",
                    where="capability",
                    expected="one of " + ", ".join(states)
                    if states
                    else "a tier under usage.reviews (the constitution has none)",
                )
            self._check(c, state, due=due, constitution=constitution, refused=refused)
            if not reasons.strip():
                raise InputError("a review needs its reasons", where="reasons", expected="a text")
            now = self.clock.now()
            request = review_request(c, capability, due=state.due, refused=refused, reasons=reasons)
            digest = digest_of(request)
            counted = self._quorum(c, state.clock, digest, approvals, now)
            # Logged by name: a review that never looked at an organisation is visible as such,
            # not mistaken for one that weighed it and said no.
            considered = set(state.members) | {r.organisation for r in refused}
            never = sorted(o.id for o in c.organisations if o.id not in considered)
            # The next period runs from the decision, not from the due time: a late renewal
            # buys one full period, no more.
            next_due = now + state.clock.every
            body = E.ReviewBody(
                request=request,
                digest=digest,
                approvals=list(approvals),
                counted=list(counted),
                never_considered=never,
                next_due=format_time(next_due),
            )
            # Named after the first approver that counted: a renewal is their decision, not the
            # server's.
            appended = self.log.append(
                Entry.create(E.REVIEW, time=now, principal=counted[0][0], body=body)
            )
            self._insert(
                index=appended.index,
                capability=capability,
                due=state.due,
                decided_at=now,
                next_due=next_due,
                digest=digest,
                body=body.model_dump_json(),
            )
            return StoredReview(
                capability=capability,
                due=state.due,
                decided_at=now,
                next_due=next_due,
                admitted=state.members,
                refused=tuple(sorted(refused, key=lambda r: r.organisation)),
                never_considered=tuple(never),
                reasons=reasons,
                counted=counted,
                log_index=appended.index,
            )

    def _insert(
        self,
        *,
        index: int,
        capability: str,
        due: datetime,
        decided_at: datetime,
        next_due: datetime,
        digest: str,
        body: str,
    ) -> None:
        """Store the renewal logged at ``index`` (once: the log index is the key)."""
        try:
            with writer(self.engine).begin() as conn:
                conn.execute(
                    insert(usage_reviews).values(
                        log_index=index,
                        capability=capability,
                        due=due,
                        decided_at=decided_at,
                        next_due=next_due,
                        digest=digest,
                        body=body,
                    )
                )
        except IntegrityError:
            pass  # recorded already, from the log (:meth:`project`): the same entry, once

    def project(self, index: int, data: bytes) -> None:
        """Record the renewal logged at ``index`` if its row is missing.

        The row is written after the entry is durable; a process that stopped in between left
        a renewal in the log that would not count. Reading the log (the tracker's catch-up, at
        every start) writes it from the entry, which holds all of it. Only custodes writes
        ``usage.review/v1`` entries (clients may not: custodes.entry_types.CLIENT_TYPES), and
        it writes one only after the quorum was met.
        """
        # A byte search first: project sees every entry of the log, and almost none is a review.
        if _REVIEW_MARK not in data:
            return
        with self.engine.connect() as conn:
            found = conn.execute(
                select(usage_reviews.c.log_index).where(usage_reviews.c.log_index == index)
            ).first()
        if found is not None:
            return
        try:
            entry = Entry.from_json(data)
            if entry.type != E.REVIEW:
                return
            body = E.ReviewBody.model_validate(entry.body)
            capability = str(body.request["capability"])
            due = parse_time(str(body.request["due"]), where="request.due")
            next_due = parse_time(body.next_due, where="next_due")
        except (InputError, KeyError, ValueError):
            # Not one custodes wrote (it checks its bodies before appending): never let one
            # entry stop the log from being read (the gates wait for that read).
            _log.exception("log entry %d is not a readable usage review", index)
            return
        self._insert(
            index=index,
            capability=capability,
            due=due,
            decided_at=entry.time,
            next_due=next_due,
            digest=body.digest,
            body=body.model_dump_json(),
        )

    @staticmethod
    def _check(
        c: Constitution,
        state: ReviewState,
        *,
        due: str,
        constitution: str,
        refused: Sequence[Refused],
    ) -> None:
        """Check a renewal's claims against the state of its clock: it names the period due
        now and the constitution in force, and each refusal names a known organisation not
        admitted (refusing an admitted one is an amendment's business), once, with a reason.

        Raises:
            InputError: one of these does not hold (``where`` names it).
        """
        if parse_time(due, where="due") != state.due:
            raise InputError(
                f"the review of {state.clock.capability} due now is another period's",
                where="due",
                expected=format_time(state.due),
                actual=due,
            )
        if constitution != c.digest:
            raise InputError(
                "the review names another constitution than the one in force",
                where="constitution",
                expected=c.digest,
                actual=constitution,
            )
        orgs = c.organisations_by_id
        seen: set[str] = set()
        for i, r in enumerate(refused):
            where = f"refused[{i}]"
            if r.organisation not in orgs:
                raise InputError(
                    f"unknown organisation {r.organisation!r}",
                    where=where,
                    expected="an organisation of the constitution",
                )
            if r.organisation in state.members:
                raise InputError(
                    f"{r.organisation} is admitted to {state.clock.capability} under the "
                    "constitution in force: refusing it needs an amendment",
                    where=where,
                    expected="an organisation not among " + ", ".join(state.members),
                )
            if r.organisation in seen:
                raise InputError(f"{r.organisation} refused twice", where=where)
            if not r.reason.strip():
                raise InputError(
                    f"the refusal of {r.organisation} needs a reason", where=where + ".reason"
                )
            seen.add(r.organisation)

    @staticmethod
    def _quorum(
        c: Constitution,
        clock: ReviewClock,
        digest: str,
        approvals: Sequence[E.ReviewApproval],
        now: datetime,
    ) -> tuple[tuple[str, str], ...]:
        """Who counted towards the review's quorum, as (principal, organisation), one per
        person, once it is met: each approver must hold one of the clock's roles and have
        signed ``digest`` (the renewal request).

        Raises:
            PolicyDenied: the quorum is not met (what is missing, and who did not count).
        """
        rejected: list[str] = []
        usable = []
        for a in approvals:
            # A workload never counts: its directing person approves with their own key.
            why = approver_refusal(c, a.approver, clock.approver_roles)
            if why is not None:
                rejected.append(f"{a.approver}: {why}")
            else:
                usable.append(ApprovalFacts(a.approver, a.signature, now, c.version))
        outcome = evaluate_quorum(
            c,
            approver_roles=clock.approver_roles,
            quorum=clock.quorum,
            # Signatures are checked here, at once: validity only has to cover this instant.
            validity=timedelta(seconds=1),
            request=RequestFacts(digest, requester="", constitution_version=c.version),
            approvals=usable,
            now=now,
        )
        rejected += [f"{p}: {why}" for p, why in outcome.rejected]
        if not outcome.satisfied:
            raise PolicyDenied(
                f"the review of {clock.capability} does not meet its quorum "
                f"({'; '.join(outcome.missing)}): {clock.says()}"
                + (f"; not counted: {'; '.join(rejected)}" if rejected else ""),
                reasons=[Denial(clock.id, m) for m in outcome.missing],
            )
        return outcome.counted
