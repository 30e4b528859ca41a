"""Case events and Vultron transitions: vendor notice, acknowledgement, the case flags, grace
and disclosure (which start and move the disclosure clock), and the report- and
embargo-management state machines. Each is logged, then stored (invariant 1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, update

from custodes.custody import _entries as E
from custodes.custody._cases import CaseRecords
from custodes.custody._lifecycle import CASE_FLAGS, check_em, check_flag, check_rm
from custodes.custody._model import EVENT_FLAGS, EVENT_KINDS, Finding
from custodes.custody._tables import custody_events, custody_findings
from custodes.errors import InputError
from custodes.log import Entry, format_time
from custodes.store import writer

__all__ = ["CaseEvents"]


class CaseEvents(CaseRecords):
    """Recording case events and moving a finding's Vultron states."""

    def record_event(
        self,
        finding_id: str,
        kind: str,
        *,
        principal: str,
        at: datetime | None = None,
        note: str = "",
    ) -> Finding:
        """Record a case event (vendor notice, acknowledgement, a case flag, grace, disclosure).

        ``at`` may be earlier than now (a fix released yesterday), never in the future. Who may
        record which event is the constitution's (see :class:`CaseAccess`): a vendor, once
        notified, records its acknowledgement and fix; the finder's organisation or a
        coordinator notifies, grants grace and discloses.

        Raises:
            PolicyDenied: unknown principal, or not a party that may record it (logged).
            NotFoundError: no finding visible to ``principal`` (logged).
            InputError: unknown event, a time in the future or before registration.
            TransitionError: a case flag already set or set out of order.
            LogWriteError: not logged, so not recorded.
        """
        # The action is what a refusal logs: notifying the vendor (day 0 of the disclosure
        # clock) is told apart from the other events.
        action = "notify" if kind == "vendor-notified" else "event"
        # Before anything else: an unknown principal is refused (and logged) whatever it asks.
        self._known(action, principal, finding_id)
        if kind not in EVENT_KINDS:
            raise InputError(
                f"unknown event {kind!r}",
                where="event",
                expected="one of: " + ", ".join(EVENT_KINDS),
                actual=repr(kind),
            )
        now = self.clock.now()
        when = now if at is None else at
        # A naive time could be anyone's local time: the clock's deadlines would move by hours.
        if when.tzinfo is None:
            raise InputError("event time has no timezone", where="at", expected="UTC")
        # A future event would let a party start (or stop) a disclosure clock in advance.
        if when > now:
            raise InputError(
                "event time is in the future",
                where="at",
                expected=f"at or before {format_time(now)}",
                actual=format_time(when),
            )
        # Under the lock from reading the case to storing the event: two events recorded at
        # once must each see the other's flags (a flag is set once, in order).
        with self._lock:
            access, finding = self._case(action, finding_id, principal)
            self._require(
                action,
                access,
                principal,
                finding,
                access.required_for_event(kind),
                f"record {kind} on",
            )
            if when < finding.registered_at:
                raise InputError(
                    "event time is before the finding was registered",
                    where="at",
                    expected=f"at or after {format_time(finding.registered_at)}",
                    actual=format_time(when),
                )
            flag = kind if kind in CASE_FLAGS else EVENT_FLAGS.get(kind)
            if kind in CASE_FLAGS:
                check_flag(kind, finding.flags)
            elif flag is not None and flag not in finding.flags:
                check_flag(flag, finding.flags)
            # "disclosed" may be recorded more than once (the exports date the publication by
            # the first); every other event happens once.
            elif kind != "disclosed" and any(e.kind == kind for e in finding.events):
                raise InputError(
                    f"event {kind} was already recorded for {finding_id}", where="event"
                )
            body = E.EventBody(finding_id=finding_id, event=kind, at=format_time(when), note=note)
            self._append_event(
                finding_id,
                kind,
                when,
                principal,
                note,
                Entry.create(E.EVENT, time=now, principal=principal, body=body),
            )
        return self.get(finding_id)

    def notify_vendor(
        self, finding_id: str, *, principal: str, at: datetime | None = None, note: str = ""
    ) -> Finding:
        """Record that the vendor was notified: day 0 of the disclosure clock."""
        return self.record_event(
            finding_id, "vendor-notified", principal=principal, at=at, note=note
        )

    def transition(
        self, finding_id: str, machine: str, to_state: str, *, principal: str, reason: str = ""
    ) -> Finding:
        """Move the report-management (``rm``) or embargo-management (``em``) state.

        Report management is the coordinators' triage; embargo management is negotiated by the
        finder's organisation, the coordinators and the notified vendor.

        Raises:
            PolicyDenied: unknown principal, or not a party that may move it (logged).
            NotFoundError: no finding visible to ``principal`` (logged).
            InputError: unknown machine or state.
            TransitionError: the Vultron model does not allow it.
            LogWriteError: not logged, so not changed.
        """
        self._known("transition", principal, finding_id)
        if machine not in ("rm", "em"):
            raise InputError(
                f"unknown state machine {machine!r}",
                where="machine",
                expected="rm (report management) or em (embargo management)",
                actual=repr(machine),
            )
        now = self.clock.now()
        with self._lock:
            access, finding = self._case("transition", finding_id, principal)
            self._require(
                "transition",
                access,
                principal,
                finding,
                access.required_for_machine(machine),
                f"move the {machine} state of",
            )
            current = finding.rm_state if machine == "rm" else finding.em_state
            if machine == "rm":
                check_rm(current, to_state)
            else:
                check_em(current, to_state, flags=finding.flags)
            body = E.TransitionBody(
                finding_id=finding_id,
                machine=machine,
                from_state=current,
                to_state=to_state,
                reason=reason,
            )
            # Logged first, stored second (invariant 1): a crash between leaves a logged move
            # the store lacks, never a stored one the log cannot show.
            appended = self.log.append(
                Entry.create(E.TRANSITION, time=now, principal=principal, body=body)
            )
            column = custody_findings.c.rm_state if machine == "rm" else custody_findings.c.em_state
            with writer(self.engine).begin() as conn:
                conn.execute(
                    update(custody_findings)
                    .where(custody_findings.c.id == finding_id)
                    .values({column.name: to_state})
                )
                conn.execute(
                    insert(custody_events).values(
                        finding_id=finding_id,
                        kind=f"{machine}:{to_state}",
                        at=now,
                        principal=principal,
                        note=reason,
                        log_index=appended.index,
                    )
                )
        return self.get(finding_id)
