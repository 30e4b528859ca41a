"""The custody registry: register, escrow, notify, transition, read, reveal, alarm.

Registration, listings and alarms are here; case events and transitions are in
``_events.py``, escrow reads and reveal in ``_escrow_reads.py``, the checks they share in
``_cases.py``.

Every action follows invariant 1 ("no log, no action"): it is validated, its entry is appended
to the transparency log and made durable, and only then is the registry's state changed or a
secret returned. If the append raises, the action fails and nothing changes.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, insert, select

from custodes.custody import _entries as E
from custodes.custody._alarm_book import record_alarms, recorded_alarms
from custodes.custody._alarms import Alarm, FindingSnapshot, evaluate_alarms
from custodes.custody._cases import _READ, EXPLOIT_DETAILS, MAX_DETAILS_BYTES
from custodes.custody._commitment import RECORD_FIELDS, commit_details, record_bytes
from custodes.custody._cvss import CvssScore, score_vector
from custodes.custody._escrow_reads import EscrowReads
from custodes.custody._events import CaseEvents
from custodes.custody._model import Finding, FindingInput
from custodes.custody._numbers import release_number, reserve_number
from custodes.custody._policy import resolve_policy
from custodes.custody._protocols import Listing
from custodes.custody._rows import RecordedAlarm, clock_events, finding_from_rows, validate_input
from custodes.custody._tables import custody_escrow, custody_events, custody_findings
from custodes.errors import Denial, InputError, NotFoundError, PolicyDenied
from custodes.log import Entry
from custodes.periodic import Periodic
from custodes.store import writer

__all__ = ["EXPLOIT_DETAILS", "CustodyRegistry"]

_log = logging.getLogger(__name__)


class CustodyRegistry(CaseEvents, EscrowReads):
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

    # --- who may ---------------------------------------------------------------------------

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
        """Number, seal, log, then store a checked finding (invariant 1: the registration
        entry is durable before the finding exists anywhere else).

        The details are sealed with the salt of their commitment in front (AES-256-GCM under
        a fresh data key wrapped by the KEK, both bound to the finding id), so a reveal can
        later open the commitment from the escrow alone. The log holds only commitments to
        the details and to the case record, never their text.

        Raises:
            LogWriteError: the registration could not be logged (its number is given back).
            ConfigError: the key-encryption key cannot be loaded.
        """
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
        row = {
            "id": finding_id,
            "title": spec.title,
            "description": spec.description,
            "vendor": spec.vendor,
            "product": spec.product,
            "versions": list(spec.versions),
            "cwe": spec.cwe,
            "cvss_version": score.version,
            "cvss_vector": score.vector,
            "cvss_score": score.base_score,
            "severity": score.severity,
            "finder": spec.finder,
            "model": spec.model,
            "session": spec.session,
            "evidence": spec.evidence,
            "fingerprint": spec.fingerprint,
            "policy": spec.policy,
            "detection_id": spec.detection_id,
            "references": list(spec.references),
            "purl": spec.purl,
            "record_commitment": record.hex,
            "record_salt": record.salt.hex(),
            "commitment": commitment.hex,
            "rm_state": "received",
            "em_state": "none",
            "registered_at": now,
            "registered_by": principal,
            "log_index": appended.index,
        }
        with writer(self.engine).begin() as conn:
            conn.execute(insert(custody_findings).values(**row))
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
        # Built from what was just written (no read back: the registration's hot path), by
        # the same function that reads a stored row, so the two cannot drift apart.
        return finding_from_rows({**row, "revealed_at": None}, events=())

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
