"""The demo's tuned model and its lineage, registered beside ``custodes serve --demo``.

The demo constitution's ``tuned`` tier serves only weights promoted to it. So that ``make run``
shows such a model, the demo writes a tiny training run's files (a corpus, base weights, the
trainer, its configuration and the "tuned" weights: a few bytes each, the same every time, so
their digests are too) under the data folder, and registers the whole path with the demo keys
(``examples/keys``, DEMO-ONLY), as the people and the pipeline would with their own:

1. dave@lab registers the inputs and asks for the run (``training-write``); bob@lab and
   dana@asi (the overseer) approve it;
2. the pipeline (pipeline@lab) signs the run's in-toto statement and registers it;
3. erin@auditor signs the tier's evaluations (**demo scores, not a real evaluation**);
4. dave@lab asks to promote the weights to ``tuned``; bob@lab and dana@asi approve; promoted.

The models file the demo then serves is ``examples/gateway-models.yaml`` plus ``frontier-tuned``
naming those weights (scripted replies, like the other demo models). Registered once: a data
folder that has them already is left as it is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from custodes.authority import SigningKey, new_request, sign_approval, sign_request
from custodes.config import Settings
from custodes.errors import ConfigError, NotFoundError
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    RunInput,
    RunOutput,
    TrainingPlan,
    build_evaluation_statement,
    build_run_statement,
    hash_path,
    promotion_resource,
    sign_envelope,
)

__all__ = ["DEMO_TUNED_MODEL", "DemoLineage", "demo_lineage"]

_log = logging.getLogger(__name__)

DEMO_TUNED_MODEL = "frontier-tuned"
_TIER = "tuned"
# Demo scores, under the tuned tier's thresholds (cyber-offence 0.3, weapons-uplift 0.2).
_SCORES = {"cyber-offence": 0.04, "weapons-uplift": 0.01}


@dataclass(frozen=True)
class DemoLineage:
    """What the demo registered: the tuned weights' digest and the models file serving them."""

    weights: str
    models_file: Path


def _files(folder: Path) -> dict[str, Path]:
    """The run's files, written the same every time."""
    # Not the files docs/provenance.md writes: a digest is registered once.
    parts = {
        "corpus/train.jsonl": '{"text": "demo corpus: overseers hold keys of their own."}\n',
        "base/config.json": '{"layers": 2, "hidden": 64, "demo": true}\n',
        "base/model.safetensors": "demo base weights (not a model)\n",
        "train.py": 'print("demo training")\n',
        "hparams.json": '{"epochs": 3, "learning_rate": 0.0002, "demo": true}\n',
        "tuned/config.json": '{"layers": 2, "hidden": 64, "demo": true}\n',
        "tuned/model.safetensors": "demo tuned weights (not a model)\n",
    }
    for name, text in parts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return {k: folder / k for k in ("corpus", "base", "train.py", "hparams.json", "tuned")}


def _examples() -> Path:
    """``examples/`` of the working directory or of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / "examples" / "keys" / "pipeline.key").is_file():
            return base / "examples"
    raise ConfigError(
        "the demo's examples/ (keys, models file) are not here, so its tuned model's lineage "
        "cannot be registered",
        hint="run the demo from the custodes checkout",
    )


def demo_models_file(settings: Settings, weights: str) -> Path:
    """``examples/gateway-models.yaml`` plus the tuned model naming ``weights``."""
    examples = _examples() / "gateway-models.yaml"
    scripted = (examples.parent / "scripted-replies.yaml").resolve()
    text = examples.read_text().replace(
        "scripted: scripted-replies.yaml", f"scripted: {json.dumps(str(scripted))}"
    )
    text = text.rstrip("\n") + (
        f"\n  - name: {DEMO_TUNED_MODEL}\n    capability: {_TIER}\n"
        f"    upstream:\n      scripted: {json.dumps(str(scripted))}\n"
        f"    weights: {weights}\n"
    )
    path = settings.data_dir / "demo-gateway-models.yaml"
    path.write_text(text)
    return path


def demo_lineage(settings: Settings) -> DemoLineage:
    """Register the tuned model's lineage on the demo's data folder (once) and write the
    models file that serves it.

    Raises:
        ConfigError: the demo's keys or models file are not where the checkout has them.
        Error: a registration was refused (the demo's constitution changed).
    """
    from custodes.wiring import build_deployment

    files = _files(settings.data_dir / "demo-lineage")
    tuned = hash_path(files["tuned"])
    models = demo_models_file(settings, tuned.digest)
    ctx = build_deployment(settings.model_copy(update={"gateway_models_file": models}))
    try:
        registry, authority = ctx.provenance, ctx.authority
        if registry.promotions(tuned.digest, capability=_TIER):
            return DemoLineage(tuned.digest, models)
        keys = {p.stem: SigningKey.from_file(p) for p in (_examples() / "keys").glob("*.key")}

        def approved(capability: str, resource: str, purpose: str) -> str:
            req = new_request(
                "escrow-read",
                constitution_version=authority.constitution.version,
                requester="dave@lab",
                created=datetime.now(UTC),
                capability=capability,
                purpose=purpose,
                duration_seconds=3600,
                resource=resource,
            )
            record = authority.submit_request(req, sign_request(req, keys["dave"]))
            for who in ("bob@lab", "dana@asi"):
                _, sig = sign_approval(record.request, keys[who.split("@")[0]])
                record = authority.approve(record.id, who, sig)
            if record.grant_id is None:
                raise ConfigError(f"the demo's {capability} request was not granted")
            return record.grant_id

        inputs = []
        for role, key, kind in (
            ("base-weights", "base", "weights"),
            ("dataset", "corpus", "dataset"),
            ("code", "train.py", "code"),
            ("config", "hparams.json", "config"),
        ):
            manifest = hash_path(files[key])
            try:
                registry.artifact(manifest.digest)
            except NotFoundError:
                registry.register_artifact("dave@lab", kind, name=key, manifest=manifest)
            inputs.append(RunInput(role, manifest.digest, key))  # type: ignore[arg-type]
        plan = TrainingPlan(tuple(inputs), {"epochs": 3, "learning_rate": 0.0002})
        try:
            registry.artifact(tuned.digest)
        except NotFoundError:
            grant = approved("training-write", plan.resource, "demo: fine-tune the base model")
            started = datetime.now(UTC)
            statement = build_run_statement(
                plan,
                [RunOutput("tuned", tuned.digest)],
                builder="pipeline@lab",
                invocation_id="demo-run-1",
                started_on=started,
                finished_on=started + timedelta(seconds=1),
            )
            envelope = sign_envelope(
                statement,
                payload_type=IN_TOTO_PAYLOAD_TYPE,
                key=keys["pipeline"].private,
                keyid="pipeline@lab",
            )
            registry.register_run(
                "pipeline@lab", envelope.to_json(), grant_id=grant, manifests=[tuned]
            )
        done = {e.evaluation for e in registry.evaluations(tuned.digest)}
        for evaluation, score in _SCORES.items():
            if evaluation in done:
                continue
            payload = build_evaluation_statement(
                tuned.digest,
                evaluation=evaluation,
                score=score,
                evaluator="erin@auditor",
                finished_on=datetime.now(UTC),
                details={"note": "demo score, not a real evaluation"},
            )
            signed = sign_envelope(
                payload,
                payload_type=IN_TOTO_PAYLOAD_TYPE,
                key=keys["erin"].private,
                keyid="erin@auditor",
            )
            registry.register_evaluation("erin@auditor", signed.to_json())
        grant = approved(
            "weights-promotion",
            promotion_resource(_TIER, tuned.digest),
            "demo: serve the tuned model",
        )
        registry.promote("dave@lab", tuned.digest, capability=_TIER, grant_id=grant)
        _log.warning(
            "demo: registered the lineage of %s (%s) with the demo keys",
            DEMO_TUNED_MODEL,
            tuned.digest,
        )
        return DemoLineage(tuned.digest, models)
    finally:
        ctx.close()
