"""The monitors' service in a running server: registry, review queue, inline monitors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from custodes.errors import NotFoundError
from custodes.monitors._detector import Detector
from custodes.monitors._directory import ConstitutionDirectory
from custodes.monitors._registry import DetectorRegistry, default_registry
from custodes.monitors._review import ReviewQueue

if TYPE_CHECKING:
    from custodes.server import Context

__all__ = ["MonitorsService", "start_monitors"]


class _LiveDirectory:
    """The directory of whatever constitution the authority holds right now."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _current(self) -> ConstitutionDirectory:
        authority: Any = self._ctx.services.get("authority")
        constitution = getattr(authority, "constitution", None)
        if callable(constitution):
            constitution = constitution()
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
    """What the server and the other components use: ``registry``, ``queue``,
    ``gateway_monitors()`` and ``discovery_detections()`` (for custody's alarms)."""

    def __init__(self, registry: DetectorRegistry, queue: ReviewQueue) -> None:
        self.registry = registry
        self.queue = queue

    def gateway_monitors(self) -> list[Any]:
        from custodes.gateway import DetectorMonitor

        rules: list[Detector] = [self.registry.get("vuln_rules"), self.registry.get("coup_rules")]
        # Observing, not gating: a discovery must reach a reviewer, not vanish with a refusal.
        return [DetectorMonitor(d, mode="observing") for d in rules]

    def discovery_detections(self) -> list[Any]:
        return self.queue.discovery_detections()


def start_monitors(ctx: Context) -> MonitorsService:
    def validate_finding(finding_id: str) -> Any:
        custody: Any = ctx.services.get("custody")
        if custody is None:
            raise NotFoundError(f"cannot check finding {finding_id!r}: custody is not running")
        return custody.get(finding_id)

    queue = ReviewQueue(
        ctx.engine, ctx.log, _LiveDirectory(ctx), clock=ctx.clock, validate_finding=validate_finding
    )
    return MonitorsService(default_registry(), queue)
