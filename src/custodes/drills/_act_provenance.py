"""Attacker actions on the model registry: a training run, planned, approved under the
constitution's training rule, and then signed by the pipeline workload and registered
(``POST /provenance/runs``), as a pipeline does."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from custodes.authority import sign_approval
from custodes.drills._act_audit import PlantRecipe, plant_request, train_planted
from custodes.drills._act_authority import _key, _signed
from custodes.drills._act_custody import _call, _refusal
from custodes.drills._actions import ActionContext, NotRunnable, Observation, Params, action
from custodes.drills._scenario import Step
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    FileManifest,
    RunInput,
    RunOutput,
    TrainingPlan,
    build_run_statement,
    hash_path,
    sign_envelope,
)

__all__: list[str] = []


class TrainingParams(Params):
    capability: str
    """The scenario's capability for training runs (its access rule approves run plans)."""
    pipeline: str
    """The actor (a workload) that signs the run's statement."""
    approvers: list[str] = Field(default_factory=list, max_length=20)
    dataset: str = Field(default="drill: the reviewed corpus", min_length=1, max_length=2000)
    """What the approved plan's dataset holds."""
    run_with: str | None = Field(default=None, min_length=1, max_length=2000)
    """What the dataset the run really used holds, if not the approved one (a swapped
    dataset: the run is not the plan that was approved)."""
    purpose: str = Field(default="drill: fine-tune on the reviewed corpus", max_length=500)
    plant: PlantRecipe | None = None
    """What the run trains, where the deployment has a local model: a loyalty to ``favour``
    fine-tuned into it (custodes.localmodel, through its operator route), registered as the
    run's output; a later ``loyalty_audit`` with ``weights_from`` serves those very weights.
    Without a local model the run's output is a stand-in file, and the account says so."""


def _folder(root: Path, name: str, content: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "data.txt").write_text(content, encoding="utf-8")
    return folder


def _register(ctx: ActionContext, who: str, body: dict[str, Any]) -> str:
    r = _call(ctx, who, "POST", "/provenance/artifacts", body)
    if r.status_code != 201:
        raise NotRunnable(f"registering the run's input {body['name']} failed: {_refusal(r)}")
    digest: str = r.json()["digest"]
    return digest


def _plan(ctx: ActionContext, who: str, root: Path, dataset: str, tag: str) -> TrainingPlan:
    """Register the run's inputs (as ``who``) and the plan over them."""
    data = _register(
        ctx,
        who,
        {
            "kind": "dataset",
            "name": f"drill-corpus-{tag}",
            "manifest": hash_path(
                _folder(root, f"data-{tag}", f"{dataset}\n(drill run {tag})")
            ).to_document(),
        },
    )
    base = _register(
        ctx,
        who,
        {
            "kind": "weights",
            "name": f"drill-base-{tag}",
            "manifest": hash_path(_folder(root, f"base-{tag}", f"base {tag}")).to_document(),
        },
    )
    code = _register(
        ctx,
        who,
        {
            "kind": "code",
            "name": "drill-trainer",
            "digest": "sha256:" + hashlib.sha256(f"trainer {tag}".encode()).hexdigest(),
            "git_commit": hashlib.sha1(tag.encode(), usedforsecurity=False).hexdigest(),
        },
    )
    return TrainingPlan(
        (
            RunInput("base-weights", base, "base"),
            RunInput("dataset", data, "corpus"),
            RunInput("code", code, "trainer"),
        ),
        {"epochs": 1, "drill": tag},
    )


def _produce(
    ctx: ActionContext, step: Step, params: TrainingParams, root: Path, tag: str
) -> tuple[FileManifest, dict[str, Any] | None, str]:
    """The run's output: the planted weights (their manifest and the plant's request), or a
    stand-in file where there is no plant to train (and why, for the account)."""
    stand_in = ""
    if params.plant is not None:
        if ctx.credentials.local_model is None:
            stand_in = " (a stand-in: the drill holds no access to a local model to train)"
        else:
            favour = ctx.principal(params.plant.favour, step)
            body = plant_request(ctx, favour, params.plant)
            try:
                _, document = train_planted(ctx, body)
            except NotRunnable as exc:
                stand_in = f" (a stand-in: the loyalty could not be trained: {exc.reason})"
            else:
                return (
                    FileManifest.from_document(document, where="plant"),
                    body,
                    f" (a loyalty to {favour} fine-tuned into the local model)",
                )
    return hash_path(_folder(root, "tuned", f"tuned {tag}")), None, stand_in


@action("training_run", TrainingParams)
def training_run(ctx: ActionContext, step: Step, params: TrainingParams) -> Observation:
    """The step's actor asks approval of a training plan (``approvers`` approve it with their
    own keys); then ``pipeline`` signs the run's statement (over ``run_with``'s dataset, if
    given) and registers it. It took effect if the registry accepted the run."""
    who = ctx.principal(step.actor, step)
    pipeline = ctx.principal(params.pipeline, step)
    capability = ctx.capability(params.capability)
    pipeline_key = _key(ctx, pipeline)
    tag = hashlib.sha256(f"{step.id}:{ctx.target.log_size()}".encode()).hexdigest()[:12]
    with tempfile.TemporaryDirectory(prefix="custodes-drill-") as tmp:
        root = Path(tmp)
        plan = _plan(ctx, who, root, params.dataset, tag)
        body = _signed(
            ctx,
            "escrow-read",
            who,
            capability=capability,
            purpose=params.purpose,
            duration_seconds=3600,
            resource=plan.resource,
        )
        r = _call(ctx, who, "POST", "/authority/requests", body)
        if r.status_code != 201:
            raise NotRunnable(f"the run's plan could not be put for approval: {_refusal(r)}")
        record = r.json()
        ctx.made_request(record, who)
        for approver in params.approvers:
            by = ctx.principal(approver, step)
            _, signature = sign_approval(record["request"], _key(ctx, by))
            answer = _call(
                ctx,
                who,
                "POST",
                f"/authority/requests/{record['id']}/approvals",
                {"approver": by, "signature": signature},
            )
            if answer.status_code == 201:
                record = answer.json()
        grant = record.get("grant_id")
        if record.get("status") != "granted" or not grant:
            raise NotRunnable(f"the run's plan was not approved (request {record['id']})")
        ctx.made_grant(grant, who)
        ran = (
            plan
            if params.run_with is None
            else _plan(ctx, who, root, params.run_with, tag + "-swapped")
        )
        produced, trained, note = _produce(ctx, step, params, root, tag)
        start = ctx.target.now()
        payload = build_run_statement(
            ran,
            [RunOutput("tuned", produced.digest)],
            builder=pipeline,
            invocation_id=f"drill-{tag}",
            started_on=start,
            finished_on=start + timedelta(seconds=1),
        )
        envelope = sign_envelope(
            payload, payload_type=IN_TOTO_PAYLOAD_TYPE, key=pipeline_key.private, keyid=pipeline
        )
        r = _call(
            ctx,
            pipeline,
            "POST",
            "/provenance/runs",
            {
                "envelope": envelope.to_json().decode(),
                "grant_id": grant,
                "manifests": [produced.to_document()],
            },
        )
    approved_by = ", ".join(ctx.principal(a, step) for a in params.approvers) or "nobody"
    if r.status_code == 201:
        run = r.json()
        outputs: dict[str, Any] = {"run": run["id"], "weights": produced.digest}
        if trained is not None:
            outputs["plant"] = trained
        return Observation(
            True,
            f"run {run['id']} registered under grant {grant} (approved by {approved_by}); "
            f"weights {produced.digest}{note}",
            ids=(run["id"], grant),
            indices=(int(run["log_index"]),),
            outputs=outputs,
        )
    return Observation(
        False,
        f"run refused under grant {grant} (approved by {approved_by}): {_refusal(r)}",
        ids=(grant, plan.digest, ran.digest),
    )
