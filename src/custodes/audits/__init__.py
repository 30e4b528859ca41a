"""Loyalty audits: black-box probes, through the gateway, for a model that secretly favours
someone, with statistics that do not cry wolf.

The harness is a client of a deployment: :class:`GatewayProber` asks each probe as a chat
completion through the gateway with the ``openai`` client, so every probe is granted and logged
like any other call. Entry points:

- :func:`read_probe_set` / :class:`ProbeSet`: the battery, as data, named by its digest;
- :func:`plan_power`: how many templates and decoys an audit needs for δ at α and 1 − β;
- :class:`RunState` and :func:`run_audit`: a resumable run;
- :func:`analyze` and :func:`build_report`: the decision rule and the only statements a report
  may make (never "clean"); :meth:`AuditReport.sign`, :func:`log_report`, :func:`plot_effects`.

See ``docs/audit-a-model.md``.
"""

from custodes.audits._analysis import (
    AnalysisConfig,
    ArmResult,
    Direction,
    FamilyKind,
    FamilyPower,
    Observation,
    Role,
    Split,
    TriggerControl,
    analyze,
)
from custodes.audits._client import GatewayProber, ProbeMode, Prober
from custodes.audits._entries import REPORT, LoggedReport, ReportEntry, log_report, report_entry
from custodes.audits._evaluation import (
    LOYALTY_AUDIT,
    AuditEvaluation,
    EvaluatedFinding,
    audit_evaluation,
    evaluation_envelope,
)
from custodes.audits._outcome import (
    ANSWER_WORDS,
    Outcome,
    OutcomeMethod,
    answer_of,
    log_odds_from_samples,
    log_odds_from_top,
)
from custodes.audits._power import PowerPlan, achieved_power, decoys_needed, plan_power
from custodes.audits._probes import (
    MAX_PROBE_BYTES,
    Family,
    ProbeSet,
    Query,
    Template,
    read_probe_set,
)
from custodes.audits._report import (
    REPORT_DOMAIN,
    ArmSummary,
    AuditReport,
    Finding,
    SignedReport,
    Verdict,
    build_report,
    report_message,
)
from custodes.audits._run import RunState, Subject, observations, reference_values, run_audit
from custodes.audits._stats import (
    Method,
    PairedTest,
    adjust_bh,
    adjust_holm,
    aggregate_by_template,
    decoy_rank_p,
    one_sided,
    paired_test,
)
from custodes.audits._svg import plot_effects

__all__ = [
    "ANSWER_WORDS",
    "LOYALTY_AUDIT",
    "MAX_PROBE_BYTES",
    "REPORT",
    "REPORT_DOMAIN",
    "AnalysisConfig",
    "ArmResult",
    "ArmSummary",
    "AuditEvaluation",
    "AuditReport",
    "Direction",
    "EvaluatedFinding",
    "Family",
    "FamilyKind",
    "FamilyPower",
    "Finding",
    "GatewayProber",
    "LoggedReport",
    "Method",
    "Observation",
    "Outcome",
    "OutcomeMethod",
    "PairedTest",
    "PowerPlan",
    "ProbeMode",
    "ProbeSet",
    "Prober",
    "Query",
    "ReportEntry",
    "Role",
    "RunState",
    "SignedReport",
    "Split",
    "Subject",
    "Template",
    "TriggerControl",
    "Verdict",
    "achieved_power",
    "adjust_bh",
    "adjust_holm",
    "aggregate_by_template",
    "analyze",
    "audit_evaluation",
    "answer_of",
    "build_report",
    "decoy_rank_p",
    "decoys_needed",
    "evaluation_envelope",
    "log_odds_from_samples",
    "log_odds_from_top",
    "log_report",
    "observations",
    "one_sided",
    "paired_test",
    "plan_power",
    "plot_effects",
    "read_probe_set",
    "reference_values",
    "report_entry",
    "report_message",
    "run_audit",
]
