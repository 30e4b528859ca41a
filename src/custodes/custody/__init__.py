"""Custody of vulnerabilities: findings, escrowed details, disclosure clocks, alarms, exports.

Entry points: :class:`CustodyRegistry` (register, escrow, notify, transition, read, reveal,
alarms), :func:`compute_schedule` with the :data:`PRESETS` disclosure policies,
:func:`evaluate_alarms` (a pure function of findings, detections and the time) and the
exporters :func:`to_osv`, :func:`to_csaf`, :func:`to_cve`.
"""

from custodes.custody._access import CaseAccess, Party
from custodes.custody._alarms import (
    Alarm,
    AlarmKind,
    AlarmWindows,
    DetectionSnapshot,
    FindingSnapshot,
    evaluate_alarms,
)
from custodes.custody._clock import ClockEvents, DisclosureClock, Schedule, compute_schedule
from custodes.custody._commitment import (
    RECORD_FIELDS,
    Commitment,
    commit_details,
    record_bytes,
    verify_commitment,
)
from custodes.custody._cvss import CvssScore, score_vector
from custodes.custody._errors import (
    DuplicateFindingError,
    EscrowIntegrityError,
    TransitionError,
)
from custodes.custody._escrow import KeyEncryptionKey, Sealed, load_or_create_kek
from custodes.custody._exports import EXPORT_FORMATS, export_finding, to_csaf, to_cve, to_osv
from custodes.custody._lifecycle import (
    CASE_FLAGS,
    EM_STATES,
    EM_TRANSITIONS,
    RM_STATES,
    RM_TRANSITIONS,
)
from custodes.custody._model import EVENT_KINDS, CaseEvent, Finding, FindingInput, Revealed
from custodes.custody._policy import PRESETS, DisclosurePolicy, load_policies, resolve_policy
from custodes.custody._protocols import (
    Authorizer,
    DetectionSource,
    HeldGrant,
    Listing,
    RecordedDetection,
)
from custodes.custody._registry import EXPLOIT_DETAILS, CustodyRegistry
from custodes.custody._rows import RecordedAlarm, clock_events
from custodes.custody._service import build_registry

__all__ = [
    "CASE_FLAGS",
    "EM_STATES",
    "EM_TRANSITIONS",
    "EVENT_KINDS",
    "EXPLOIT_DETAILS",
    "EXPORT_FORMATS",
    "PRESETS",
    "RECORD_FIELDS",
    "RM_STATES",
    "RM_TRANSITIONS",
    "Alarm",
    "AlarmKind",
    "AlarmWindows",
    "Authorizer",
    "CaseAccess",
    "CaseEvent",
    "ClockEvents",
    "Commitment",
    "CustodyRegistry",
    "CvssScore",
    "DetectionSnapshot",
    "DetectionSource",
    "DisclosureClock",
    "DisclosurePolicy",
    "DuplicateFindingError",
    "EscrowIntegrityError",
    "Finding",
    "FindingInput",
    "FindingSnapshot",
    "HeldGrant",
    "KeyEncryptionKey",
    "Listing",
    "Party",
    "RecordedAlarm",
    "RecordedDetection",
    "Revealed",
    "Schedule",
    "Sealed",
    "TransitionError",
    "clock_events",
    "commit_details",
    "compute_schedule",
    "evaluate_alarms",
    "export_finding",
    "load_or_create_kek",
    "load_policies",
    "record_bytes",
    "resolve_policy",
    "score_vector",
    "build_registry",
    "to_csaf",
    "to_cve",
    "to_osv",
    "verify_commitment",
]
