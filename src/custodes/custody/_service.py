"""Build a deployment's custody registry from its settings and the typed parts it needs."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine

from custodes.clock import Clock
from custodes.config import Settings
from custodes.constitution import Constitution, parse_duration
from custodes.custody._alarms import AlarmWindows
from custodes.custody._escrow import KeyEncryptionKey, load_or_create_kek
from custodes.custody._policy import load_policies
from custodes.custody._protocols import Authorizer, DetectionSource
from custodes.custody._registry import CustodyRegistry
from custodes.log import TransparencyLog

__all__ = ["build_registry"]

_log = logging.getLogger(__name__)


def build_registry(
    settings: Settings,
    *,
    engine: Engine,
    log: TransparencyLog,
    clock: Clock,
    authority: Authorizer | None,
    constitution: Callable[[], Constitution | None],
    detections: DetectionSource | None,
) -> CustodyRegistry:
    """The custody registry of a deployment, its alarm sweep started.

    The key-encryption key is loaded at first escrow use, so a server that never escrows
    anything starts without one; the demo generates it (if missing) at once.

    Args:
        settings: the deployment's settings (``custody_*``).
        engine: the migrated database.
        log: the log every custody action is recorded in.
        clock: the deployment's clock (disclosure clocks run on it).
        authority: decides escrow reads; None refuses every read (fail closed).
        constitution: the constitution in force (who may see and do what; the alarm windows
            of the one in force at start).
        detections: the monitors' discovery detections, for the stockpiling alarm.

    Raises:
        InputError: the policies file is invalid.
        ConfigError: in the demo, the key-encryption key file is malformed.
    """

    def kek() -> KeyEncryptionKey:
        return load_or_create_kek(settings.resolved_custody_kek_file, demo=settings.demo)

    policies = (
        load_policies(settings.custody_policies_file) if settings.custody_policies_file else {}
    )
    current = constitution()
    registry = CustodyRegistry(
        engine,
        log,
        kek,
        authority=authority,
        clock=clock,
        policies=policies,
        windows=AlarmWindows.from_document(
            current.document if current is not None else None, parse_duration
        ),
        detections=detections,
        constitution=constitution,
    )
    if settings.demo:
        # The demo has its key from the start (generated if missing), so the command line on
        # the demo's data folder finds it as the docs say.
        _ = registry.kek
    registry.watch(settings.custody_alarm_interval_s)
    return registry
