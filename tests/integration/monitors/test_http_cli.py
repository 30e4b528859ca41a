"""Monitors end to end: the API on a real server (uvicorn on loopback) with the demo
constitution's organisations, and the CLI (scan, review, eval checked against score.py,
linking a detection to a finding registered with custody)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.demo_api import call, demo_server_with_keys, run_cli
from tests.support.server import ServerProcess
from tests.unit.monitors.test_vuln import ASAN, KASAN, PY_TRACEBACK

PRINCIPALS = ("alice@lab", "frank@cyberdef", "dana@asi", "grace@bankcert")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    with demo_server_with_keys(tmp_path_factory.mktemp("monitors-server"), PRINCIPALS) as found:
        yield found


def test_review_queue_over_http(server: tuple[ServerProcess, dict[str, str]]) -> None:
    srv, keys = server
    r = call(
        srv,
        keys["alice@lab"],
        "POST",
        "/monitors/screen",
        {"text": PY_TRACEBACK + ASAN, "source": "session-42"},
    )
    assert r.status_code == 201, r.text
    [d] = r.json()["detections"]
    assert d["category"] == "vuln_discovery" and d["actor_organisation"] == "lab"
    # Every reviewer of the demo constitution is outside the lab.
    assert d["reviewers"] == [
        "dana@asi",
        "erin@auditor",
        "frank@cyberdef",
        "heidi@unilab",
        "oscar@cyberdef",
    ]
    det = d["id"]
    ids = [
        x["id"]
        for x in call(srv, keys["frank@cyberdef"], "GET", "/monitors/review").json()["detections"]
    ]
    assert ids == [det]
    assert call(srv, keys["grace@bankcert"], "GET", "/monitors/review").json() == {"detections": []}
    assert call(srv, keys["grace@bankcert"], "GET", f"/monitors/review/{det}").status_code == 403
    assert call(srv, keys["dana@asi"], "GET", f"/monitors/review/{det}").json()["id"] == det
    r = call(
        srv, keys["alice@lab"], "POST", f"/monitors/review/{det}/resolve", {"reason": "mine, fine"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "separation_of_duties"
    r = call(srv, keys["frank@cyberdef"], "POST", f"/monitors/review/{det}/resolve", {})
    assert r.status_code == 400 and r.json()["error"]["expected"] == "reason XOR finding_id"
    r = call(
        srv,
        keys["frank@cyberdef"],
        "POST",
        f"/monitors/review/{det}/resolve",
        {"finding_id": "CUSTODES-2026-9999"},
    )
    assert r.status_code == 404
    r = call(
        srv,
        keys["frank@cyberdef"],
        "POST",
        f"/monitors/review/{det}/resolve",
        {"reason": "a deliberately planted regression fixture"},
    )
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    r = call(srv, keys["dana@asi"], "POST", f"/monitors/review/{det}/resolve", {"reason": "again"})
    assert r.status_code == 409
    assert call(srv, keys["dana@asi"], "GET", "/monitors/review").json() == {"detections": []}
    everything = call(srv, keys["dana@asi"], "GET", "/monitors/review?status=all").json()
    assert [x["status"] for x in everything["detections"]] == ["dismissed"]


def test_bad_requests(server: tuple[ServerProcess, dict[str, str]]) -> None:
    srv, keys = server
    assert call(srv, None, "GET", "/monitors/review").status_code == 401
    r = call(srv, keys["alice@lab"], "POST", "/monitors/screen", {"text": ""})
    assert r.status_code == 422 and r.json()["error"]["where"] == "body.text"
    r = call(
        srv, keys["alice@lab"], "POST", "/monitors/screen", {"text": "x", "detectors": ["nope"]}
    )
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = call(srv, keys["alice@lab"], "GET", "/monitors/review?status=weird")
    assert r.status_code == 422
    assert call(srv, keys["alice@lab"], "GET", "/monitors/review/det-missing").status_code == 404
    names = [
        d["name"]
        for d in call(srv, keys["alice@lab"], "GET", "/monitors/detectors").json()["detectors"]
    ]
    assert names == ["combined", "coup_rules", "learned", "vuln_rules"]


def test_cli_scan_review_and_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODES_DEMO", "true")
    monkeypatch.chdir(tmp_path)
    d = ["--data-dir", str(tmp_path / "data")]
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    chats = transcripts / "agent.jsonl"
    chats.write_text(
        "".join(
            json.dumps({"messages": [{"role": "tool", "content": t}]}) + "\n"
            for t in (PY_TRACEBACK, ASAN)
        )
        + "{broken\n"
    )
    (transcripts / "console.txt").write_text(KASAN)
    code, out, err = run_cli([*d, "scan", str(transcripts), "--actor", "alice@lab"], capsys)
    assert code == 0, err
    assert "2 detection(s)" in out and "1 malformed record(s)" in out
    assert f"{chats}:3" in err and "Traceback" not in err
    code, out, _ = run_cli([*d, "scan", str(transcripts), "--actor", "alice@lab"], capsys)
    assert code == 0 and "2 already complete" in out and "0 detection(s)" in out
    code, out, _ = run_cli([*d, "review", "list", "--json", "--as", "frank@cyberdef"], capsys)
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2
    first, second = rows
    spec = tmp_path / "finding.json"
    spec.write_text(
        json.dumps(
            {
                "title": "Use-after-free in function_a",
                "vendor": "Operating System Vendor",
                "product": "libfoo",
                "versions": ["< 2.0"],
                "cwe": "CWE-416",
                "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                "finder": "alice@lab",
                "model": "frontier-cyber",
                "session": "s1",
                "policy": "project-zero",
            }
        )
    )
    poc = tmp_path / "poc.bin"
    poc.write_bytes(b"PoC")
    code, out, err = run_cli(
        [
            *d,
            "findings",
            "register",
            "--file",
            str(spec),
            "--details",
            str(poc),
            "--as",
            "alice@lab",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    fid = json.loads(out)["id"]
    code, _, err = run_cli(
        [*d, "review", "resolve", first["id"], "--as", "alice@lab", "--finding", fid], capsys
    )
    assert code == 1 and "may not review" in err and "Traceback" not in err
    code, out, err = run_cli(
        [*d, "review", "resolve", first["id"], "--as", "frank@cyberdef", "--finding", fid], capsys
    )
    assert code == 0 and "linked" in out, err
    code, out, _ = run_cli(
        [
            *d,
            "review",
            "resolve",
            second["id"],
            "--as",
            "dana@asi",
            "--dismiss",
            "known flaky kernel test",
        ],
        capsys,
    )
    assert code == 0 and "dismissed" in out
    code, out, _ = run_cli([*d, "review", "show", first["id"]], capsys)
    assert json.loads(out)["finding_id"] == fid


def test_cli_eval_matches_score_py(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = data_dir / "datasets" / "monitors" / "vuln_discovery_dev.jsonl"
    with source.open() as fh:
        subset = [next(fh) for _ in range(150)]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(subset))
    preds = tmp_path / "preds.jsonl"
    code, out, err = run_cli(
        [
            "monitors",
            "eval",
            str(labels),
            "--detector",
            "vuln_rules",
            "--predictions",
            str(preds),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    ours = json.loads(out)["vuln_discovery"]
    line = json.loads(preds.read_text().splitlines()[0])
    assert set(line) == {"id", "score", "scores", "predicted"}
    ref = subprocess.run(
        [sys.executable, str(source.parent / "score.py"), str(preds), str(labels), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(ref.stdout)
    assert ours["tpr_at_fpr_0.01"] == pytest.approx(theirs["tpr_at_fpr_0.01"])
    assert ours["tpr_at_fpr_0.001"] == pytest.approx(theirs["tpr_at_fpr_0.001"])
    assert ours["auroc"] == pytest.approx(theirs["auroc"])
    assert ours["auprc"] == pytest.approx(theirs["auprc"])
    code, _, err = run_cli(["monitors", "eval", str(tmp_path / "missing.jsonl")], capsys)
    assert code == 2 and "does not exist" in err


def test_cli_eval_says_which_figures_are_in_sample_and_adds_held_out_ones(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl"
    code, out, err = run_cli(["monitors", "eval", str(source), "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["figures_are"].startswith("IN-SAMPLE")
    held = doc["held_out_by_family"]
    assert set(held) == {"rules", "learned", "combined"}
    assert 0.0 <= held["combined"]["training_tamper"]["auroc"] <= 1.0
    # The same rows in another file are not the training file: "unseen".
    copy = tmp_path / "copy.jsonl"
    copy.write_text(source.read_text() + "\n")
    code, out, err = run_cli(["monitors", "eval", str(copy), "--no-held-out", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["figures_are"].startswith("unseen") and doc["held_out_by_family"] == {}


def test_cli_thresholds_for_a_reviewer_budget(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        [
            "monitors",
            "thresholds",
            "--texts-per-day",
            "10000",
            "--false-alarms-per-reviewer-day",
            "7",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    points = {p["category"]: p for p in json.loads(out)}
    assert len(points) == 7
    assert points["vuln_discovery"]["fpr"] == pytest.approx(7 / 7 / 10000)
    assert 0 < points["vuln_discovery"]["threshold"] <= 1
    code, _, err = run_cli(["monitors", "thresholds", "--texts-per-day", "0"], capsys)
    assert code != 0 and "positive" in err
