"""Drills: attacks run against a live deployment, with a scorecard of the control that stopped
or revealed each step and the log entries that prove it.

Entry points: :func:`builtin_scenarios` and :func:`read_scenario_file` (scenarios are data),
:func:`run_drill` (runs one against a :class:`Target` with :class:`Credentials`), and
:func:`scorecard_markdown`, :func:`scorecard_html` and :func:`scorecard_json` (the reports).
See docs/drills.md.
"""

from custodes.drills._actions import ACTIONS
from custodes.drills._credentials import Credentials, KeyIssuer, LocalModelAccess
from custodes.drills._report import scorecard_html, scorecard_json, scorecard_markdown
from custodes.drills._runner import Progress, run_drill
from custodes.drills._scenario import (
    ActorSpec,
    CapabilitySpec,
    Expect,
    Need,
    Scenario,
    Step,
    builtin_scenarios,
    read_scenario,
    read_scenario_file,
)
from custodes.drills._scorecard import Outcome, Scorecard, StepResult
from custodes.drills._target import LogEntry, Target

__all__ = [
    "ACTIONS",
    "ActorSpec",
    "CapabilitySpec",
    "Credentials",
    "Expect",
    "KeyIssuer",
    "LocalModelAccess",
    "LogEntry",
    "Need",
    "Outcome",
    "Progress",
    "Scenario",
    "Scorecard",
    "Step",
    "StepResult",
    "Target",
    "builtin_scenarios",
    "read_scenario",
    "read_scenario_file",
    "run_drill",
    "scorecard_html",
    "scorecard_json",
    "scorecard_markdown",
]
