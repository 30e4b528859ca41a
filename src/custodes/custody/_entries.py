"""Log entry types of the custody registry (registered at import; see custodes.entry_types)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = [
    "ALARM",
    "DENIED",
    "ESCROW_READ",
    "EVENT",
    "REGISTER",
    "REGISTER_V2",
    "REVEAL",
    "TRANSITION",
    "AlarmBody",
    "DeniedBody",
    "EscrowReadBody",
    "EventBody",
    "RegisterBody",
    "RegisterBodyV2",
    "RevealBody",
    "TransitionBody",
]

_HEX64 = r"^[0-9a-f]{64}$"
_FINDING_ID = r"^CUSTODES-[0-9]{4}-[0-9]{4,}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterBody(_Body):
    """A finding was registered; its details are escrowed and committed to, never logged."""

    finding_id: str = Field(pattern=_FINDING_ID)
    title: str
    vendor: str
    product: str
    versions: list[str]
    cwe: str
    cvss_vector: str
    cvss_score: float
    severity: str
    finder: str
    model: str
    session: str
    evidence: str
    fingerprint: str
    policy: str
    detection_id: str | None = None
    commitment: str = Field(pattern=_HEX64, description="SHA-256(salt || details), hex")
    ciphertext_sha256: str = Field(pattern=_HEX64)
    details_bytes: int = Field(ge=0)


class RegisterBodyV2(_Body):
    """A finding was registered. The log is public and the case record is need-to-know, so the
    entry holds commitments, never the record: ``record_commitment`` is SHA-256(record_salt ||
    JCS(record)) (RFC 8785) over the case record's fields, ``commitment`` the one to the
    escrowed details. Those who may read the record get the salt with it and can check it
    against this entry; once the finding is public, anyone can."""

    finding_id: str = Field(pattern=_FINDING_ID)
    policy: str
    detection_id: str | None = None
    record_commitment: str = Field(pattern=_HEX64)
    commitment: str = Field(pattern=_HEX64, description="SHA-256(salt || details), hex")
    ciphertext_sha256: str = Field(pattern=_HEX64)
    details_bytes: int = Field(ge=0)


class TransitionBody(_Body):
    """A Vultron report-management or embargo-management state change."""

    finding_id: str = Field(pattern=_FINDING_ID)
    machine: str = Field(pattern=r"^(rm|em)$")
    from_state: str
    to_state: str
    reason: str = ""


class EventBody(_Body):
    """A case event: vendor notice, acknowledgement, a case flag, grace, disclosure."""

    finding_id: str = Field(pattern=_FINDING_ID)
    event: str
    at: str = Field(description="When it happened (RFC 3339 UTC); may precede the entry time.")
    note: str = ""


class EscrowReadBody(_Body):
    """Escrowed details were read; appended before they are decrypted."""

    finding_id: str = Field(pattern=_FINDING_ID)
    reader: str
    grant: str = Field(description="The authority grant of exploit-details that allowed it.")
    purpose: str = ""


class RevealBody(_Body):
    """The commitment was opened: anyone can check SHA-256(salt || details) == commitment."""

    finding_id: str = Field(pattern=_FINDING_ID)
    commitment: str = Field(pattern=_HEX64)
    salt: str = Field(pattern=_HEX64)
    details_sha256: str = Field(pattern=_HEX64)
    details_bytes: int = Field(ge=0)


class AlarmBody(_Body):
    """An alarm every overseer sees: stockpiling, late notice, missed deadline, idle read."""

    alarm_id: str
    kind: str
    subject: str
    due_at: str
    message: str


class DeniedBody(_Body):
    """A custody action was refused: who asked (as they named themselves), for what, and why.

    ``principal`` is the name the caller gave; ``known`` says whether the constitution names it
    (an invented name is recorded as such, never as an actor). The same reason is recorded for a
    finding that is hidden from the caller as for one that does not exist, so the log is no
    oracle for an embargoed finding's existence.
    """

    action: str = Field(max_length=32)
    finding_id: str | None = Field(default=None, pattern=_FINDING_ID)
    principal: str = Field(max_length=256)
    known: bool
    reason: str = Field(max_length=1000)


REGISTER = "custody.finding.register/v1"
REGISTER_V2 = "custody.finding.register/v2"
TRANSITION = "custody.finding.transition/v1"
EVENT = "custody.finding.event/v1"
ESCROW_READ = "custody.escrow.read/v1"
REVEAL = "custody.finding.reveal/v1"
ALARM = "custody.alarm/v1"
DENIED = "custody.denied/v1"

register_entry_type(REGISTER, RegisterBody)
register_entry_type(REGISTER_V2, RegisterBodyV2)
register_entry_type(TRANSITION, TransitionBody)
register_entry_type(EVENT, EventBody)
register_entry_type(ESCROW_READ, EscrowReadBody)
register_entry_type(REVEAL, RevealBody)
register_entry_type(ALARM, AlarmBody)
register_entry_type(DENIED, DeniedBody, "a custody action was refused, and why")
