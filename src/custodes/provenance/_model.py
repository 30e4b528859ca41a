"""What the registry returns, and the roles it is given: frozen dataclasses and Protocols."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, get_args

from custodes.authority import Grant
from custodes.constitution import Constitution
from custodes.provenance._manifest import FileManifest
from custodes.provenance._statement import RunStatement

__all__ = [
    "ARTIFACT_KINDS",
    "Artifact",
    "ArtifactKind",
    "Evaluation",
    "GrantAudit",
    "Promotion",
    "Run",
    "RunApprovals",
    "ServingVerdict",
]

ArtifactKind = Literal["dataset", "code", "config", "weights"]
ARTIFACT_KINDS: tuple[str, ...] = get_args(ArtifactKind)


class RunApprovals(Protocol):
    """What the registry asks the authority: the constitution, and a grant by id."""

    @property
    def constitution(self) -> Constitution:
        """The active constitution (raises NotFoundError without one)."""
        ...

    def grant(self, grant_id: str) -> Grant:
        """The grant (raises NotFoundError if there is none)."""
        ...


class GrantAudit(Protocol):
    """What verification asks of the entry auditor: its verdict on each grant entry."""

    def grant_problems(self, entries: Mapping[int, bytes]) -> Mapping[str, str | None]:
        """By grant id, the problem with the grant's entry among ``entries`` (the log's
        entries by index, all of them), or None when its request and approvals check out."""
        ...


@dataclass(frozen=True)
class Artifact:
    """A registered artifact. ``run_id`` names the run that produced it; a root has none."""

    digest: str
    kind: ArtifactKind
    name: str
    files: int
    manifest: FileManifest | None
    manifest_sha256: str | None
    git_commit: str | None
    run_id: str | None
    registered_by: str
    registered_at: datetime
    log_index: int

    @property
    def root(self) -> bool:
        return self.run_id is None


@dataclass(frozen=True)
class Run:
    """A registered training run: its envelope as sent, what it states, the spent grant."""

    id: str
    envelope: bytes
    envelope_sha256: str
    statement: RunStatement
    grant_id: str
    requester: str
    registered_at: datetime
    log_index: int


@dataclass(frozen=True)
class Evaluation:
    """A registered capability evaluation: its envelope as signed, what it states."""

    id: str
    weights: str
    evaluation: str
    score: float
    evaluator: str
    envelope: bytes
    envelope_sha256: str
    registered_by: str
    registered_at: datetime
    log_index: int


@dataclass(frozen=True)
class Promotion:
    """Weights promoted to serve in a tier, by a spent promotion grant."""

    id: str
    weights: str
    capability: str
    grant_id: str
    requester: str
    registered_by: str
    evaluations: tuple[str, ...]
    checkpoint_size: int
    registered_at: datetime
    log_index: int


@dataclass(frozen=True)
class ServingVerdict:
    """Whether weights may serve in the tier ``capability``: promoted to it, their evaluations
    under its thresholds, their lineage verifying against the log (``reasons`` say why not).

    ``checkpoint_size`` is the size of the log the lineage was verified against. ``lasting``
    is False when the verdict will change without anything being wrong (nothing is registered
    under the digest yet: a model server may start before its run is registered), so it is
    not worth caching; the check that gave it is one indexed lookup.
    """

    digest: str
    approved: bool
    reasons: tuple[str, ...]
    checked_at: datetime
    checkpoint_size: int = 0
    lasting: bool = True
    capability: str = ""
