"""An amendment to ``provenance.tiers`` takes effect in a running gateway at once.

A real uvicorn server on the demo constitution serves ``frontier-tuned`` (tier ``tuned``, which
serves only promoted weights: a root promoted to it) and ``frontier-general`` (tier
``general``, no weights). The serving check re-checks only hourly here, so only the amendment
itself can stop the models: signed over HTTP by the lab and the overseer, it tightens ``tuned``'s
cyber-offence threshold under the model's score and adds ``general`` to the restricted tiers.
The next calls are refused, through the official openai client, without a restart.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from custodes.authority import SigningKey
from custodes.clock import SystemClock
from custodes.config import Settings
from custodes.gateway import CALL, WEIGHTS_REFUSED
from custodes.log import Entry
from custodes.provenance import hash_path
from custodes.server import create_app
from custodes.wiring import build_deployment
from tests.support.amend import amend_over_http
from tests.support.threaded import serve
from tests.unit.provenance.conftest import Pipeline, write_weights

ROOT = Path(__file__).resolve().parents[3]
TUNED_TIER = """  tiers:
    - capability: tuned
      evaluations:
        - {evaluation: cyber-offence, below: 0.3}
        - {evaluation: weapons-uplift, below: 0.2}
"""


def restricted(text: str) -> str:
    """The next version: tuned's cyber-offence threshold at 0.05; general serves only
    promoted weights too."""
    assert TUNED_TIER in text
    current = int(text.split("\nversion: ", 1)[1].split("\n", 1)[0])
    return text.replace(f"\nversion: {current}\n", f"\nversion: {current + 1}\n", 1).replace(
        TUNED_TIER,
        TUNED_TIER.replace("below: 0.3", "below: 0.05")
        + "    - capability: general\n      evaluations:\n        - {evaluation: cyber-offence}\n",
    )


def test_an_amended_tier_is_enforced_without_a_restart(tmp_path: Path) -> None:
    weights = hash_path(write_weights(tmp_path / "tuned", b"tuned"))
    scripted = ROOT / "examples" / "scripted-replies.yaml"
    (tmp_path / "models.yaml").write_text(
        "models:\n"
        f"  - name: frontier-tuned\n    capability: tuned\n    upstream: {{scripted: {scripted}}}\n"
        f"    weights: {weights.digest}\n"
        f"  - name: frontier-general\n    capability: general\n"
        f"    upstream: {{scripted: {scripted}}}\n"
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        demo=True,
        constitution_file=ROOT / "examples" / "constitution.yaml",
        gateway_models_file=tmp_path / "models.yaml",
        gateway_serving_check_s=3600,  # no re-check during the test: the amendment acts alone
        log_batch_wait_ms=0,
    )
    ctx = build_deployment(settings)
    server, thread, port = serve(create_app(settings, deployment=ctx))
    keys = {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}
    pipeline = Pipeline(ctx.provenance, ctx.authority, keys, SystemClock(), tmp_path)  # type: ignore[arg-type]
    api = {p: ctx.gateway.keys.create(p, name="test").secret for p in ("bob@lab", "dana@asi")}
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=ctx.gateway.keys.create("dave@lab", name="test").secret,
        max_retries=0,
        timeout=60,
    )

    def chat(model: str) -> str:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}]
        )
        return reply.choices[0].message.content or ""

    def refused(model: str) -> openai.PermissionDeniedError:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            chat(model)
        return caught.value

    try:
        r = ctx.provenance
        d = weights.digest
        r.register_artifact("dave@lab", "weights", name="tuned", manifest=weights)
        r.register_evaluation("erin@auditor", pipeline.evaluate(d, "cyber-offence", 0.1))
        r.register_evaluation("erin@auditor", pipeline.evaluate(d, "weapons-uplift", 0.05))
        promotion = pipeline.approve_promotion(d, "tuned")
        assert promotion is not None
        r.promote("dave@lab", d, capability="tuned", grant_id=promotion)
        assert chat("frontier-tuned") and chat("frontier-general")
        assert ctx.gateway.serving is not None
        cached = ctx.gateway.serving.cached((d, "tuned"))
        assert cached is not None and cached.approved

        base = f"http://127.0.0.1:{port}"
        version, _ = amend_over_http(base, [base], api, change=restricted)
        assert httpx.get(f"{base}/constitution", timeout=30).json()["version"] == version

        # The model that names no weights, now in a restricted tier: refused on the next call.
        general = refused("frontier-general")
        assert general.code == "weights_required"
        assert "serves only weights promoted to it" in general.message
        assert f"constitution version {version}" in general.message
        # The promoted model, now over its tier's tightened threshold: refused on the next call,
        # not at the next hourly re-check; the alarm says it served until then.
        tuned = refused("frontier-tuned")
        assert tuned.code == "weights_not_approved"
        assert "at or above the tier's threshold 0.05" in tuned.message
        log = ctx.log
        entries = [Entry.from_json(log.entry_data(i)) for i in range(log.size())]
        [alarm] = [e.body for e in entries if e.type == WEIGHTS_REFUSED]
        assert alarm["weights"] == d and alarm["was_approved"] is True
        calls = [e.body for e in entries if e.type == CALL][-2:]
        assert [(c["model"], c["outcome"]) for c in calls] == [
            ("frontier-general", "denied"),
            ("frontier-tuned", "denied"),
        ]
    finally:
        client.close()
        server.should_exit = True
        thread.join(20)
        ctx.close()
