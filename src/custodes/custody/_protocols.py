"""What the custody registry needs from other components, as Protocols, and what it shows.

The wiring hands the registry the authority (as an :class:`Authorizer`) and the monitors'
review queue (as a :class:`DetectionSource`); custody imports neither package, so it can be
built and tested on its own and the import graph has no cycle through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from custodes.custody._alarms import DetectionSnapshot
from custodes.custody._model import Finding

__all__ = ["Authorizer", "DetectionSource", "HeldGrant", "Listing", "RecordedDetection"]


class HeldGrant(Protocol):
    """What custody keeps of the authority's grant: its id, recorded with each escrow read."""

    @property
    def id(self) -> str:
        """The grant's id, as the log's grant entry names it."""
        ...


class Authorizer(Protocol):
    """The authority's decision: a grant of ``capability`` to ``principal`` (for ``resource``,
    here a finding id; a grant bound to another finding does not cover it), or PolicyDenied."""

    def authorize(
        self, principal: str, capability: str, /, *, resource: str | None = None
    ) -> HeldGrant:
        """The grant in force that lets ``principal`` use ``capability`` now.

        Args:
            principal: who asks (a principal id of the constitution in force).
            capability: the capability asked for (an escrow read's).
            resource: the finding id the grant must be bound to, if any.

        Returns:
            The grant, whose id custody records with the read.

        Raises:
            PolicyDenied: no grant in force covers the use.
        """
        ...


class RecordedDetection(Protocol):
    """What registration takes from the detection a finding names."""

    @property
    def fingerprint(self) -> str | None:
        """The detection's fingerprint (None if it has none): a finding that gives none takes
        it, so the same weakness detected twice is refused as a duplicate, not registered twice."""
        ...


class DetectionSource(Protocol):
    """Where detections come from (the monitors' review queue): the discovery detections of
    the stockpiling alarm, and each recorded detection by id (a finding that names one must
    name one that exists)."""

    def discovery_detections(self) -> Iterable[DetectionSnapshot]:
        """The discovery detections, as the stockpiling alarm counts them against findings."""
        ...

    def get(self, detection_id: str, /) -> RecordedDetection:
        """The detection ``detection_id``.

        Raises:
            NotFoundError: no such detection.
        """
        ...


@dataclass(frozen=True)
class Listing:
    """What a principal may see of the registry: case records, and the ids of embargoed
    findings whose existence (only) the constitution lets everyone see."""

    findings: tuple[Finding, ...]
    existing: tuple[str, ...] = ()
