"""The model-based tier through a real custodes gateway (uvicorn on loopback, the real openai
client) in front of a scripted judge model: judging calls are granted and logged like any
other call, the judge decides only the uncertain band, and a refused or over-budget judge
leaves the combined tier's verdict in place without raising."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.monitors import (
    CombinedDetector,
    JudgeCalibration,
    JudgedDetector,
    ModelJudge,
    default_registry,
    load_calibration,
    read_dataset,
)
from tests.integration.gateway.conftest import GatewayServer, running_gateway
from tests.support.demo_api import run_cli
from tests.support.judge_upstream import JudgeUpstream, judge_upstream


@pytest.fixture(scope="module")
def combined() -> CombinedDetector:
    det = default_registry().get("combined")
    assert isinstance(det, CombinedDetector)
    return det


@pytest.fixture(scope="module")
def band_text(combined: CombinedDetector, data_dir: Path) -> tuple[str, str]:
    """The first DEV coup text with a category in the uncertain band that a bare "yes"
    (no log-probabilities) lifts over the reporting threshold, and that category."""
    calibration = load_calibration()
    probe = JudgedDetector(combined, calibration, ModelJudge(None, "unused"))
    for example in read_dataset(data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl"):
        scores = combined.score_text(example.text)
        for category in probe.band(scores):
            lifted = JudgeCalibration().final(category, scores[category], math.log(99))
            if lifted >= calibration.categories[category].threshold(0.01):
                return example.text, category
    pytest.fail("no DEV text lies in the uncertain band")


@pytest.fixture
def deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GatewayServer, JudgeUpstream]]:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "unused")
    with judge_upstream() as upstream, running_gateway(tmp_path, upstream) as server:
        yield server, upstream


def _judged(
    server: GatewayServer, combined: CombinedDetector, principal: str, **kwargs: float
) -> JudgedDetector:
    client = server.client(server.key(principal), timeout=60)
    return JudgedDetector(
        combined, load_calibration(), ModelJudge(client, "frontier-general"), **kwargs
    )


def test_a_yes_reports_the_uncertain_category_and_the_call_is_logged(
    deployment: tuple[GatewayServer, JudgeUpstream],
    combined: CombinedDetector,
    band_text: tuple[str, str],
) -> None:
    server, upstream = deployment
    text, category = band_text
    det = _judged(server, combined, "alice@lab")
    upstream.answer, upstream.p_answer = "yes", 0.999
    found = {d.category: d for d in det.detect(text)}
    assert category in found and found[category].detector == "judged"
    assert float(found[category].details["judge_log_odds"]) > 6.0
    assert found[category].details["judge_method"] == "logprobs"
    # One judging call per uncertain category, through the gateway, logged as answered.
    assert det.stats.calls == len(upstream.bodies) >= 1
    calls = server.calls()
    assert len(calls) == det.stats.calls
    assert {c.principal for c in calls} == {"alice@lab"}
    assert all(c.body["outcome"] == "answered" for c in calls)
    # The judge read the view (task first, actions numbered) with the category's rubric.
    shown = upstream.bodies[0]["messages"][1]["content"]
    assert shown.index("TASK") < shown.index("ACTIONS:") < shown.index("Question:")
    assert upstream.bodies[0]["max_tokens"] == 1 and upstream.bodies[0]["logprobs"] is True
    assert det.stats.prompt_tokens > 0 and det.stats.judged_texts == 1


def test_a_no_clears_the_uncertain_category(
    deployment: tuple[GatewayServer, JudgeUpstream],
    combined: CombinedDetector,
    band_text: tuple[str, str],
) -> None:
    server, upstream = deployment
    text, category = band_text
    upstream.answer, upstream.p_answer = "no", 0.999
    found = {d.category for d in _judged(server, combined, "alice@lab").detect(text)}
    assert category not in found
    upstream.answer = "maybe"  # neither answer among the alternatives: no lean either way
    undecided = _judged(server, combined, "alice@lab")
    undecided.detect(text)
    assert undecided.stats.calls >= 1 and undecided.stats.failures == 0
    upstream.answer, upstream.logprobs = "yes", False  # the answer word alone still counts
    det = _judged(server, combined, "alice@lab")
    hit = [d for d in det.detect(text) if d.category == category]
    assert hit and hit[0].details["judge_method"] == "word"


def test_a_refused_judge_keeps_the_combined_verdict(
    deployment: tuple[GatewayServer, JudgeUpstream],
    combined: CombinedDetector,
    band_text: tuple[str, str],
) -> None:
    server, upstream = deployment
    text, _ = band_text
    det = _judged(server, combined, "vera@osvendor")  # no grant covers the judge model
    got = det.detect(text)
    assert [(d.category, d.score) for d in got] == [
        (d.category, d.score) for d in combined.detect(text)
    ]
    assert det.stats.failures >= 1 and det.stats.unjudged >= 1 and det.stats.calls == 0
    assert upstream.bodies == []


def test_over_the_hourly_cap_nothing_is_judged(
    deployment: tuple[GatewayServer, JudgeUpstream],
    combined: CombinedDetector,
    band_text: tuple[str, str],
) -> None:
    server, upstream = deployment
    text, _ = band_text
    det = _judged(server, combined, "alice@lab", max_mb_per_hour=len(text.encode()) / 1e6)
    det.detect(text)  # the first text fits the cap exactly
    assert det.stats.judged_texts == 1
    calls = len(upstream.bodies)
    again = text + "\n"  # another text (the same one would reuse its verdict, at no cost)
    assert [(d.category, d.score) for d in det.detect(again)] == [
        (d.category, d.score) for d in combined.detect(again)
    ]
    assert len(upstream.bodies) == calls and det.stats.unjudged == 1
    assert det.stats.texts == 2 and det.stats.judged_texts == 1


def test_eval_with_the_judge_through_the_gateway(
    deployment: tuple[GatewayServer, JudgeUpstream],
    band_text: tuple[str, str],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, upstream = deployment
    text, category = band_text
    rows = [
        json.loads(line)
        for line in (data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()[:12]
    ]
    rows.append({"id": "band", "text": text, "label": 1, "category": category})
    dataset = tmp_path / "small.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = [
        "monitors", "eval", str(dataset), "--no-held-out",
        "--judge-model", "frontier-general", "--judge-url", f"{server.base_url}/v1",
    ]  # fmt: skip
    monkeypatch.setenv("CUSTODES_JUDGE_API_KEY", "")
    code, _, err = run_cli(args, capsys)
    assert code != 0 and "CUSTODES_JUDGE_API_KEY" in err
    assert upstream.bodies == []
    monkeypatch.setenv("CUSTODES_JUDGE_API_KEY", server.key("alice@lab"))
    upstream.answer, upstream.p_answer = "yes", 0.999
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    assert "texts judged" in err and "judge 'frontier-general'" in err
    assert json.loads(out)["figures_are"].startswith("unseen")
    assert len(upstream.bodies) >= 1 and len(server.calls()) == len(upstream.bodies)


def test_judge_calibrate_fits_a_judge_that_knows_and_eval_uses_it(
    deployment: tuple[GatewayServer, JudgeUpstream],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, upstream = deployment
    lines = (data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl").read_text(
        encoding="utf-8"
    )
    rows = [json.loads(line) for line in lines.splitlines()[:160]]
    for r in rows:  # the scripted judge "knows" the label through a marker in the task
        if r.get("label") == 1:
            for m in r["messages"]:
                if m["role"] == "user":
                    m["content"] = str(m["content"]) + f" (case {r['category']})"
                    break
    dataset = tmp_path / "held.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    upstream.decide = lambda body: "yes" if "(case " in str(body["messages"][1]) else "no"
    monkeypatch.setenv("CUSTODES_JUDGE_API_KEY", server.key("alice@lab"))
    out = tmp_path / "judge.json"
    args = ["monitors", "judge-calibrate", str(dataset), "--judge-model", "frontier-general",
            "--judge-url", f"{server.base_url}/v1", "--out", str(out)]  # fmt: skip
    code, printed, err = run_cli(args, capsys)
    assert code == 0, err
    cal = JudgeCalibration.from_json(out.read_text(encoding="utf-8"), where=str(out))
    assert cal.model == "frontier-general" and "wrote" in printed
    assert len(upstream.bodies) == len(server.calls()) >= 10
    fitted = {k: c.coef for k, c in cal.categories.items() if c.coef != (1.0, 1.0, 0.0)}
    assert fitted and all(b > 0 for _, b, _ in fitted.values()), cal.categories
    code, _, err = run_cli(
        ["monitors", "eval", str(dataset), "--no-held-out", "--json",
         "--judge-model", "frontier-general", "--judge-url", f"{server.base_url}/v1",
         "--judge-calibration", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0, err


def test_scan_with_the_judge_the_settings_name(
    deployment: tuple[GatewayServer, JudgeUpstream],
    band_text: tuple[str, str],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``custodes scan --detector judged``: the judge the settings name, asked through the
    gateway by each of two worker processes; a missing model or key is an error before any
    file is read; a Dask scan refuses the judge."""
    server, upstream = deployment
    text, category = band_text
    dev = data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl"
    [row] = [e for e in read_dataset(dev) if e.text == text][:1]
    raw = {json.loads(line)["id"]: line for line in dev.read_text(encoding="utf-8").splitlines()}
    transcripts = tmp_path / "transcripts.jsonl"
    transcripts.write_text(raw[row.id] + "\n", encoding="utf-8")
    monkeypatch.setenv("CUSTODES_DEMO", "true")
    monkeypatch.chdir(tmp_path)
    d = ["--data-dir", str(tmp_path / "scan-data")]
    scan = [*d, "scan", str(transcripts), "--actor", "alice@lab", "--detector", "judged"]
    for name in ("MODEL", "URL", "KEY_ENV"):
        monkeypatch.delenv(f"CUSTODES_MONITOR_JUDGE_{name}", raising=False)
    code, _, err = run_cli(scan, capsys)
    assert code != 0 and "CUSTODES_MONITOR_JUDGE_MODEL" in err and "Traceback" not in err
    monkeypatch.setenv("CUSTODES_MONITOR_JUDGE_MODEL", "frontier-general")
    monkeypatch.setenv("CUSTODES_MONITOR_JUDGE_URL", f"{server.base_url}/v1")
    monkeypatch.setenv("CUSTODES_MONITOR_JUDGE_KEY_ENV", "TEST_MONITOR_KEY")
    monkeypatch.delenv("TEST_MONITOR_KEY", raising=False)
    code, _, err = run_cli(scan, capsys)
    assert code != 0 and "TEST_MONITOR_KEY" in err
    code, _, err = run_cli([*scan, "--dask", "local:1"], capsys)
    assert code != 0 and "Dask scan does not run the judged" in err
    assert upstream.bodies == [] and not (tmp_path / "scan-data" / "custodes.db").exists()

    monkeypatch.setenv("TEST_MONITOR_KEY", server.key("alice@lab"))
    upstream.answer, upstream.p_answer = "yes", 0.999
    code, out, err = run_cli([*scan, "--workers", "2"], capsys)
    assert code == 0, err
    assert "1 record(s)" in out and "2 workers judged" in out
    # Every judging call went through the gateway, granted and logged for the principal.
    calls = server.calls()
    assert len(calls) == len(upstream.bodies) >= 1
    assert {c.principal for c in calls} == {"alice@lab"}
    assert all(c.body["outcome"] == "answered" for c in calls)
    code, out, _ = run_cli([*d, "review", "list", "--json", "--as", "frank@cyberdef"], capsys)
    assert code == 0
    assert [(r["detector"], r["category"]) for r in json.loads(out)] == [("judged", category)]

    # One worker (in this process), the model from --judge-model: the scan prints the cost.
    calls_before = len(upstream.bodies)
    code, out, err = run_cli(
        [*d, "scan", str(transcripts), "--actor", "alice@lab", "--restart", "--workers", "1",
         "--judge-model", "frontier-general"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "judge 'frontier-general': 1 of 1 texts judged" in out
    assert len(server.calls()) == len(upstream.bodies) > calls_before
