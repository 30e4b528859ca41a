"""The monitors' component in a deployment: the detector registry and the review queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from custodes.clock import Clock
from custodes.constitution import Constitution
from custodes.errors import NotFoundError
from custodes.log import TransparencyLog
from custodes.monitors._detector import Detector
from custodes.monitors._directory import ConstitutionDirectory
from custodes.monitors._registry import DetectorRegistry, default_registry
from custodes.monitors._review import FindingValidator, ReviewQueue

__all__ = ["MonitorsService", "start_monitors"]


class _LiveDirectory:
    """The directory of whatever constitution is in force right now (amendments apply at once)."""

    def __init__(self, constitution: Callable[[], Constitution | None]) -> None:
        self._constitution = constitution

    def _current(self) -> ConstitutionDirectory:
        constitution = self._constitution()
        if constitution is None:
            raise NotFoundError("no constitution is loaded: principals and reviewers are unknown")
        return ConstitutionDirectory(constitution)

    def organisation_of(self, principal: str) -> str:
        return self._current().organisation_of(principal)

    def reviewers(self) -> Iterable[str]:
        return self._current().reviewers()

    def is_overseer(self, principal: str) -> bool:
        try:
            return self._current().is_overseer(principal)
        except NotFoundError:
            return False


class MonitorsService:
    """The detectors and the review queue of one deployment.

    Args:
        registry: the detectors, by name.
        queue: the review queue detections are recorded in.
    """

    def __init__(self, registry: DetectorRegistry, queue: ReviewQueue) -> None:
        self.registry = registry
        self.queue = queue

    def inline_detectors(self) -> list[Detector]:
        """The detectors fast enough to run on every model call (the rules tier).

        Raises:
            NotFoundError: a rules-tier detector is missing from the registry.
        """
        return [self.registry.get("vuln_rules"), self.registry.get("coup_rules")]


def start_monitors(
    *,
    engine: Engine,
    log: TransparencyLog,
    clock: Clock,
    constitution: Callable[[], Constitution | None],
    validate_finding: FindingValidator,
) -> MonitorsService:
    """The monitors of a deployment: the default detectors and the review queue.

    Args:
        engine: the migrated database.
        log: the log every detection and review is recorded in.
        clock: the deployment's clock.
        constitution: the constitution in force (actors' organisations, reviewers).
        validate_finding: looks up the finding a detection is linked to (custody's); raises
            NotFoundError for an unknown one.
    """
    queue = ReviewQueue(
        engine, log, _LiveDirectory(constitution), clock=clock, validate_finding=validate_finding
    )
    return MonitorsService(default_registry(), queue)
