"""The custody registry: register, escrow, notify, transition, read, reveal, alarm.

Every action follows invariant 1 ("no log, no action"): it is validated, its entry is appended
to the transparency log and made durable, and only then is the registry's state changed or a
secret returned. If the append raises, the action fails and nothing changes.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import Engine, RowMapping, insert, select, update

from custodes.clock import Clock, SystemClock
from custodes.constitution import Constitution
from custodes.custody import _entries as E
from custodes.custody._access import CaseAccess, Party, party_names
from custodes.custody._alarm_book import record_alarms, recorded_alarms
from custodes.custody._alarms import (
    Alarm,
    AlarmWindows,
    FindingSnapshot,
    evaluate_alarms,
)
from custodes.custody._clock import Schedule, compute_schedule
from custodes.custody._commitment import (
    RECORD_FIELDS,
    SALT_BYTES,
    commit_details,
    record_bytes,
)
from custodes.custody._cvss import CvssScore, score_vector
from custodes.custody._errors import EscrowIntegrityError
from custodes.custody._escrow import KeyEncryptionKey, Sealed
from custodes.custody._lifecycle import CASE_FLAGS, check_em, check_flag, check_rm
from custodes.custody._model import (
    EVENT_FLAGS,
    EVENT_KINDS,
    Finding,
    FindingInput,
    Revealed,
)
from custodes.custody._numbers import release_number, reserve_number
from custodes.custody._policy import DisclosurePolicy, resolve_policy
from custodes.custody._protocols import Authorizer, DetectionSource, HeldGrant, Listing
from custodes.custody._rows import (
    RecordedAlarm,
    clock_events,
    finding_from_rows,
    validate_input,
)
from custodes.custody._tables import (
    custody_escrow,
    custody_events,
    custody_findings,
)
from custodes.errors import (
    CustodyError,
    Denial,
    Error,
    InputError,
    NotFoundError,
    PolicyDenied,
)
from custodes.log import Entry, TransparencyLog, format_time
from custodes.periodic import Periodic
from custodes.store import writer

__all__ = ["EXPLOIT_DETAILS", "CustodyRegistry"]

_log = logging.getLogger(__name__)

EXPLOIT_DETAILS = "exploit-details"
MAX_DETAILS_BYTES = 64 << 20
_READ = "details-read"
_FINDING_ID = re.compile(r"^CUSTODES-[0-9]{4}-[0-9]{4,}$")
# The one reason a caller is given, and the log records, for a finding that is hidden from them
# and for one that does not exist: neither the answer nor the log tells them apart.
_NOT_VISIBLE = "no finding with this id is visible to this principal"

ConstitutionSource = Constitution | Callable[[], Constitution | None]


class CustodyRegistry:
    """Findings, escrow, disclosure clocks and alarms over one database and log.

    Args:
        engine: the migrated database.
        log: the transparency log every action is appended to first.
        kek: the deployment's key-encryption key for escrow, or a loader called at first use.
        authority: decides ``exploit-details`` grants; None refuses every read (fail closed).
        constitution: the constitution in force (or a callable giving it); it names who may
            register, notify, transition and read each finding. A callable is asked at each
            action, so an amendment applies at once; if it raises a custodes error or gives
            None, or no constitution is given, every action is refused (fail closed).
        clock: the time source.
        policies: deployment-defined disclosure policies besides the presets.
        windows: alarm windows (from the constitution).
        detections: the monitors' detections: discovery detections for the stockpiling alarm,
            and the detection a finding names. None: no stockpiling alarm, and a finding's
            ``detection_id`` is not checked.
    """

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

    def view(self, finding_id: str, *, principal: str, action: str = "read") -> Finding:
        """The finding, as ``principal`` may see it (its case record, or nothing).

        Raises:
            PolicyDenied: unknown principal, or an embargoed record (logged).
            NotFoundError: no such finding, or one hidden from ``principal`` (logged).
        """
        return self._case(action, finding_id, principal)[1]

    def visible(self, principal: str) -> Listing:
        """Every case record ``principal`` may see, and, if the constitution shows existence,
        the ids of the embargoed findings it may not see.

        Raises:
            PolicyDenied: unknown principal (logged).
        """
        access = self._known("list", principal, None)
        found = self.list()
        readable = tuple(f for f in found if access.may_read(principal, f))
        seen = {f.id for f in readable}
        existing = tuple(f.id for f in found if f.id not in seen) if access.show_existence else ()
        return Listing(readable, existing)

    def alarms_for(self, principal: str) -> builtins.list[RecordedAlarm]:
        """The recorded alarms ``principal`` may see: every alarm for overseers and
        coordinators; for others, the alarms of findings whose case record they may see.

        Raises:
            PolicyDenied: unknown principal (logged).
        """
        access = self._known("alarms", principal, None)
        recorded = self.alarms()
        if access.sees_all_alarms(principal):
            return recorded
        readable = {f.id for f in self.list() if access.may_read(principal, f)}
        return [r for r in recorded if r.alarm.subject in readable]

    # --- registration ---------------------------------------------------------------------

    def register(
        self, data: FindingInput | Mapping[str, Any], details: bytes, *, principal: str
    ) -> Finding:
        """Register a finding and escrow its details.

        ``principal`` registers its own finding, one of its organisation's, or (a
        coordinator) anyone's; the finder must be a principal the constitution names.

        Raises:
            PolicyDenied: unknown principal or finder, or a finder of another organisation
                (logged).
            DuplicateFindingError: a finding with the same fingerprint is registered.
            InputError: invalid fields, CVSS vector or policy, or empty details.
            LogWriteError: the registration could not be logged; nothing was registered.
        """
        access = self._known("register", principal, None)
        spec = data if isinstance(data, FindingInput) else validate_input(data)
        refusal = access.register_refusal(principal, spec.finder)
        if refusal is not None:
            self._deny(
                "register",
                principal,
                None,
                PolicyDenied(
                    refusal,
                    reasons=[
                        Denial("custody", "a finder the constitution names, of your organisation")
                    ],
                ),
                known=True,
            )
        score = score_vector(spec.cvss, where="cvss")
        if spec.detection_id is not None:
            spec = self._from_detection(spec)
        resolve_policy(spec.policy, self.policies)
        if not isinstance(details, bytes | bytearray) or not details:
            raise InputError(
                "finding details are empty",
                where="details",
                expected="the technical details (PoC, crash, analysis) as bytes",
            )
        if len(details) > MAX_DETAILS_BYTES:
            raise InputError(
                "finding details are too large",
                where="details",
                expected=f"at most {MAX_DETAILS_BYTES} bytes",
                actual=f"{len(details)} bytes",
            )
        now = self.clock.now()
        return self._register(spec, score, bytes(details), principal=principal, now=now)

    def _register(
        self, spec: FindingInput, score: CvssScore, details: bytes, *, principal: str, now: datetime
    ) -> Finding:
        with self._lock:  # numbering is shared; the rest runs in parallel
            year, number = now.year, reserve_number(self.engine, now.year, spec.fingerprint)
        finding_id = f"CUSTODES-{year:04d}-{number:04d}"
        try:
            commitment = commit_details(details)
            sealed = self.kek.seal(finding_id, commitment.salt + details)
            record = commit_details(
                record_bytes(
                    {
                        **spec.model_dump(include=set(RECORD_FIELDS)),
                        "cvss_vector": score.vector,
                    }
                )
            )
            # The public log gets commitments, not the embargoed case record (register/v2).
            body = E.RegisterBodyV2(
                finding_id=finding_id,
                policy=spec.policy,
                detection_id=spec.detection_id,
                record_commitment=record.hex,
                commitment=commitment.hex,
                ciphertext_sha256=sealed.ciphertext_sha256,
                details_bytes=len(details),
            )
            appended = self.log.append(
                Entry.create(E.REGISTER_V2, time=now, principal=principal, body=body)
            )
        except BaseException:
            # Nothing was logged under this number: give it (and the fingerprint) back, so ids
            # stay without gaps.
            with self._lock:
                release_number(self.engine, year, number, spec.fingerprint)
            raise
        with writer(self.engine).begin() as conn:
            conn.execute(
                insert(custody_findings).values(
                    id=finding_id,
                    title=spec.title,
                    description=spec.description,
                    vendor=spec.vendor,
                    product=spec.product,
                    versions=list(spec.versions),
                    cwe=spec.cwe,
                    cvss_version=score.version,
                    cvss_vector=score.vector,
                    cvss_score=score.base_score,
                    severity=score.severity,
                    finder=spec.finder,
                    model=spec.model,
                    session=spec.session,
                    evidence=spec.evidence,
                    fingerprint=spec.fingerprint,
                    policy=spec.policy,
                    detection_id=spec.detection_id,
                    references=list(spec.references),
                    purl=spec.purl,
                    record_commitment=record.hex,
                    record_salt=record.salt.hex(),
                    commitment=commitment.hex,
                    rm_state="received",
                    em_state="none",
                    registered_at=now,
                    registered_by=principal,
                    log_index=appended.index,
                )
            )
            conn.execute(
                insert(custody_escrow).values(
                    finding_id=finding_id,
                    kek_id=sealed.kek_id,
                    wrapped_key=sealed.wrapped_key,
                    ciphertext=sealed.ciphertext,
                    ciphertext_sha256=sealed.ciphertext_sha256,
                    details_bytes=len(details),
                )
            )
        # Built from what was just written (no read back): the registration's hot path.
        return Finding(
            id=finding_id,
            title=spec.title,
            description=spec.description,
            vendor=spec.vendor,
            product=spec.product,
            versions=tuple(spec.versions),
            cwe=spec.cwe,
            cvss_version=score.version,
            cvss_vector=score.vector,
            cvss_score=score.base_score,
            severity=score.severity,
            finder=spec.finder,
            model=spec.model,
            session=spec.session,
            evidence=spec.evidence,
            fingerprint=spec.fingerprint,
            policy=spec.policy,
            detection_id=spec.detection_id,
            references=tuple(spec.references),
            commitment=commitment.hex,
            rm_state="received",
            em_state="none",
            flags=(),
            registered_at=now,
            registered_by=principal,
            log_index=appended.index,
            revealed_at=None,
            events=(),
            purl=spec.purl,
            record_commitment=record.hex,
            record_salt=record.salt.hex(),
        )

    def _from_detection(self, spec: FindingInput) -> FindingInput:
        """Check the detection a finding comes from exists; take its fingerprint if none."""
        if self.detections is None or spec.detection_id is None:
            return spec
        try:
            detection = self.detections.get(spec.detection_id)
        except NotFoundError as exc:
            raise NotFoundError(
                f"no detection {spec.detection_id!r}",
                where="detection_id",
                expected="the id of a recorded detection (det-...)",
                actual=repr(spec.detection_id),
            ) from exc
        fingerprint = detection.fingerprint or ""
        if not spec.fingerprint and fingerprint:
            return spec.model_copy(update={"fingerprint": fingerprint[:256]})
        return spec

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

    def list(self) -> list[Finding]:
        """Every finding, oldest first (unchecked, like :meth:`get`; see :meth:`visible`)."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(custody_findings).order_by(
                        custody_findings.c.registered_at, custody_findings.c.id
                    )
                )
                .mappings()
                .all()
            )
            events = (
                conn.execute(select(custody_events).order_by(custody_events.c.id)).mappings().all()
            )
        by_finding: dict[str, builtins.list[RowMapping]] = {}
        for e in events:
            by_finding.setdefault(e["finding_id"], []).append(e)
        return [finding_from_rows(r, by_finding.get(r["id"], [])) for r in rows]

    def policy_of(self, finding: Finding) -> DisclosurePolicy:
        """The disclosure policy the finding was registered under (a preset by name, or one
        of the deployment's policies)."""
        return resolve_policy(finding.policy, self.policies)

    def schedule(self, finding: Finding | str) -> Schedule | None:
        """The finding's disclosure clock from its events so far (None before vendor notice)."""
        f = self.get(finding) if isinstance(finding, str) else finding
        return compute_schedule(self.policy_of(f), clock_events(f))

    # --- case events and Vultron transitions -----------------------------------------------

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
        action = "notify" if kind == "vendor-notified" else "event"
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
        if when.tzinfo is None:
            raise InputError("event time has no timezone", where="at", expected="UTC")
        if when > now:
            raise InputError(
                "event time is in the future",
                where="at",
                expected=f"at or before {format_time(now)}",
                actual=format_time(when),
            )
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

    # --- escrow ------------------------------------------------------------------------------

    def read_details(self, finding_id: str, *, reader: str, purpose: str = "") -> bytes:
        """Return the escrowed details to ``reader``, who needs a grant of exploit-details.

        The read is appended to the log, naming the reader and the grant, BEFORE anything is
        decrypted; if the append fails there is no read.

        Raises:
            PolicyDenied: unknown principal, no grant, or no authority configured (fail
                closed); each refusal is logged.
            NotFoundError: no such finding.
            LogWriteError: the read could not be logged, so it did not happen.
            EscrowIntegrityError: the stored ciphertext was tampered with.
        """
        self._known("escrow-read", reader, finding_id)
        grant = self._grant("escrow-read", reader, finding_id)
        now = self.clock.now()
        with self._lock:
            self.get(finding_id)
            sealed = self._sealed(finding_id)
            body = E.EscrowReadBody(
                finding_id=finding_id, reader=reader, grant=grant.id, purpose=purpose
            )
            self._append_event(
                finding_id,
                _READ,
                now,
                reader,
                purpose,
                Entry.create(E.ESCROW_READ, time=now, principal=reader, body=body),
            )
        plaintext = self.kek.open(finding_id, sealed)
        return plaintext[SALT_BYTES:]

    def _grant(self, action: str, principal: str, finding_id: str) -> HeldGrant:
        """The authority's grant of exploit-details for ``finding_id``.

        Raises:
            PolicyDenied: none, or no authority configured (logged).
        """
        if self.authority is None:
            # Fail closed: without an authority nobody can hold the quorum the constitution
            # demands for exploit details.
            self._deny(
                action,
                principal,
                finding_id,
                PolicyDenied("escrowed details cannot be read: no authority is configured"),
            )
        try:
            return self.authority.authorize(principal, EXPLOIT_DETAILS, resource=finding_id)
        except PolicyDenied as exc:
            self._deny(action, principal, finding_id, exc)

    def _sealed(self, finding_id: str) -> Sealed:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(custody_escrow).where(custody_escrow.c.finding_id == finding_id)
            ).first()
        if row is None:
            raise EscrowIntegrityError(f"finding {finding_id} has no escrowed details")
        sealed = Sealed(row.kek_id, bytes(row.wrapped_key), bytes(row.ciphertext))
        if sealed.ciphertext_sha256 != row.ciphertext_sha256:
            raise EscrowIntegrityError(
                f"the escrowed ciphertext of {finding_id} does not match its recorded digest"
            )
        return sealed

    # --- reveal ------------------------------------------------------------------------------

    def reveal(self, finding_id: str, *, principal: str, early: bool = False) -> Revealed:
        """Open the finding's commitment: publish the salt and the details.

        The finder's organisation or a coordinator reveals, once the disclosure clock says full
        details are due; ``early`` reveals before that and also needs a grant of
        exploit-details for the finding.

        Raises:
            CustodyError: details are not yet due (and not ``early``).
            PolicyDenied: not a party that may reveal, or ``early`` without a grant (logged).
            NotFoundError: no finding visible to ``principal`` (logged).
            EscrowIntegrityError: the escrow was tampered with.
            LogWriteError: the reveal could not be logged, so nothing is revealed.
        """
        now = self.clock.now()
        with self._lock:
            access, finding = self._case("reveal", finding_id, principal)
            self._require(
                "reveal", access, principal, finding, access.required_for_reveal(), "reveal"
            )
            schedule = self.schedule(finding)
            due = schedule is not None and now >= schedule.details_at
            if finding.revealed_at is None and not due:
                if not early:
                    when = (
                        "the vendor has not been notified"
                        if schedule is None
                        else f"details are due {format_time(schedule.details_at)}"
                    )
                    raise CustodyError(
                        f"{finding_id} cannot be revealed yet: {when}",
                        hint="to reveal before then, ask for an early reveal (`--early`, or "
                        '"early": true over HTTP); it needs a grant of exploit-details for '
                        "this finding",
                    )
                self._grant("reveal", principal, finding_id)
            plaintext = self.kek.open(finding_id, self._sealed(finding_id))
            salt, details = plaintext[:SALT_BYTES], plaintext[SALT_BYTES:]
            if commit_details(details, salt=salt).hex != finding.commitment:
                raise EscrowIntegrityError(
                    f"the escrow of {finding_id} does not open its logged commitment"
                )
            body = E.RevealBody(
                finding_id=finding_id,
                commitment=finding.commitment,
                salt=salt.hex(),
                details_sha256=hashlib.sha256(details).hexdigest(),
                details_bytes=len(details),
            )
            appended = self.log.append(
                Entry.create(E.REVEAL, time=now, principal=principal, body=body)
            )
            with writer(self.engine).begin() as conn:
                conn.execute(
                    update(custody_findings)
                    .where(custody_findings.c.id == finding_id)
                    .values(revealed_at=finding.revealed_at or now)
                )
                conn.execute(
                    insert(custody_events).values(
                        finding_id=finding_id,
                        kind="revealed",
                        at=now,
                        principal=principal,
                        note="",
                        log_index=appended.index,
                    )
                )
        return Revealed(finding_id, finding.commitment, salt.hex(), details, appended.index)

    # --- alarms ------------------------------------------------------------------------------

    def snapshots(
        self,
        findings: Sequence[Finding] | None = None,
    ) -> builtins.list[FindingSnapshot]:
        """What alarms need of each finding (all findings by default)."""
        out = []
        for f in findings if findings is not None else self.list():
            reads = tuple(e.at for e in f.events if e.kind == _READ)
            actions = tuple(sorted(e.at for e in f.events if e.kind != _READ))
            out.append(
                FindingSnapshot(
                    f.id, f.registered_at, self.policy_of(f), clock_events(f), reads, actions
                )
            )
        return out

    def evaluate(self, now: datetime | None = None) -> builtins.list[Alarm]:
        """Every alarm due now (computed, not yet recorded)."""
        detections = list(self.detections.discovery_detections()) if self.detections else []
        return evaluate_alarms(self.snapshots(), detections, now or self.clock.now(), self.windows)

    def raise_alarms(self) -> builtins.list[Alarm]:
        """Record every newly due alarm in the log (then in the registry); return the new ones.

        Raises:
            LogWriteError: the alarms could not be logged (none is recorded).
        """
        now = self.clock.now()
        with self._lock:
            due = self.evaluate(now)
            new = record_alarms(self.engine, self.log, now, due)
        for a in new:
            _log.warning("custody alarm %s: %s", a.id, a.message)
        return new

    def watch(self, interval: float) -> None:
        """Raise due alarms every ``interval`` seconds in a background thread, so they are
        recorded in the log even when nobody asks (``0`` or less: never); :meth:`close` stops
        it. A second call while it runs does nothing."""
        if self._watcher is not None or interval <= 0:
            return
        self._watcher = Periodic("custodes-custody-alarms", interval, self.raise_alarms)
        self._watcher.start()

    def close(self) -> None:
        """Stop the alarm watcher, if any (waiting for a round in progress)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()

    def alarms(self) -> builtins.list[RecordedAlarm]:
        """Every alarm recorded so far, oldest first."""
        return recorded_alarms(self.engine)
