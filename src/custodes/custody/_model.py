"""Findings as the registry returns them, and the validated input to register one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from custodes.custody._versions import parse_package, parse_versions
from custodes.errors import InputError

__all__ = ["EVENT_KINDS", "CaseEvent", "EventKind", "Finding", "FindingInput", "Revealed"]

EventKind = Literal[
    "vendor-notified",
    "vendor-acknowledged",
    "fix-ready",
    "fix-deployed",
    "public-aware",
    "exploit-public",
    "attacks-observed",
    "grace-requested",
    "grace-granted",
    "disclosed",
    "escalated",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

# Events that set a Vultron case flag (besides the flag events themselves).
EVENT_FLAGS = {"vendor-notified": "vendor-aware", "disclosed": "public-aware"}


class FindingInput(BaseModel):
    """What a finder submits. The details (PoC, crash, analysis) travel separately as bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=256)
    description: str = Field(
        default="", max_length=8000, description="Public summary; never the exploit details."
    )
    vendor: str = Field(min_length=1, max_length=512)
    product: str = Field(min_length=1, max_length=512)
    versions: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Affected versions: exact ('2.3.0') or ranges ('< 2.4.1', '>= 2.0, < 2.5', "
        "'<= 1.2', '*').",
    )
    purl: str = Field(
        default="",
        max_length=1000,
        description="The affected package as a Package URL without a version (pkg:pypi/name); "
        "OSV exports need it.",
    )
    cwe: str = Field(pattern=r"^CWE-[1-9][0-9]{0,5}$")
    cvss: str = Field(min_length=1, max_length=256, description="CVSS v3.1 or v4.0 vector.")
    finder: str = Field(min_length=1, max_length=256)
    model: str = Field(min_length=1, max_length=256, description="The model it was found with.")
    session: str = Field(min_length=1, max_length=256)
    evidence: str = Field(
        default="",
        max_length=2000,
        description="Where the evidence is (transcript, message), not the PoC.",
    )
    fingerprint: str = Field(default="", max_length=256)
    policy: str = Field(default="frontier-lab", max_length=64)
    detection_id: str | None = Field(default=None, max_length=256)
    references: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: list[str]) -> list[str]:
        try:
            parse_versions(value)
        except InputError as exc:
            raise ValueError(exc.diagnostics().replace("\n", ";")) from None
        return value

    @field_validator("purl")
    @classmethod
    def _purl(cls, value: str) -> str:
        if not value:
            return value
        try:
            return parse_package(value).purl
        except InputError as exc:
            raise ValueError(exc.diagnostics().replace("\n", ";")) from None


@dataclass(frozen=True)
class CaseEvent:
    """A case event as logged (``custody.event/v1``).

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        at: when it happened (the log entry's time).
        principal: who recorded it.
        note: their free-text note.
        log_index: the entry's index in the log.
    """

    kind: str
    at: datetime
    principal: str
    note: str
    log_index: int


@dataclass(frozen=True)
class Finding:
    """A registered finding: public metadata, Vultron states and flags; never the details."""

    id: str
    title: str
    description: str
    vendor: str
    product: str
    versions: tuple[str, ...]
    cwe: str
    cvss_version: str
    cvss_vector: str
    cvss_score: float
    severity: str
    finder: str
    model: str
    session: str
    evidence: str
    fingerprint: str
    policy: str
    detection_id: str | None
    references: tuple[str, ...]
    commitment: str
    rm_state: str
    em_state: str
    flags: tuple[str, ...]
    registered_at: datetime
    registered_by: str
    log_index: int
    revealed_at: datetime | None
    events: tuple[CaseEvent, ...]
    purl: str = ""
    # register/v2: SHA-256(record_salt || JCS(record)) in the log; empty for v1 registrations,
    # whose entries hold the record itself.
    record_commitment: str = ""
    record_salt: str = ""

    @property
    def year(self) -> int:
        """The registration year in the finding's id (``CUSTODES-2026-0007`` -> 2026)."""
        return int(self.id.split("-")[1])


@dataclass(frozen=True)
class Revealed:
    """An opened commitment: publish ``salt`` and ``details``; anyone can recompute it."""

    finding_id: str
    commitment: str
    salt: str
    details: bytes
    log_index: int
