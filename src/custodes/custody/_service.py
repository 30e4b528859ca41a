"""Build the custody registry of a running server from its settings and sibling services."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from custodes.custody._alarms import AlarmWindows, DetectionSnapshot
from custodes.custody._escrow import KeyEncryptionKey, load_or_create_kek
from custodes.custody._policy import load_policies
from custodes.custody._registry import CustodyRegistry
from custodes.errors import Error, NotFoundError

if TYPE_CHECKING:
    from custodes.server import Context

__all__ = ["build_registry"]

_log = logging.getLogger(__name__)


class _ServiceDetections:
    """Discovery detections from the monitors' service, if it offers them."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def discovery_detections(self) -> Iterable[DetectionSnapshot]:
        monitors: Any = self._ctx.services.get("monitors")
        source = getattr(monitors, "discovery_detections", None)
        return list(source()) if callable(source) else []

    def get(self, detection_id: str) -> Any:
        """The detection, from the monitors' review queue.

        Raises:
            NotFoundError: no such detection, or no monitors service to ask.
        """
        queue = getattr(self._ctx.services.get("monitors"), "queue", None)
        if queue is None:
            raise NotFoundError(f"cannot check detection {detection_id!r}: no monitors service")
        return queue.get(detection_id)


def _windows(ctx: Context) -> AlarmWindows:
    authority: Any = ctx.services.get("authority")
    try:
        constitution = getattr(authority, "constitution", None)
    except Error:  # no constitution loaded yet: the default windows apply
        constitution = None
    document = getattr(constitution, "document", None)
    try:
        from custodes.constitution import parse_duration
    except ImportError:  # pragma: no cover - the constitution package is part of custodes
        return AlarmWindows()
    return AlarmWindows.from_document(document, parse_duration)


def build_registry(ctx: Context) -> CustodyRegistry:
    """The registry over the context's database and log.

    The key-encryption key is loaded at first escrow use, so a server that never escrows
    anything starts without one; the demo generates it (if missing) at once.

    Raises:
        InputError: the policies file is invalid.
    """
    settings = ctx.settings

    def kek() -> KeyEncryptionKey:
        return load_or_create_kek(settings.resolved_custody_kek_file, demo=settings.demo)

    policies = (
        load_policies(settings.custody_policies_file) if settings.custody_policies_file else {}
    )
    authority: Any = ctx.services.get("authority")
    registry = CustodyRegistry(
        ctx.engine,
        ctx.log,
        kek,
        authority=authority,
        clock=ctx.clock,
        policies=policies,
        windows=_windows(ctx),
        detections=_ServiceDetections(ctx),
    )
    if settings.demo:
        # The demo has its key from the start (generated if missing), so the command line on
        # the demo's data folder finds it as the docs say.
        _ = registry.kek
    registry.watch(settings.custody_alarm_interval_s)
    return registry
