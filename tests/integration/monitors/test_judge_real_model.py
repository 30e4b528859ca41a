"""Opt-in (``-m real_model``): the model tier with SmolLM2-135M-Instruct (the demo's small
local model, tests/support/smol_upstream.py) behind the gateway. A 135M model is no reliable
judge (benchmarks/monitors_judge.py measures how little it separates); this checks the whole
path with a real model: the view and rubric fit its context, its first-token
log-probabilities come back through the gateway, and the call is logged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from custodes.monitors import ModelJudge, read_dataset
from tests.integration.gateway.conftest import running_gateway
from tests.support.smol_upstream import SmolUpstream

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


def test_a_real_model_judges_through_the_gateway(
    smol: SmolUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "unused")
    example = next(
        e
        for e in read_dataset(data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl")
        if e.category == "oversight_evasion"
    )
    with running_gateway(tmp_path, smol, timeout_s=600) as server:
        judge = ModelJudge(server.client(server.key("alice@lab"), timeout=600), "frontier-general")
        answer = judge.ask(example.text, "oversight_evasion")
        assert answer.method == "logprobs" and math.isfinite(answer.log_odds)
        assert 100 < answer.prompt_tokens < 8192  # the bounded view fits SmolLM2's context
        [call] = server.calls()
        assert call.principal == "alice@lab" and call.body["outcome"] == "answered"
