"""The constitution's ``provenance:`` section: who trains, who evaluates, who promotes, and
which tiers serve only approved weights (custodes.provenance; docs/provenance.md).

The section names the capability whose grants approve a training run and the roles of the
workloads that sign run statements; the roles whose signed capability evaluations count; the
capability whose grants promote weights to serve in a tier (its access rule is the serving
rule, so "an overseer among the approvers" is an ordinary quorum); the evaluations a tier
requires before promotion, each with the score at or above which a model may not serve in the
tier; and who is told when a model crosses such a threshold. It is part of the document like
any other section, so changing it is an ordinary amendment under the amendment and
entrenchment rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from custodes.constitution._model import (
    AccessRule,
    EvaluationLimit,
    Notify,
    Principal,
    ProvenanceRules,
    ServedTier,
)

__all__ = ["read_provenance"]

Path = tuple[str | int, ...]


Problem = Callable[[Path, str, str | None], None]
NotifyReader = Callable[[Path, Mapping[str, Any] | None], Notify]


def read_provenance(
    raw: Mapping[str, Any],
    *,
    problem: Problem,
    notify: NotifyReader,
    capabilities: set[str],
    principals: Sequence[Principal],
    access_rules: Sequence[AccessRule],
) -> ProvenanceRules:
    """Check the ``provenance:`` section (its shape is the schema's) against the rest of the
    document and build it; each problem is reported through ``problem`` with its path.

    A training or promotion capability must be one whose access needs approvals (a standing
    permission would let anyone train or promote alone); the roles must be held by principals
    with keys (a role no key holder has can sign nothing); tiers and their evaluations must be
    known and named once.
    """
    top: Path = ("provenance",)
    training = raw.get("training", {})
    promotion = raw.get("promotion", {})
    training_cap = training.get("capability")
    promotion_cap = promotion.get("capability")
    for where, cap in (
        ((*top, "training", "capability"), training_cap),
        ((*top, "promotion", "capability"), promotion_cap),
    ):
        if cap is None:
            continue
        if cap not in capabilities:
            problem(
                where, f"unknown capability {cap!r}", "one of: " + ", ".join(sorted(capabilities))
            )
        elif not any(r.capability == cap and r.quorum.approvals > 0 for r in access_rules):
            problem(
                where,
                f"no access rule of {cap!r} needs approvals: one person alone could act",
                f"an access rule of {cap!r} with quorum.approvals of 1 or more",
            )
    if training_cap is not None and training_cap == promotion_cap:
        problem(
            (*top, "promotion", "capability"),
            f"{promotion_cap!r} is the training capability too",
            "a capability of its own for promotion (the serving rule)",
        )
    pipeline = _signer_roles((*top, "training", "pipeline_roles"), training, problem, principals)
    if training_cap is not None and "pipeline_roles" not in training:
        problem((*top, "training"), "no pipeline_roles: nobody can sign a run", "pipeline_roles")
    evaluators = _signer_roles(
        (*top, "evaluators", "roles"), raw.get("evaluators", {}), problem, principals, key="roles"
    )
    evaluation_ids: list[str] = []
    for i, e in enumerate(raw.get("evaluations", [])):
        if e["id"] in evaluation_ids:
            problem(
                (*top, "evaluations", i, "id"), f"duplicate evaluation {e['id']!r}", "each once"
            )
        else:
            evaluation_ids.append(e["id"])
    if evaluation_ids and not evaluators:
        problem((*top, "evaluators"), "evaluations but no evaluators", "evaluators: {roles: [...]}")
    tiers: list[ServedTier] = []
    seen: set[str] = set()
    for i, t in enumerate(raw.get("tiers", [])):
        path: Path = (*top, "tiers", i)
        cap = t["capability"]
        if cap not in capabilities:
            problem(
                (*path, "capability"),
                f"unknown capability {cap!r}",
                "one of: " + ", ".join(sorted(capabilities)),
            )
        elif cap in seen:
            problem((*path, "capability"), f"tier {cap!r} is listed twice", "each tier once")
        elif cap in (training_cap, promotion_cap):
            problem(
                (*path, "capability"),
                f"{cap!r} is the training or promotion capability, not a tier models serve in",
                "a capability tier of models",
            )
        seen.add(cap)
        limits: list[EvaluationLimit] = []
        for j, lim in enumerate(t.get("evaluations", [])):
            name = lim["evaluation"]
            if name not in evaluation_ids:
                problem(
                    (*path, "evaluations", j, "evaluation"),
                    f"unknown evaluation {name!r}",
                    "one of provenance.evaluations: " + (", ".join(evaluation_ids) or "(none)"),
                )
            elif any(x.evaluation == name for x in limits):
                problem(
                    (*path, "evaluations", j, "evaluation"),
                    f"evaluation {name!r} is listed twice for {cap!r}",
                    "each evaluation once per tier",
                )
            # The YAML reader refuses inf and nan, the schema bounds the number.
            below = lim.get("below")
            limits.append(EvaluationLimit(name, None if below is None else float(below)))
        tiers.append(ServedTier(cap, tuple(limits)))
    if tiers and promotion_cap is None:
        problem(
            (*top, "promotion"),
            "tiers serve only promoted weights, but no promotion capability is named",
            "promotion: {capability: ...}",
        )
    return ProvenanceRules(
        training_capability=training_cap,
        pipeline_roles=pipeline,
        evaluator_roles=evaluators,
        evaluations=tuple(evaluation_ids),
        promotion_capability=promotion_cap,
        tiers=tuple(tiers),
        notify=notify((*top, "notify"), raw.get("notify")),
    )


def _signer_roles(
    path: Path,
    raw: Mapping[str, Any],
    problem: Problem,
    principals: Sequence[Principal],
    *,
    key: str = "pipeline_roles",
) -> frozenset[str]:
    """The roles at ``raw[key]``, each held by a principal with a key (signers sign)."""
    refs: list[str] = raw.get(key, [])
    for j, role in enumerate(refs):
        holders = [p for p in principals if role in p.roles]
        if not holders:
            problem((*path, j), f"unknown role {role!r}: no principal holds it", None)
        elif not any(p.public_key is not None for p in holders):
            problem(
                (*path, j),
                f"no principal with role {role!r} has a key, so none can sign",
                "a key on a principal holding the role",
            )
    return frozenset(refs)
