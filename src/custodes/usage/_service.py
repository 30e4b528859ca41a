"""The usage tracker: chains at the gateway, figures, gates, alarms and overrides.

It receives what it needs in its constructor as typed roles (issue 16): the log it reads and
appends to, the source of the constitution in force, the active grants, the clock, and its own
database. The gateway calls :meth:`UsageTracker.admit` before a call goes upstream and
:meth:`UsageTracker.observe` once its entry is durable; :meth:`UsageTracker.catch_up` reads
whatever else reached the log (other replicas, a restart) so the figures are the log's.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from custodes._durations import say_duration
from custodes.authority import Grant, decode_signature, verify_signature
from custodes.clock import Clock
from custodes.constitution import Constitution
from custodes.errors import ApprovalError, Denial, InputError, NotFoundError, PolicyDenied
from custodes.log import Appended, Entry, format_time, parse_time
from custodes.periodic import Periodic
from custodes.store import writer
from custodes.usage import _entries as E
from custodes.usage._breaches import Breach, GrantHeld, evaluate_breaches
from custodes.usage._chains import resolve_chain
from custodes.usage._counting import count_entry
from custodes.usage._delegations import MAX_DELEGATION, delegation_message, delegation_refusal
from custodes.usage._entries import OnBehalfOf
from custodes.usage._figures import TierFigures, tier_figures
from custodes.usage._key_rates import KeyRates, key_use
from custodes.usage._ledger import Ledger, WindowView
from custodes.usage._overrides import check_override, override_message
from custodes.usage._policy import FIGURE_WINDOWS, UsagePolicy, UsageRule
from custodes.usage._review_book import ReviewBook, ReviewState, StoredReview
from custodes.usage._reviews import Refused
from custodes.usage._tables import usage_alarms, usage_delegations, usage_overrides

__all__ = [
    "CoalitionSource",
    "ConstitutionSource",
    "Delegation",
    "GrantSource",
    "Override",
    "StoredAlarm",
    "UsageLog",
    "UsageTracker",
]

if TYPE_CHECKING:  # the solver is imported by whoever builds the analysis, not by the tracker
    from custodes.coalition import Analysis

_log = logging.getLogger(__name__)


class UsageLog(Protocol):
    """The log as the tracker uses it (:class:`custodes.log.TransparencyLog` is one)."""

    def size(self) -> int:
        """How many entries the log holds (the next entry's index)."""
        ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """The entries with indexes in ``[start, end)``, as ``(index, bytes)``, in order."""
        ...

    def append(self, entry: Entry, *, timeout: float | None = 30.0) -> Appended:
        """Append one entry and wait, at most ``timeout`` seconds, until it is durable.

        Raises:
            InputError: the entry is too large for a tlog-tiles entry bundle (64 KiB).
            LogWriteError: it could not be made durable; nothing was acknowledged.
        """
        ...


class ConstitutionSource(Protocol):
    """Where the constitution in force is read (:class:`custodes.authority.Authority`)."""

    @property
    def constitution(self) -> Constitution:
        """The constitution in force now (read each time: an amendment may have changed it)."""
        ...


class CoalitionSource(Protocol):
    """The coalition analysis of a constitution (:class:`custodes.coalition.CoalitionService`)."""

    def analysis(self, constitution: Constitution) -> Analysis:
        """Every coalition measure for every goal of ``constitution``.

        Raises:
            CoalitionCheckError: the solver's answer failed the reference evaluator's re-check.
        """
        ...


class GrantSource(Protocol):
    """The active grants (:class:`custodes.authority.Authority`)."""

    def active_grants(
        self,
        *,
        principals: Iterable[str] | None = None,
        break_glass: bool | None = None,
        limit: int = 100,
    ) -> list[Grant]:
        """The ``limit`` active grants that expire soonest (standing grants last).

        Args:
            principals: only the grants of these principals (None: everyone's).
            break_glass: only break-glass grants (True), only ordinary ones (False), or both.
            limit: at most this many.
        """
        ...


@dataclass(frozen=True)
class StoredAlarm:
    """One breach as recorded: raised once when it began, ended when the rule held again."""

    id: str
    rule: str
    kind: str
    subject: str
    capability: str | None
    value: float
    limit: float
    message: str
    raised_at: datetime
    log_index: int | None
    ended_at: datetime | None


@dataclass(frozen=True)
class Delegation:
    """A director's signed word that they direct ``workload`` until ``until``."""

    workload: str
    director: str
    until: datetime
    log_index: int


@dataclass(frozen=True)
class Override:
    """An overseer's approval of more use by ``subject`` beyond ``rule`` until ``until``."""

    rule: str
    subject: str
    approver: str
    until: datetime
    reason: str
    log_index: int


def _key_horizon(policy: UsagePolicy) -> float:
    """How far back keys' calls must be kept for the policy's unusual-key-rate rules (0:
    no such rule, keys are not watched)."""
    return max(
        (
            (r.window or timedelta(0)).total_seconds()
            + (r.baseline or timedelta(0)).total_seconds()
            for r in policy.rules
            if r.kind == "unusual-key-rate"
        ),
        default=0.0,
    )


def _overdue(state: ReviewState) -> Breach:
    """The breach an overdue review clock amounts to: the days it is late, against its
    period in days, and what renewing the restriction needs."""
    late = (state.at - state.due).total_seconds() / 86_400
    return Breach(
        state.clock,
        state.clock.capability,
        late,
        state.clock.every.total_seconds() / 86_400,
        f"the review of {state.clock.capability}'s restriction was due at "
        f"{format_time(state.due)}: keeping it restricted to "
        f"{', '.join(state.members) or 'nobody'} needs a fresh approval ({state.clock.says()})",
    )


_DELEGATION_MARK = b'"type":"usage.delegation/v1"'  # canonical JSON, as count_entry's mark
_MAX_GRANTS = 1_000_000  # every active grant, for max-restricted-grants


class UsageTracker:
    """Concentration of use, kept current per call.

    Args:
        engine: the database holding ``usage_alarms`` and ``usage_overrides``.
        log: the log the gateway's calls are read from and alarms are appended to.
        constitution: the source of the constitution in force (chains, rules).
        clock: the time source (windows end at its ``now``).
        grants: the active grants, for ``max-restricted-grants`` rules (none: never breached).
        coalitions: the coalition analysis, for who *could* open each tier beside who did use
            it (none: not shown).
        page: entries read from the log per query while catching up.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        log: UsageLog,
        constitution: ConstitutionSource,
        clock: Clock,
        grants: GrantSource | None = None,
        coalitions: CoalitionSource | None = None,
        page: int = 10_000,
    ) -> None:
        self.engine = engine
        self.log = log
        self.source = constitution
        self.clock = clock
        self.grants = grants
        self.coalitions = coalitions
        self.page = page
        self._lock = threading.RLock()
        self._alarm_lock = threading.Lock()
        self._digest = ""
        self._policy = UsagePolicy()
        self._ledger = Ledger(self._policy.spans())
        self._keys = KeyRates()  # each API key's calls, for unusual-key-rate rules
        self._position = 0  # every entry below it is counted (or does not count)
        self._ahead: set[int] = set()  # entries at or above it counted already (observe)
        self._overrides: dict[tuple[str, str], datetime] = {}
        self._delegations: dict[tuple[str, str], datetime] = {}  # (workload, director) -> until
        self._watcher: Periodic | None = None
        self._ready = threading.Event()  # set once the log has been read to its size at start
        self.reviews = ReviewBook(engine=engine, log=log, clock=clock)
        self._load_overrides()
        self._load_delegations()

    # --- the constitution in force ----------------------------------------------------------

    @property
    def policy(self) -> UsagePolicy:
        """The usage rules of the constitution in force."""
        return self._current()[1]

    def _current(self) -> tuple[Constitution, UsagePolicy]:
        """The constitution in force and its usage rules, read again when its digest changes
        (checked twice, the second time under the lock, so one amendment is applied once)."""
        c = self.source.constitution
        if c.digest != self._digest:
            with self._lock:
                if c.digest != self._digest:
                    policy = UsagePolicy.from_constitution(c)
                    horizon = _key_horizon(policy)
                    if policy.spans() != set(self._ledger.spans) or horizon != self._keys.horizon:
                        # A new window length: recount from the log (rare: an amendment).
                        self._ledger = Ledger(policy.spans())
                        self._keys = KeyRates(horizon)
                        self._position, self._ahead = 0, set()
                    self._policy, self._digest = policy, c.digest
        return c, self._policy

    def _resolve(self, principal: str) -> tuple[str, str]:
        """A principal's person and organisation; a principal the constitution in force does
        not name (one since removed) counts as itself, of organisation ``unknown``."""
        p = self.source.constitution.principals_by_id.get(principal)
        return (p.person_id, p.organisation) if p is not None else (principal, "unknown")

    # --- the gateway's two calls ------------------------------------------------------------

    def admit(self, principal: str, capability: str, directors: str | None) -> OnBehalfOf:
        """Whom a gateway call is for, and whether a gating rule lets it through.

        Raises:
            PolicyDenied: the chain of direction is not one the constitution allows (unknown
                principal or director, an ambiguous chain with no director named), or the
                person (organisation) at its end is above a gating rule's share with no
                overseer's override in force.
        """
        c, policy = self._current()
        chain = resolve_chain(c, principal, directors, self._delegated)
        gating = policy.gating(capability)
        if gating:
            if not self._ready.is_set():
                # Fail closed: a gate that has not read the log's history would let anyone
                # through, however concentrated their use already is.
                raise PolicyDenied(
                    f"the use of {capability} is still being counted from the log after a "
                    "start; try again in a moment",
                    reasons=[Denial("usage", "the usage figures rebuilt from the log")],
                )
            now = self.clock.now()
            for rule in gating:
                self._gate(rule, chain.person, chain.organisation, now)
        return OnBehalfOf(
            chain=list(chain.principals), person=chain.person, organisation=chain.organisation
        )

    def _delegated(self, workload: str, director: str) -> bool:
        """Whether ``director`` holds a delegation of ``workload`` that has not expired."""
        until = self._delegations.get((workload, director))
        return until is not None and self.clock.now() < until

    def _gate(self, rule: UsageRule, person: str, organisation: str, now: datetime) -> None:
        """Let a call through ``rule`` unless its person (or organisation) holds more than the
        rule's share of the tier's use in the window. A tier with fewer than ``min_calls``
        calls in the window is never gated (a share of a handful of calls says nothing), nor
        is a subject an overseer's override covers until it expires.

        Raises:
            PolicyDenied: over the share, with no override in force.
        """
        assert rule.capability is not None and rule.share is not None
        persons = rule.kind == "max-person-share"
        subject = person if persons else organisation
        mine, total = self._ledger.share(
            rule.capability,
            rule.span,
            now.timestamp(),
            person=subject if persons else None,
            organisation=None if persons else subject,
            tokens=rule.measure == "tokens",
        )
        # A product, not a quotient: exact at the limit, and an empty window divides nothing.
        if total <= 0 or mine <= rule.share * total:
            return
        # Read only once the subject is over the share: the second ledger query is the rare path.
        if (
            rule.min_calls
            and self._ledger.share(
                rule.capability, rule.span, now.timestamp(), person="", tokens=False
            )[1]
            < rule.min_calls
        ):
            return
        until = self._overrides.get((rule.id, subject))
        if until is not None and now < until:
            return
        raise PolicyDenied(
            f"{'person' if persons else 'organisation'} {subject} holds {mine / total:.1%} of "
            f"{rule.capability} {rule.measure} in the last {say_duration(rule.span)}, above the "
            f"{rule.share:.0%} rule {rule.id!r} allows: more use needs an overseer's approval",
            reasons=[
                Denial(
                    rule.id,
                    f"an overseer's override for {subject} (POST /usage/overrides; docs/usage.md)",
                )
            ],
        )

    def observe(self, index: int, entry: bytes) -> None:
        """Count a gateway entry durable at ``index`` (at most once, whoever reports it)."""
        with self._lock:
            # The gateway reports its entry once durable, and catch_up reads the same entry
            # from the log: either may come first, so each checks the other's mark.
            if index < self._position or index in self._ahead:
                return
            counted = count_entry(index, entry, self._resolve)
            self._ahead.add(index)
            if counted is not None:
                self._ledger.add(counted)
            self._count_key(entry)

    def catch_up(self) -> int:
        """Count every log entry not counted yet; return the log size reached."""
        self._current()
        size = self.log.size()
        while True:
            with self._lock:
                start = self._position
            if start >= size:
                # Gates open only now: the figures hold every call the log had at start.
                self._ready.set()
                return size
            end = min(size, start + self.page)
            page = self.log.entries(start, end)
            with self._lock:
                if self._position != start:
                    continue  # another reader moved on meanwhile
                for index, data in page:
                    self.reviews.project(index, data)
                    self._project_delegation(index, data)
                    if index in self._ahead:
                        continue
                    counted = count_entry(index, data, self._resolve)
                    if counted is not None:
                        self._ledger.add(counted)
                    self._count_key(data)
                self._position = end
                # Marks below the position are implied by it: keep the set to the few ahead.
                self._ahead = {i for i in self._ahead if i >= end}

    def _count_key(self, data: bytes) -> None:
        """Count the API key use ``data`` records, while a rule watches keys' rates."""
        # No key-rate rule, no per-key memory: keys are only tracked while a rule watches them.
        if self._keys.horizon > 0:
            use = key_use(data)
            if use is not None:
                self._keys.add(use)

    # --- figures ----------------------------------------------------------------------------

    def figures(
        self, *, capability: str | None = None, window: str | None = None
    ) -> list[TierFigures]:
        """Every tier's (or one tier's) figures in every figure window (or one).

        A tier nobody used in a window has figures with ``calls == 0`` ("no use").

        Raises:
            NotFoundError: no such capability in the constitution in force.
            InputError: no such window.
        """
        c, policy = self._current()
        self.catch_up()
        tiers = [t.id for t in c.capabilities]
        if capability is not None:
            if capability not in tiers:
                raise NotFoundError(
                    f"no capability {capability!r}",
                    where="capability",
                    expected="one of " + ", ".join(tiers),
                )
            tiers = [capability]
        if window is not None and window not in FIGURE_WINDOWS:
            raise InputError(
                f"no window {window!r}", where="window", expected=", ".join(FIGURE_WINDOWS)
            )
        windows = [window] if window is not None else list(FIGURE_WINDOWS)
        now = self.clock.now().timestamp()
        return [
            tier_figures(
                self._ledger.view(t, FIGURE_WINDOWS[w].total_seconds(), now),
                w,
                coalition_share=policy.coalition_share,
            )
            for t in tiers
            for w in windows
        ]

    def could_open(self) -> dict[str, tuple[str, ...] | None]:
        """Per tier, the fewest persons who together could open it (the coalition analysis's
        ``use:<tier>`` goal), to set beside the coalition of use (who did use it): ``()`` when
        nobody can, ``None`` when no analysis is wired or the tier is not analysed.

        Raises:
            CoalitionCheckError: the solver's answer failed the reference evaluator's re-check.
        """
        c = self._current()[0]
        tiers = [t.id for t in c.capabilities]
        if self.coalitions is None:
            return dict.fromkeys(tiers)
        analysis = self.coalitions.analysis(c)
        out: dict[str, tuple[str, ...] | None] = {}
        for tier in tiers:
            try:
                report = analysis.report(f"use:{tier}")
            except KeyError:
                out[tier] = None
                continue
            out[tier] = analysis.ids(report.people.coalition) if report.reachable else ()
        return out

    def tokens_by_person(self, capability: str, window: str) -> dict[str, int]:
        """The tokens of each person who used ``capability`` in the figure window ``window``."""
        span = FIGURE_WINDOWS[window].total_seconds()
        return self._ledger.view(capability, span, self.clock.now().timestamp()).person_tokens

    # --- alarms -----------------------------------------------------------------------------

    def breaches(self) -> list[Breach]:
        """Every rule breached now (computed, not recorded)."""
        c, policy = self._current()
        self.catch_up()
        now = self.clock.now().timestamp()
        windows: dict[tuple[str, float], WindowView] = {}
        for rule in policy.rules:
            # An unusual-key-rate rule counts keys (KeyRates), not the tier's ledger window.
            if (
                rule.capability is not None
                and rule.window is not None
                and rule.kind != "unusual-key-rate"
            ):
                key = (rule.capability, rule.span)
                if key not in windows:
                    windows[key] = self._ledger.view(rule.capability, rule.span, now)
        held: list[GrantHeld] = []
        if self.grants is not None and any(r.kind == "max-restricted-grants" for r in policy.rules):
            by_id = c.principals_by_id
            for g in self.grants.active_grants(limit=_MAX_GRANTS):
                p = by_id.get(g.principal)
                held.append(GrantHeld(p.person_id if p else g.principal, g.capability))
        out = evaluate_breaches(policy, windows, held)
        out += self._keys.breaches(policy.rules, now)
        out += [_overdue(s) for s in self.reviews.states(c) if s.overdue]
        return out

    def raise_alarms(self) -> list[StoredAlarm]:
        """Record each breach that began since the last round as one alarm in the log, and
        each that ended; return the alarms raised now.

        An alarm is claimed in the database before its entry is appended (one open breach
        per rule and subject, across replicas), so a breach is never raised twice; a claim
        whose entry could not be appended is appended at the next round, so none is dropped.

        Raises:
            LogWriteError: an entry could not be appended (retried at the next round).
        """
        with self._alarm_lock:
            now = self.clock.now()
            current = {(b.rule.id, b.subject): b for b in self.breaches()}
            stored = {(a.rule, a.subject): a for a in self.alarms(open_only=True)}
            for key, b in current.items():
                if key in stored:
                    continue
                row = {
                    "id": secrets.token_hex(12),
                    "rule": b.rule.id,
                    "kind": b.rule.kind,
                    "subject": b.subject,
                    "capability": b.rule.capability,
                    "value": b.value,
                    "limit": b.limit,
                    "message": b.message,
                    "raised_at": now,
                    "open_slot": "open",
                }
                try:
                    with writer(self.engine).begin() as conn:
                        conn.execute(insert(usage_alarms).values(**row))
                except IntegrityError:
                    continue  # another replica claimed this breach
            raised = []
            for a in self.alarms(open_only=True):
                if a.log_index is None:
                    raised.append(self._append_alarm(a))
                elif (a.rule, a.subject) not in current:
                    self._end_alarm(a, now)
        return raised

    def _append_alarm(self, a: StoredAlarm) -> StoredAlarm:
        """Log a breach claimed in the database (its row first: one replica claims it), then
        note the entry's index on the row; a claimed row without an index is logged by the
        next round, so a crash in between loses no alarm.

        Raises:
            LogWriteError: it could not be logged (the next round tries again).
        """
        body = E.AlarmBody(
            alarm_id=a.id,
            rule=a.rule,
            kind=a.kind,
            subject=a.subject,
            capability=a.capability,
            value=a.value,
            limit=a.limit,
            message=a.message,
        )
        appended = self.log.append(
            Entry.create(E.ALARM, time=self.clock.now(), principal="custodes", body=body)
        )
        with writer(self.engine).begin() as conn:
            conn.execute(
                update(usage_alarms)
                .where(usage_alarms.c.id == a.id)
                .values(log_index=appended.index)
            )
        _log.warning("usage alarm %s: %s", a.id, a.message)
        return StoredAlarm(**{**a.__dict__, "log_index": appended.index})

    def _end_alarm(self, a: StoredAlarm, now: datetime) -> None:
        """Log that a breach ended (the rule holds again), then close its row, freeing its
        open slot so the same rule and subject can raise a new alarm later.

        Raises:
            LogWriteError: it could not be logged (the row stays open; the next round retries).
        """
        body = E.AlarmEndedBody(alarm_id=a.id, rule=a.rule, subject=a.subject, value=a.value)
        appended = self.log.append(
            Entry.create(E.ALARM_ENDED, time=now, principal="custodes", body=body)
        )
        with writer(self.engine).begin() as conn:
            conn.execute(
                update(usage_alarms)
                .where(usage_alarms.c.id == a.id)
                .values(open_slot=None, ended_at=now, ended_log_index=appended.index)
            )

    def alarms(self, *, open_only: bool = False) -> list[StoredAlarm]:
        """The recorded alarms, oldest first (only breaches still open, if ``open_only``)."""
        q = select(usage_alarms).order_by(usage_alarms.c.raised_at, usage_alarms.c.id)
        if open_only:
            q = q.where(usage_alarms.c.open_slot.is_not(None))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            StoredAlarm(
                id=r.id,
                rule=r.rule,
                kind=r.kind,
                subject=r.subject,
                capability=r.capability,
                value=float(r.value),
                limit=float(r.limit),
                message=r.message,
                raised_at=r.raised_at,
                log_index=None if r.log_index is None else int(r.log_index),
                ended_at=r.ended_at,
            )
            for r in rows
        ]

    def watch(self, interval: float) -> None:
        """Read the log's history, then raise alarms every ``interval`` seconds in a
        background thread, so breaches are recorded even when nobody asks (``0``: only read
        the history); :meth:`close` stops it."""
        if self._watcher is not None:
            return

        def tick() -> None:
            if interval > 0:
                self.raise_alarms()  # reads the log up to its size first
                self._load_overrides()  # approved through other replicas
            elif not self._ready.is_set():
                self.catch_up()  # the gates stay closed until a read of the history succeeds

        # With no alarm interval, a second a round until the history has been read.
        self._watcher = Periodic(
            "custodes-usage-alarms", interval if interval > 0 else 1.0, tick, first=self.catch_up
        )
        self._watcher.start()

    def close(self) -> None:
        """Stop the alarm watcher, if any (waiting for a round in progress)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()

    # --- review clocks ----------------------------------------------------------------------

    def review_states(self) -> list[ReviewState]:
        """Every review clock of the constitution in force and where it stands."""
        return self.reviews.states(self._current()[0])

    def renew_review(
        self,
        *,
        capability: str,
        due: str,
        constitution: str,
        refused: list[Refused],
        reasons: str,
        approvals: list[E.ReviewApproval],
    ) -> StoredReview:
        """Keep ``capability`` restricted for another period, on its clock's quorum (see
        :meth:`ReviewBook.renew`, which says what it raises)."""
        return self.reviews.renew(
            self._current()[0],
            capability=capability,
            due=due,
            constitution=constitution,
            refused=refused,
            reasons=reasons,
            approvals=approvals,
        )

    # --- overrides --------------------------------------------------------------------------

    def approve_override(
        self,
        *,
        rule: str,
        subject: str,
        approver: str,
        until: str,
        reason: str,
        signature: str,
    ) -> Override:
        """Let ``subject`` use beyond the gating rule ``rule`` until ``until``, on an
        overseer's signed approval (see :func:`custodes.usage.override_message`).

        Raises:
            NotFoundError: no gating share rule ``rule``.
            InputError: ``until`` is malformed, past, or beyond one rule window; no reason.
            ApprovalError: the approver may not approve it, or the signature does not verify
                under their key.
            LogWriteError: the override could not be logged (it does not count).
        """
        c, policy = self._current()
        found = [r for r in policy.rules if r.id == rule and r.gate]
        if not found:
            raise NotFoundError(
                f"no gating rule {rule!r}",
                where="rule",
                expected="one of " + ", ".join(r.id for r in policy.rules if r.gate)
                if any(r.gate for r in policy.rules)
                else "a rule with gate: true (the constitution has none)",
            )
        r = found[0]
        if not reason.strip():
            raise InputError("an override needs a reason", where="reason", expected="a text")
        ends = parse_time(until, where="until")
        now = self.clock.now()
        assert r.window is not None
        # Bounded by one rule window: an override excuses one window's share; to last longer it
        # is approved (and logged) again.
        if not now < ends <= now + r.window:
            raise InputError(
                "until must be after now and at most one rule window ahead",
                where="until",
                expected=f"between {format_time(now)} and {format_time(now + r.window)}",
                actual=until,
            )
        check_override(c, approver, subject, persons=r.kind == "max-person-share")
        key = c.principals_by_id[approver].public_key
        assert key is not None
        sig = decode_signature(signature)
        # Over the text of ``until`` as sent, not the parsed time: those characters are what
        # the approver signed and what the log records.
        if not verify_signature(key, override_message(rule, subject, until, reason), sig):
            raise ApprovalError(
                f"the signature does not verify under {approver}'s key over the override "
                f"of {rule!r} for {subject!r} until {until}"
            )
        body = E.OverrideBody(
            rule=rule,
            subject=subject,
            approver=approver,
            until=until,
            reason=reason,
            signature=signature,
        )
        appended = self.log.append(
            Entry.create(E.OVERRIDE, time=now, principal=approver, body=body)
        )
        with writer(self.engine).begin() as conn:
            conn.execute(
                insert(usage_overrides).values(
                    id=secrets.token_hex(12),
                    rule=rule,
                    subject=subject,
                    approver=approver,
                    until=ends,
                    reason=reason,
                    signature=signature,
                    approved_at=now,
                    log_index=appended.index,
                )
            )
        # The later end wins: a shorter second override must not cut the first one short.
        with self._lock:
            self._overrides[(rule, subject)] = max(ends, self._overrides.get((rule, subject), ends))
        return Override(rule, subject, approver, ends, reason, appended.index)

    # --- delegations ------------------------------------------------------------------------

    def delegate(self, *, workload: str, director: str, until: str, signature: str) -> Delegation:
        """Record ``director``'s signed word that they direct ``workload`` until ``until``
        (see :func:`custodes.usage.delegation_message`); a step of a chain where several may
        direct the workload counts only a director with one in force.

        Raises:
            InputError: ``until`` is malformed, past, or more than 30 days ahead.
            ApprovalError: the director may not direct the workload, has no key, or the
                signature does not verify under their key.
            LogWriteError: the delegation could not be logged (it does not count).
        """
        c = self._current()[0]
        ends = parse_time(until, where="until")
        now = self.clock.now()
        if not now < ends <= now + MAX_DELEGATION:
            raise InputError(
                "until must be after now and at most 30 days ahead",
                where="until",
                expected=f"between {format_time(now)} and {format_time(now + MAX_DELEGATION)}",
                actual=until,
            )
        refusal = delegation_refusal(c, workload, director)
        if refusal is not None:
            raise ApprovalError(f"delegation refused: {refusal}")
        key = c.principals_by_id[director].public_key
        assert key is not None
        if not verify_signature(
            key, delegation_message(workload, director, until), decode_signature(signature)
        ):
            raise ApprovalError(
                f"the signature does not verify under {director}'s key over the delegation "
                f"of {workload} until {until}"
            )
        body = E.DelegationBody(
            workload=workload, director=director, until=until, signature=signature
        )
        appended = self.log.append(
            Entry.create(E.DELEGATION, time=now, principal=director, body=body)
        )
        self._record_delegation(appended.index, body, ends, now)
        with self._lock:
            key_ = (workload, director)
            self._delegations[key_] = max(ends, self._delegations.get(key_, ends))
        return Delegation(workload, director, ends, appended.index)

    def _record_delegation(
        self, index: int, body: E.DelegationBody, until: datetime, signed_at: datetime
    ) -> None:
        """Store the delegation logged at ``index`` (once: the log index is the key)."""
        try:
            with writer(self.engine).begin() as conn:
                conn.execute(
                    insert(usage_delegations).values(
                        log_index=index,
                        workload=body.workload,
                        director=body.director,
                        until=until,
                        signed_at=signed_at,
                        signature=body.signature,
                    )
                )
        except IntegrityError:
            pass  # recorded already, from the log (_project_delegation): the same entry

    def _project_delegation(self, index: int, data: bytes) -> None:
        """Record the delegation logged at ``index`` if its row is missing (the process that
        logged it stopped before writing it; as :meth:`ReviewBook.project`). Only custodes
        writes ``usage.delegation/v1`` entries, after checking the signature."""
        if _DELEGATION_MARK not in data:
            return
        with self.engine.connect() as conn:
            if conn.execute(
                select(usage_delegations.c.log_index).where(usage_delegations.c.log_index == index)
            ).first():
                return
        try:
            entry = Entry.from_json(data)
            if entry.type != E.DELEGATION:
                return
            body = E.DelegationBody.model_validate(entry.body)
            until = parse_time(body.until, where="until")
        except (InputError, ValueError):
            _log.exception("log entry %d is not a readable usage delegation", index)
            return
        self._record_delegation(index, body, until, entry.time)
        with self._lock:
            key = (body.workload, body.director)
            self._delegations[key] = max(until, self._delegations.get(key, until))

    def delegations(self) -> list[Delegation]:
        """The delegations in force, soonest to end first."""
        now = self.clock.now()
        q = (
            select(usage_delegations)
            .where(usage_delegations.c.until > now)
            .order_by(usage_delegations.c.until, usage_delegations.c.log_index)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [Delegation(r.workload, r.director, r.until, int(r.log_index)) for r in rows]

    def _load_delegations(self) -> None:
        """Reload the delegations in force: per (workload, director), the latest end."""
        latest: dict[tuple[str, str], datetime] = {}
        for d in self.delegations():
            key = (d.workload, d.director)
            latest[key] = max(d.until, latest.get(key, d.until))
        with self._lock:
            self._delegations = latest

    def _load_overrides(self) -> None:
        """Reload the overseers' overrides (also those approved through other replicas): per
        (rule, subject), the latest end."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(usage_overrides.c.rule, usage_overrides.c.subject, usage_overrides.c.until)
            ).all()
        latest: dict[tuple[str, str], datetime] = {}
        for rule, subject, until in rows:
            when = until  # UtcDateTime: aware UTC
            key = (rule, subject)
            latest[key] = max(when, latest.get(key, when))
        with self._lock:
            self._overrides = latest
