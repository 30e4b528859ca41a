"""The record-keeping components of a deployment: authority, monitors, custody, provenance.

Apart from :mod:`custodes.wiring._deployment` because two builders need them: the server's whole
deployment and the serving check's worker process (``_serving``), which opens only these; with
the builder here, neither module imports the other (the acyclic contract).
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.authority import Authority, start_authority
from custodes.custody import CustodyRegistry, build_registry
from custodes.monitors import MonitorsService, start_monitors
from custodes.provenance import ModelRegistry
from custodes.wiring._adapters import GrantAuditor, Later, constitution_in_force
from custodes.wiring._core import Core

__all__ = ["Records", "build_records", "records_over"]


@dataclass(frozen=True)
class Records:
    """The components that keep a deployment's records of people and findings (what CLI
    commands on findings and detections need, without the gateway or the witnesses).

    Attributes:
        authority: requests, approvals, grants, the constitution in force.
        monitors: the detectors and the review queue.
        custody: the custody registry (findings, clocks, escrow, alarms).
        provenance: the model registry (artifacts, training runs, lineage).
    """

    authority: Authority
    monitors: MonitorsService
    custody: CustodyRegistry
    provenance: ModelRegistry


def build_records(core: Core) -> Records:
    """The authority, the monitors and the custody registry over ``core`` (for CLI commands
    on findings and detections).

    Raises:
        ConfigError: the constitution file is missing.
        ConstitutionError: the constitution is refused.
        InputError: the custody policies file is invalid.
    """
    authority = start_authority(core.settings, engine=core.engine, log=core.log, clock=core.clock)
    return records_over(core, authority)


def records_over(core: Core, authority: Authority) -> Records:
    """The record components over ``core`` and an authority already started (the server's)."""
    constitution = constitution_in_force(authority)
    # The review queue checks the finding a detection is linked to; custody is built after it.
    custody_later: Later[CustodyRegistry] = Later("the custody registry")
    monitors = start_monitors(
        engine=core.engine,
        log=core.log,
        clock=core.clock,
        constitution=constitution,
        validate_finding=lambda finding_id: custody_later.get().get(finding_id),
    )
    custody = build_registry(
        core.settings,
        engine=core.engine,
        log=core.log,
        clock=core.clock,
        authority=authority,
        constitution=constitution,
        detections=monitors.queue,  # discovery detections feed the stockpiling alarm
    )
    custody_later.set(custody)
    provenance = ModelRegistry(
        core.engine,
        core.log,
        clock=core.clock,
        approvals=authority,
        reader=core.log,
        grant_audit=GrantAuditor(core.engine),
    )
    return Records(authority=authority, monitors=monitors, custody=custody, provenance=provenance)
