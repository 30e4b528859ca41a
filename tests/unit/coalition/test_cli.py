"""``custodes coalition analyze`` and ``diff``: output, files, exit codes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodes.cli import main

DEMO = Path(__file__).parents[3] / "examples" / "constitution.yaml"


def test_analyze_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["coalition", "analyze", str(DEMO), "--json", "--max-size", "2", "--minimal-winning"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    weights = next(g for g in doc["goals"] if g["goal"] == "use:weights-export")
    assert weights["min_organisations"] == 1
    assert weights["minimal_winning"]["max_size"] == 2
    assert ["carol@lab"] in weights["minimal_winning"]["coalitions"]
    assert all(len(c) <= 2 for c in weights["minimal_winning"]["coalitions"])
    assert weights["power"]["method"] == "none"
    assert any("lab-incident-weights" in f for f in doc["findings"])


def test_analyze_tables_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    svg, graphml, og = tmp_path / "a.svg", tmp_path / "a.graphml", tmp_path / "a.json"
    argv = [
        "coalition",
        "analyze",
        str(DEMO),
        "--svg",
        str(svg),
        "--graphml",
        str(graphml),
        "--opengraph",
        str(og),
        "--goal",
        "use:cyber-frontier",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Coalition analysis: custodes demo deployment" in out
    assert "1 < floor 2" in out
    assert "break-glass rule 'lab-incident-weights' lets lab alone reach it" in out
    assert "minimum coalition for use cyber-frontier" in svg.read_text()
    assert graphml.read_text().startswith("<?xml")
    assert json.loads(og.read_text())["metadata"]["source_kind"] == "Custodes"


def test_diff_refuses_and_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = DEMO.read_text().replace("version: 1\n", "version: 2\n", 1)
    new = tmp_path / "v2.yaml"
    # The training-write rule: one approval from anyone with the approver role.
    new.write_text(
        text.replace(
            "    quorum: {approvals: 2, organisations: 2, kinds: "
            "{overseer: 1}}\n    max_duration: 24h",
            "    quorum: {approvals: 1}\n    max_duration: 24h",
            1,
        )
    )
    assert new.read_text() != text
    assert main(["coalition", "diff", str(DEMO), str(new)]) == 1
    captured = capsys.readouterr()
    assert "2 → 1" in captured.out
    assert "coalition-floor:training-write: 1 organisation(s) (lab)" in captured.err
    same = tmp_path / "same.yaml"
    same.write_text(text)
    assert main(["coalition", "diff", str(DEMO), str(same), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["refused"] is False and not any(g["changed"] for g in doc["goals"])


def test_diff_never_says_the_floor_holds_while_a_goal_is_below_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # weights-export is below the floor in both versions: the amendment lowers nothing, so it
    # is not refused, but the floor does not hold either.
    same = tmp_path / "v2.yaml"
    same.write_text(DEMO.read_text().replace("version: 1\n", "version: 2\n", 1))
    assert main(["coalition", "diff", str(DEMO), str(same)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "The coalition floor holds" not in out
    assert "use weights-export (1 organisation(s)) stays below the floor of 2" in out


def test_bad_input_is_a_diagnostic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nname: x\norganisations: [\n")
    assert main(["coalition", "analyze", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "line" in err and "Traceback" not in err
    assert main(["coalition", "analyze", str(DEMO), "--goal", "nope"]) == 1
    err = capsys.readouterr().err
    assert "--goal: no goal 'nope'" in err and "use:weights-export" in err
    assert main(["coalition", "analyze", str(DEMO), "--max-size", "-1"]) == 1
    assert "expected: an integer >= 0" in capsys.readouterr().err
    assert main(["coalition", "analyze", str(tmp_path / "missing.yaml")]) == 2
