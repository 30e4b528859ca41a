"""The composition root: every component of one deployment, built in dependency order.

Adding a component takes a few obvious lines:

1. a typed field on :class:`Deployment` (and its line in ``Attributes``);
2. one statement in :func:`build_deployment`'s ``try`` block (or in
   ``_records.records_over``, with a field on :class:`Records`, when the CLI's record commands
   need it too) that builds it from what is
   built above it: its ``start_...``/``build_...`` function takes typed parts (``core.engine``,
   ``core.log``, ``core.clock``, ``constitution`` (the constitution in force), another
   component, or an adapter from ``_adapters`` to a Protocol the component defines), never the
   deployment itself;
3. if it holds threads or connections, ``built.append(it.close)`` right after it (so a refused
   start closes it) and one line in :meth:`Deployment.close`;
4. the keyword in the ``Deployment(...)`` at the end.

Routes then receive it through the typed FastAPI dependency ``Components``
(``custodes.server._deps``): ``def route(deployment: Components) -> ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from custodes.authority import Authority, start_authority
from custodes.clock import Clock, StagingClock
from custodes.coalition import CoalitionService, start_coalition
from custodes.config import Settings
from custodes.custody import CustodyRegistry
from custodes.gateway import Gateway, MonitorRegistry, build_gateway
from custodes.log import TransparencyLog
from custodes.monitors import MonitorsService
from custodes.provenance import ModelRegistry
from custodes.staging import StagingClockControl, staging_token
from custodes.usage import UsageTracker
from custodes.wiring._adapters import (
    GatewayAuthority,
    constitution_in_force,
    gateway_monitors,
)
from custodes.wiring._core import open_core
from custodes.wiring._records import records_over
from custodes.wiring._replicas import ReplicaFeed
from custodes.wiring._serving import VerifierProcess
from custodes.witness import WitnessPublisher, start_publisher

__all__ = ["Deployment", "build_deployment"]


@dataclass(frozen=True)
class Deployment:
    """Every live part of one custodes deployment, one typed field per component.

    Attributes:
        settings: the deployment's settings.
        engine: the migrated database.
        log: the transparency log.
        clock: the one clock.
        authority: the authority.
        coalition: the coalition analyses (and the floor guard it put on the authority).
        witness: the witness publisher, or None when no witnesses are configured.
        monitors: the detectors and the review queue.
        custody: the custody registry.
        gateway: the enforcing model gateway.
        provenance: the model registry.
        usage: who uses each tier (chains, concentration figures, rules and alarms).
        replica_feed: what brings other processes' grant changes and adopted amendments here
            (notifications with ``log_replicas``, a poll every ``authority_poll_ms``).
        verifier: the process that verifies lineages for the gateway's serving check.
        staging: with ``staging_clock``, what lets the operator advance the clock.
    """

    settings: Settings
    engine: Engine
    log: TransparencyLog
    clock: Clock
    authority: Authority
    coalition: CoalitionService
    witness: WitnessPublisher | None
    monitors: MonitorsService
    custody: CustodyRegistry
    gateway: Gateway
    provenance: ModelRegistry
    usage: UsageTracker
    replica_feed: ReplicaFeed | None = None
    verifier: VerifierProcess | None = None
    staging: StagingClockControl | None = None

    def close(self) -> None:
        """Stop every component's background work, newest first, then the log and database."""
        if self.replica_feed is not None:
            self.replica_feed.close()
        self.gateway.close()
        if self.verifier is not None:
            self.verifier.close()
        self.usage.close()
        self.custody.close()
        if self.witness is not None:
            self.witness.close()
        self.log.close()
        self.engine.dispose()


def build_deployment(
    settings: Settings,
    *,
    clock: Clock | None = None,
    gateway_monitors_override: MonitorRegistry | None = None,
) -> Deployment:
    """Open the database and the log and build every component on them, in dependency order.

    Args:
        settings: the deployment's settings.
        clock: the clock (default: the system's UTC clock).
        gateway_monitors_override: the gateway's inline monitors instead of the monitors'
            rules tier (tests and benchmarks).

    Raises:
        ConfigError: a configured file is missing, or the gateway's models file disagrees
            with the constitution.
        ConstitutionError: the constitution is refused.
        InputError: a policies file is malformed.
        StoreError: the database cannot be opened or migrated.
    """
    core = open_core(settings, clock=clock)
    built: list[Callable[[], None]] = [core.close]
    try:
        authority = start_authority(settings, engine=core.engine, log=core.log, clock=core.clock)
        coalition = start_coalition(authority)  # guards the authority's amendments from now on
        constitution = constitution_in_force(authority)
        witness = start_publisher(
            settings, engine=core.engine, log=core.log, clock=core.clock, constitution=constitution
        )
        if witness is not None:
            built.append(witness.close)
        records = records_over(core, authority)
        built.append(records.custody.close)
        usage = UsageTracker(
            engine=core.engine,
            log=core.log,
            constitution=authority,
            clock=core.clock,
            grants=authority,
            coalitions=coalition,
        )
        usage.watch(settings.usage_alarm_interval_s)
        built.append(usage.close)
        verifier = VerifierProcess(settings)  # its worker starts on the first check
        built.append(verifier.close)
        gateway = build_gateway(
            settings,
            engine=core.engine,
            log=core.log,
            clock=core.clock,
            authorizer=GatewayAuthority(authority),
            constitution=constitution(),
            constitution_source=constitution,
            monitors=(
                gateway_monitors_override
                if gateway_monitors_override is not None
                else gateway_monitors(records.monitors)
            ),
            usage=usage,
            serving=verifier,
        )
        staging = None
        if settings.staging_clock and isinstance(core.clock, StagingClock):
            staging = StagingClockControl(
                core.clock, core.log, staging_token(settings.staging_clock_token_file)
            )
            # Past a deadline, each clock-bound control records what is due at once.
            staging.on_advance("break-glass review", authority.sweep)
            staging.on_advance("custody alarm", records.custody.raise_alarms)
            staging.on_advance("usage alarm", usage.raise_alarms)
        replica_feed = None
        if settings.log_replicas or settings.authority_poll_ms > 0:
            # Other processes' grant changes and amendments: notified, and polled behind that.
            replica_feed = ReplicaFeed(
                core.engine,
                authority,
                gateway.grants.invalidate,
                listen=settings.log_replicas,
                poll=settings.authority_poll_ms / 1000,
            )
            replica_feed.start()
            built.append(replica_feed.close)
    except BaseException:
        # A refused start leaves no thread, sequencer or connection behind.
        for close in reversed(built):
            close()
        raise
    return Deployment(
        settings=settings,
        engine=core.engine,
        log=core.log,
        clock=core.clock,
        authority=authority,
        coalition=coalition,
        witness=witness,
        monitors=records.monitors,
        custody=records.custody,
        gateway=gateway,
        provenance=records.provenance,
        usage=usage,
        replica_feed=replica_feed,
        verifier=verifier,
        staging=staging,
    )
