"""The gateway serves a model that names its weights only if the registry approves them.

A real uvicorn server (in a thread, so the test holds the deployment) on the demo constitution
with ``general`` among the tiers that serve only promoted weights, and a models file whose
routes name weights digests: the weights of an approved training run, a root (base weights
nobody trained here), a digest nothing is registered under, and a model of another tier that
names none. Calls through the official openai client: refused with an OpenAI-shaped 403 until
the run is registered, evaluated and promoted, answered after, refused again once a stored
envelope is changed or an overseer's evaluation crosses the tier's threshold (on the next
re-check); every call's log entry carries the digest.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest
import sqlalchemy as sa

from custodes.authority import SigningKey
from custodes.clock import SystemClock
from custodes.config import Settings
from custodes.gateway import CALL, CALL_START, WEIGHTS_REFUSED
from custodes.log import Entry
from custodes.provenance import Attester, FileManifest, hash_path, serve_attester
from custodes.server import create_app
from custodes.wiring import Deployment, build_deployment
from tests.support.threaded import serving
from tests.unit.provenance.conftest import Pipeline, write_weights

ROOT = Path(__file__).resolve().parents[3]
UNKNOWN = "sha256:" + "5" * 64
MODELS = ["frontier-general", "root-model", "unknown-model", "attested-model", "plain-model"]
SERVER_KEY = SigningKey.generate()  # the attested model server's workload key


@dataclass
class Served:
    ctx: Deployment
    client: openai.OpenAI
    pipeline: Pipeline
    tuned: FileManifest
    root: FileManifest
    attested: Path
    attester: Attester

    def entries(self, types: tuple[str, ...] = (CALL,)) -> list[Entry]:
        log = self.ctx.log
        found = [Entry.from_json(log.entry_data(i)) for i in range(log.size())]
        return [e for e in found if e.type in types]

    def chat(self, model: str) -> str:
        reply = self.client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}]
        )
        return reply.choices[0].message.content or ""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Everything started is stopped on the way out, also when the fixture fails half-way
    # (a started attester left behind re-hashes a directory pytest later removes).
    with contextlib.ExitStack() as stack:
        yield _serve(tmp_path_factory.mktemp("serving"), stack)


def _serve(tmp: Path, stack: contextlib.ExitStack) -> Served:
    # The weights the run will produce exist (and are hashed) before anything is registered:
    # the model server starts before its run is registered.
    tuned = hash_path(write_weights(tmp / "out-tuned", b"tuned"))
    root = hash_path(write_weights(tmp / "root", b"root"))
    # The attested model's server loaded these; its sidecar hashes them every 50 ms.
    attested = write_weights(tmp / "attested", b"attested")
    attester = stack.enter_context(
        Attester(
            attested,
            server="modelserver@lab",
            key=SERVER_KEY.private,
            clock=lambda: datetime.now(UTC),
            rehash_s=0.05,
        )
    )
    sidecar = serve_attester(attester, "127.0.0.1", 0)
    stack.callback(sidecar.server_close)
    threading.Thread(target=sidecar.serve_forever, daemon=True).start()
    stack.callback(sidecar.shutdown)
    scripted = ROOT / "examples" / "scripted-replies.yaml"
    routes = {
        "frontier-general": tuned.digest,
        "root-model": root.digest,
        "unknown-model": UNKNOWN,
        "attested-model": attester.digest,
        "plain-model": None,
    }
    lines = ["models:"]
    for name, weights in routes.items():
        lines += [
            f"  - name: {name}",
            f"    capability: {'plain' if weights is None else 'general'}",
            f"    upstream: {{scripted: {scripted}}}",
        ]
        if weights is not None:
            lines.append(f"    weights: {weights}")
        if name == "attested-model":
            lines.append(
                f"    attestation: {{url: 'http://127.0.0.1:{sidecar.server_address[1]}"
                "/attestation', signer: modelserver@lab}"
            )
    (tmp / "models.yaml").write_text("\n".join(lines) + "\n")
    text = (ROOT / "examples" / "constitution.yaml").read_text()
    marker = "models: [frontier-general, frontier-local]"
    assert marker in text
    text = text.replace(marker, f"models: [{', '.join(MODELS[:4])}]")
    text = text.replace(
        "  - id: dana@asi\n",
        "  - id: modelserver@lab\n    organisation: lab\n    kind: workload\n"
        f"    roles: [model-server]\n    key: {SERVER_KEY.public_key}\n  - id: dana@asi\n",
        1,
    )
    # A tier of its own for the model that names no weights (general serves only promoted
    # weights here), open to everyone as general is.
    text = text.replace(
        "  - id: cyber-frontier\n",
        "  - id: plain\n    models: [plain-model]\n    actions: [chat]\n  - id: cyber-frontier\n",
        1,
    ).replace(
        "  - id: cyber-frontier-lab\n",
        "  - id: plain-use\n    capability: plain\n    requesters: {roles: [engineer]}\n"
        "    quorum: {approvals: 0}\n    max_duration: 30d\n  - id: cyber-frontier-lab\n",
        1,
    )
    text = text.split("\n  tiers:\n")[0] + "\n  tiers:\n    - capability: general\n"
    text += "      evaluations:\n"
    text += "        - {evaluation: cyber-offence, below: 0.3}\n"
    (tmp / "constitution.yaml").write_text(text)
    settings = Settings(
        data_dir=tmp / "data",
        demo=True,
        constitution_file=tmp / "constitution.yaml",
        gateway_models_file=tmp / "models.yaml",
        gateway_serving_check_s=1,
        log_batch_wait_ms=0,
    )
    ctx = build_deployment(settings)
    stack.callback(ctx.close)
    url = stack.enter_context(serving(create_app(settings, deployment=ctx)))
    keys = {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}
    pipeline = Pipeline(ctx.provenance, ctx.authority, keys, SystemClock(), tmp)  # type: ignore[arg-type]
    client = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key=ctx.gateway.keys.create("dave@lab", name="test").secret,
        max_retries=0,
        timeout=60,
    )
    stack.callback(client.close)
    return Served(ctx, client, pipeline, tuned, root, attested, attester)


def _refused(served: Served, model: str) -> openai.PermissionDeniedError:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        served.chat(model)
    return caught.value


def _alarms(served: Served, d: str) -> list[dict[str, Any]]:
    """The bodies of the ``gateway.weights_refused/v1`` alarms for the weights ``d``."""
    return [e.body for e in served.entries((WEIGHTS_REFUSED,)) if e.body["weights"] == d]


def _wait_for(served: Served, d: str, approved: bool) -> None:
    assert served.ctx.gateway.serving is not None
    deadline = time.monotonic() + 60
    while (v := served.ctx.gateway.serving.cached((d, "general"))) is None or (
        v.approved != approved
    ):
        assert time.monotonic() < deadline, f"the re-check never turned {approved}"
        time.sleep(0.05)


def test_weights_serve_only_once_promoted_and_stop_when_changed_or_crossed(
    served: Served,
) -> None:
    d = served.tuned.digest
    r = served.ctx.provenance
    p = served.pipeline
    # Before the run is registered: refused, with the reason, and logged with the digest.
    refused = _refused(served, "frontier-general")
    assert refused.status_code == 403 and refused.code == "weights_not_approved"
    assert f"no artifact {d} is registered" in refused.message
    last = served.entries()[-1].body
    assert last["outcome"] == "denied" and last["weights"] == d and last["status"] == 403
    assert served.ctx.gateway.serving is not None
    assert served.ctx.gateway.serving.cached((d, "general")) is None  # not cached
    # Alarmed once (the refusal of every call is in its own entry), not once per call.
    _refused(served, "frontier-general")
    [alarm] = _alarms(served, d)
    assert alarm["was_approved"] is False and alarm["models"] == ["frontier-general"]
    assert f"no artifact {d} is registered" in alarm["reasons"][0]

    # The whole path: inputs, a two-organisation approval, the pipeline's signed run.
    inputs = p.register_inputs()
    plan = inputs.plan()
    grant = p.request(plan)
    assert grant is not None
    r.register_run(
        "pipeline@lab",
        p.sign(p.statement(plan, served.tuned)),
        grant_id=grant,
        manifests=[served.tuned],
    )
    # Trained, but not promoted: still refused, and alarmed once for the new reason.
    assert f"{d} is not promoted to 'general'" in _refused(served, "frontier-general").message
    _refused(served, "frontier-general")
    alarms = _alarms(served, d)
    assert len(alarms) == 2 and f"{d} is not promoted to 'general'" in alarms[1]["reasons"][0]
    # The auditor's evaluation, then a promotion under the serving rule (lab + overseer).
    r.register_evaluation("erin@auditor", p.evaluate(d, "cyber-offence", 0.1))
    promotion = p.approve_promotion(d, "general")
    assert promotion is not None
    r.promote("dave@lab", d, capability="general", grant_id=promotion)
    assert served.chat("frontier-general")
    last = served.entries()[-1].body
    assert last["outcome"] == "answered" and last["weights"] == d
    verdict = served.ctx.gateway.serving.cached((d, "general"))
    assert verdict is not None and verdict.approved and verdict.reasons == ()

    # Streamed: both of its entries carry the digest.
    stream = served.client.chat.completions.create(
        model="frontier-general", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    start, end = served.entries((CALL, CALL_START))[-2:]
    assert start.type == CALL_START and start.body["weights"] == d
    assert end.type == CALL and end.body["weights"] == d and end.body["outcome"] == "answered"

    # A stored envelope changed by one byte: the next re-check (every second here) refuses.
    with served.ctx.engine.begin() as conn:
        original = conn.execute(sa.text("SELECT envelope FROM provenance_runs")).scalar_one()
        env = bytearray(original)
        env[len(env) // 2] ^= 0x01
        conn.execute(sa.text("UPDATE provenance_runs SET envelope = :e"), {"e": bytes(env)})
    _wait_for(served, d, approved=False)
    refused = _refused(served, "frontier-general")
    assert refused.code == "weights_not_approved"
    assert "envelope" in refused.message
    assert served.entries()[-1].body["weights"] == d
    # The alarm every overseer sees: once, when the verdict changed (not per refused call).
    _refused(served, "frontier-general")
    alarms = _alarms(served, d)
    assert len(alarms) == 3, alarms
    assert alarms[2]["was_approved"] is True and alarms[2]["models"] == ["frontier-general"]
    assert alarms[2]["capability"] == "general"
    assert any("envelope" in r for r in alarms[2]["reasons"])

    # Put back, it serves again; then an overseer's evaluation crosses the tier's threshold.
    with served.ctx.engine.begin() as conn:
        conn.execute(sa.text("UPDATE provenance_runs SET envelope = :e"), {"e": original})
    _wait_for(served, d, approved=True)
    assert served.chat("frontier-general")
    r.register_evaluation("dana@asi", p.evaluate(d, "cyber-offence", 0.6, evaluator="dana@asi"))
    _wait_for(served, d, approved=False)
    refused = _refused(served, "frontier-general")
    assert "cyber-offence scored 0.6" in refused.message
    alarms = _alarms(served, d)
    assert len(alarms) == 4 and alarms[3]["was_approved"] is True
    assert any("at or above the tier's threshold 0.3" in x for x in alarms[3]["reasons"])


def test_root_weights_and_unknown_weights_are_refused(served: Served) -> None:
    root = served.ctx.provenance.register_artifact(
        "dave@lab", "weights", name="downloaded-base", manifest=served.root
    )
    refused = _refused(served, "root-model")
    assert refused.code == "weights_not_approved"
    assert f"{root.digest} is not promoted to 'general' (it is a root registered by dave@lab" in (
        refused.message
    )
    assert served.entries()[-1].body["weights"] == root.digest
    refused = _refused(served, "unknown-model")
    assert f"no artifact {UNKNOWN} is registered" in refused.message
    _refused(served, "unknown-model")
    assert [a["models"] for a in _alarms(served, UNKNOWN)] == [["unknown-model"]]
    # A model that names no weights, in a tier that does not require them, is served as
    # before; its entries say so.
    assert served.chat("plain-model")
    assert served.entries()[-1].body["weights"] is None


def test_an_attested_model_stops_serving_when_its_server_loads_other_weights(
    served: Served,
) -> None:
    r = served.ctx.provenance
    p = served.pipeline
    d = served.attester.digest
    # Root weights, promoted explicitly: evaluated, then approved by the lab and the overseer.
    r.register_artifact("dave@lab", "weights", name="attested", manifest=hash_path(served.attested))
    r.register_evaluation("erin@auditor", p.evaluate(d, "cyber-offence", 0.05))
    promotion = p.approve_promotion(d, "general")
    assert promotion is not None
    r.promote("dave@lab", d, capability="general", grant_id=promotion)
    assert served.chat("attested-model")  # not cached before (not promoted): checked now
    assert served.entries()[-1].body["weights"] == d
    # The server now loads other bytes (one flipped): its sidecar attests another digest, and
    # the next serving check refuses the model, with an alarm.
    shard = served.attested / "shard-01.bin"
    data = bytearray(shard.read_bytes())
    data[7] ^= 0x01
    shard.write_bytes(bytes(data))
    _wait_for(served, d, approved=False)
    refused = _refused(served, "attested-model")
    assert "the model server (modelserver@lab) attests it serves weights sha256:" in refused.message
    assert f"not the declared {d}" in refused.message
    # The first alarm: nothing was registered under the digest when the gateway started.
    alarms = _alarms(served, d)
    assert [a["was_approved"] for a in alarms] == [False, True], alarms
    assert alarms[1]["models"] == ["attested-model"]
