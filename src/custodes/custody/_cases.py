"""The case records of the custody registry: who may see and act on a finding, and the
refusals, each logged before it is raised.

:class:`CaseRecords` holds what every custody action needs (the database, the log, the clock,
the constitution in force, one lock) and the checks they share: the principal is named by the
constitution, the finding is visible to them, they are a party the action needs. The actions
themselves are its subclasses (``_events.py``, ``_escrow_reads.py``), put together by
:class:`~custodes.custody.CustodyRegistry`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NoReturn

from sqlalchemy import Engine, insert, select

from custodes.clock import Clock, SystemClock
from custodes.constitution import Constitution
from custodes.custody import _entries as E
from custodes.custody._access import CaseAccess, Party, party_names
from custodes.custody._alarms import AlarmWindows
from custodes.custody._clock import Schedule, compute_schedule
from custodes.custody._escrow import KeyEncryptionKey
from custodes.custody._model import Finding
from custodes.custody._policy import DisclosurePolicy, resolve_policy
from custodes.custody._protocols import Authorizer, DetectionSource
from custodes.custody._rows import clock_events, finding_from_rows
from custodes.custody._tables import custody_events, custody_findings
from custodes.errors import Denial, Error, InputError, NotFoundError, PolicyDenied
from custodes.log import Entry, TransparencyLog
from custodes.periodic import Periodic
from custodes.store import writer

__all__ = ["EXPLOIT_DETAILS", "MAX_DETAILS_BYTES", "CaseRecords", "ConstitutionSource"]


_log = logging.getLogger(__name__)

EXPLOIT_DETAILS = "exploit-details"
# The details are sealed in memory in one piece (AES-GCM over the whole): the bound keeps one
# registration from taking the server's memory.
MAX_DETAILS_BYTES = 64 << 20
_READ = "details-read"
# A refusal logs the finding id only if it has this shape: a caller must not be able to write
# arbitrary text into the public log by asking for a finding that does not exist.
_FINDING_ID = re.compile(r"^CUSTODES-[0-9]{4}-[0-9]{4,}$")
# The one reason a caller is given, and the log records, for a finding that is hidden from them
# and for one that does not exist: neither the answer nor the log tells them apart.
_NOT_VISIBLE = "no finding with this id is visible to this principal"

ConstitutionSource = Constitution | Callable[[], Constitution | None]


class CaseRecords:
    """The state and the shared checks of the custody registry (see
    :class:`~custodes.custody.CustodyRegistry` for the arguments)."""

    def __init__(
        self,
        engine: Engine,
        log: TransparencyLog,
        kek: KeyEncryptionKey | Callable[[], KeyEncryptionKey],
        *,
        authority: Authorizer | None = None,
        clock: Clock | None = None,
        policies: Mapping[str, DisclosurePolicy] | None = None,
        windows: AlarmWindows | None = None,
        detections: DetectionSource | None = None,
        constitution: ConstitutionSource | None = None,
    ) -> None:
        self.engine = engine
        self.log = log
        self._kek = kek
        self.authority = authority
        self.clock = clock or SystemClock()
        self.policies = dict(policies or {})
        self.windows = windows or AlarmWindows()
        self.detections = detections
        self._constitution = constitution
        # Serialises check-then-append-then-write per process, so two actions can never both
        # be validated against the same state.
        self._lock = threading.RLock()
        self._watcher: Periodic | None = None

    @property
    def kek(self) -> KeyEncryptionKey:
        """The key-encryption key, loaded at first use (a server without escrow work starts
        without one; the first escrow action then says the key is missing)."""
        if not isinstance(self._kek, KeyEncryptionKey):
            self._kek = self._kek()
        return self._kek

    # --- who may ---------------------------------------------------------------------------

    def access(self) -> CaseAccess:
        """The custody rules of the constitution in force.

        Raises:
            PolicyDenied: no constitution is loaded (fail closed: nobody may act).
        """
        source = self._constitution
        try:
            c = source() if callable(source) else source
        except Error:  # e.g. the authority has none loaded
            c = None
        if c is None:
            raise PolicyDenied(
                "no constitution is loaded: every custody action is refused",
                reasons=[Denial("constitution", "a loaded constitution")],
            )
        return CaseAccess(c)

    def _deny(
        self,
        action: str,
        principal: str,
        finding_id: str | None,
        exc: Error,
        *,
        reason: str | None = None,
        known: bool | None = None,
    ) -> NoReturn:
        """Log the refusal of ``action``, then raise ``exc``.

        Refusing does not depend on the log: if the refusal cannot be logged, the action is
        refused all the same (fail closed) and the failure is reported on the server's log.
        """
        if known is None:
            try:
                known = principal in self.access().constitution.principals_by_id
            except PolicyDenied:
                known = False
        # Truncated fields: the refusal of a hostile request must not make a huge log entry.
        body = E.DeniedBody(
            action=action,
            finding_id=finding_id if finding_id and _FINDING_ID.match(finding_id) else None,
            principal=principal[:256] or "(none)",
            known=known,
            reason=(reason or exc.message)[:1000],
        )
        # An invented name is recorded in the body, never as the entry's actor.
        actor = principal if known else "custodes"
        try:
            self.log.append(
                Entry.create(E.DENIED, time=self.clock.now(), principal=actor, body=body)
            )
        except Error:
            _log.exception("could not log the refusal of %s by %r", action, principal)
        raise exc

    def _known(self, action: str, principal: str, finding_id: str | None) -> CaseAccess:
        """The rules, once ``principal`` is known to be named by the constitution.

        Raises:
            PolicyDenied: no constitution, or it does not name ``principal`` (logged).
        """
        try:
            access = self.access()
            access.principal(principal)
        except PolicyDenied as exc:
            self._deny(action, principal, finding_id, exc, known=False)
        return access

    def _case(self, action: str, finding_id: str, principal: str) -> tuple[CaseAccess, Finding]:
        """The finding, if ``principal`` may see its case record.

        Raises:
            PolicyDenied: unknown principal; or the record is embargoed and the constitution
                shows the existence of findings (logged).
            NotFoundError: no such finding, or one hidden from ``principal`` (the same answer
                for both; logged).
            InputError: ``finding_id`` is not a finding id (not logged: no finding named).
        """
        access = self._known(action, principal, finding_id)
        if not isinstance(finding_id, str) or not _FINDING_ID.match(finding_id):
            raise InputError(
                "not a finding id",
                where="finding_id",
                expected="an id like CUSTODES-2026-0001",
                actual=repr(finding_id)[:100],
            )
        try:
            finding: Finding | None = self.get(finding_id)
        except NotFoundError:
            finding = None
        if finding is not None and access.may_read(principal, finding):
            return access, finding
        if finding is not None and access.show_existence:
            self._deny(
                action,
                principal,
                finding_id,
                PolicyDenied(
                    f"{finding_id} is embargoed: its case record is visible only to the "
                    "finder's organisation, the overseers, the coordinators and the notified "
                    "vendor",
                    reasons=[Denial("custody", "a party to the case")],
                ),
                known=True,
            )
        self._deny(
            action,
            principal,
            finding_id,
            NotFoundError(
                f"no finding {finding_id!r}",
                where="finding_id",
                expected="the id of a registered finding whose case record you may see",
                actual=repr(finding_id),
            ),
            reason=_NOT_VISIBLE,
            known=True,
        )

    def _require(
        self,
        action: str,
        access: CaseAccess,
        principal: str,
        finding: Finding,
        parties: frozenset[Party],
        what: str,
    ) -> None:
        """Let ``principal`` do ``what`` to ``finding`` if they are one of ``parties`` to its
        case (the finder's organisation, a coordinator, the notified vendor...).

        Raises:
            PolicyDenied: they are none of them; the refusal names what they are (logged).
        """
        have = access.parties(principal, finding)
        if have & parties:
            return
        self._deny(
            action,
            principal,
            finding.id,
            PolicyDenied(
                f"{principal} may not {what} {finding.id}: that needs one of "
                f"{party_names(parties)}; {principal} is "
                + (party_names(have) if have else "not a party to the case"),
                reasons=[Denial("custody", "one of: " + party_names(parties))],
            ),
            known=True,
        )

    # --- reading state ----------------------------------------------------------------------

    def get(self, finding_id: str) -> Finding:
        """A finding with its events, for the registry's own components (monitors, alarms).

        It checks nobody's right to see it: an action on behalf of a principal uses
        :meth:`view` or :meth:`visible`.

        Raises:
            NotFoundError: no such finding.
        """
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(custody_findings).where(custody_findings.c.id == finding_id))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(
                    f"no finding {finding_id!r}",
                    where="finding_id",
                    expected="the id of a registered finding",
                    actual=repr(finding_id),
                )
            events = (
                conn.execute(
                    select(custody_events)
                    .where(custody_events.c.finding_id == finding_id)
                    .order_by(custody_events.c.id)
                )
                .mappings()
                .all()
            )
        return finding_from_rows(row, events)

    def policy_of(self, finding: Finding) -> DisclosurePolicy:
        """The disclosure policy the finding was registered under (a preset by name, or one
        of the deployment's policies)."""
        return resolve_policy(finding.policy, self.policies)

    def schedule(self, finding: Finding | str) -> Schedule | None:
        """The finding's disclosure clock from its events so far (None before vendor notice)."""
        f = self.get(finding) if isinstance(finding, str) else finding
        return compute_schedule(self.policy_of(f), clock_events(f))

    def _append_event(
        self, finding_id: str, kind: str, when: datetime, principal: str, note: str, entry: Entry
    ) -> int:
        appended = self.log.append(entry)
        with writer(self.engine).begin() as conn:
            conn.execute(
                insert(custody_events).values(
                    finding_id=finding_id,
                    kind=kind,
                    at=when,
                    principal=principal,
                    note=note,
                    log_index=appended.index,
                )
            )
        return appended.index
