"""The composition root: one place that builds every component of a deployment from
:class:`~custodes.config.Settings`, in dependency order, and hands each the typed parts it needs.

Entry points: :func:`build_deployment` (everything a server runs, as a typed
:class:`Deployment`), :func:`open_core` (settings, database, log, clock: for CLI commands that
need only those), :func:`build_records` (authority, monitors and custody over a core),
:func:`all_entry_types` (every log entry type, for readers that check each entry).

No component imports this package or the server; the server and the CLI do. The wiring is
also the only place that adapts one component to another's Protocol (``_adapters``), so the
components never import each other in a circle. To add a component, see ``_deployment``.
"""

from custodes.wiring._adapters import (
    GatewayAuthority,
    GrantAuditor,
    Later,
    constitution_in_force,
    gateway_monitors,
)
from custodes.wiring._core import Core, load_or_create_log_key, open_core, write_private_file
from custodes.wiring._deployment import Deployment, build_deployment
from custodes.wiring._entry_types import all_entry_types
from custodes.wiring._records import Records, build_records
from custodes.wiring._serving import VerifierProcess

__all__ = [
    "Core",
    "Deployment",
    "GatewayAuthority",
    "GrantAuditor",
    "Later",
    "Records",
    "VerifierProcess",
    "all_entry_types",
    "build_deployment",
    "build_records",
    "constitution_in_force",
    "gateway_monitors",
    "load_or_create_log_key",
    "open_core",
    "write_private_file",
]
