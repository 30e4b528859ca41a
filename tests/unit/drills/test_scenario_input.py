"""Reading a drill scenario: anyone may write one, so bad input is a clear error with its line,
and the reader is bounded (size, depth, aliases, numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.drills import builtin_scenarios, read_scenario, read_scenario_file
from custodes.drills._actions import check_steps
from custodes.drills._yaml import MAX_DEPTH, MAX_SCENARIO_BYTES
from custodes.errors import DrillError

GOOD = """\
id: tiny
title: A tiny drill
actors:
  someone:
    role: engineer
steps:
  - id: wait
    title: Nothing yet
    action: pending
    actor: someone
    with: {reason: not built}
    expect: {control: a control, result: stopped}
"""


def _error(text: str) -> str:
    with pytest.raises(DrillError) as caught:
        read_scenario(text, name="t.yaml")
    return caught.value.diagnostics()


def test_a_good_scenario_reads() -> None:
    s = read_scenario(GOOD, name="t.yaml")
    assert s.id == "tiny"
    assert s.steps[0].with_ == {"reason": "not built"}
    assert s.actors["someone"].role == "engineer"


def test_every_builtin_scenario_reads_and_its_steps_check() -> None:
    found = builtin_scenarios()
    assert "quiet-amendment-chain" in [s.id for s in found]
    assert [s.order for s in found] == sorted(s.order for s in found)
    for s in found:
        assert len(check_steps(s.steps, name=s.id)) == len(s.steps)


def test_an_unknown_field_names_its_line_and_path() -> None:
    text = GOOD.replace("    action: pending\n", "    action: pending\n    actoin: x\n")
    message = _error(text)
    assert "line 10 (steps.0.actoin)" in message
    assert "Extra inputs are not permitted" in message


def test_a_bad_id_says_the_form_expected_not_the_regex() -> None:
    message = _error(GOOD.replace("id: tiny", "id: Tiny Drill"))
    assert "line 1 (id): 'Tiny Drill' is not of the form this field takes" in message
    assert "lowercase letters, digits and '-'" in message


def test_references_are_checked_with_their_line() -> None:
    message = _error(GOOD.replace("    actor: someone\n", "    actor: nobody\n"))
    assert "line 10 (steps.0.actor)" in message
    assert "'nobody' is not one of the scenario's actors (someone)" in message
    later = GOOD.replace("    actor: someone\n", "    actor: someone\n    after: [later]\n")
    assert "step 'later' does not come before this one" in _error(later)


def test_a_revealed_step_must_name_its_evidence() -> None:
    message = _error(GOOD.replace("result: stopped", "result: revealed"))
    assert "names the evidence" in message
    assert "line 12" in message


def test_expect_within_seconds_is_bounded() -> None:
    text = GOOD.replace("result: stopped}", "result: stopped, within_seconds: 100000}")
    assert "within_seconds" in _error(text)


def test_aliases_and_anchors_are_refused_before_expansion() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    message = _error(bomb)
    assert "line 1: YAML anchors and aliases are not allowed" in message


def test_nesting_is_bounded() -> None:
    deep = "id: " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2) + "\n"
    assert f"nested more than {MAX_DEPTH} levels deep" in _error(deep)


def test_size_is_bounded() -> None:
    text = GOOD + "# " + "x" * MAX_SCENARIO_BYTES + "\n"
    message = _error(text)
    assert f"at most {MAX_SCENARIO_BYTES} are read" in message


def test_a_file_too_large_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(GOOD + "# " + "x" * (4 * MAX_SCENARIO_BYTES) + "\n")
    with pytest.raises(DrillError, match="at most"):
        read_scenario_file(path)


def test_duplicate_keys_are_refused() -> None:
    message = _error(GOOD.replace("title: A tiny drill\n", "title: A tiny drill\ntitle: again\n"))
    assert "line 3: duplicate key 'title'" in message


def test_non_plain_values_are_refused() -> None:
    assert "is a timestamp, not plain data" in _error(
        GOOD.replace("title: A tiny drill", "title: 2026-12-07")
    )
    assert "is a binary" in _error(GOOD.replace("title: A tiny drill", "title: !!binary aGk="))
    assert "a mapping key must be a string" in _error("1: x\n")


def test_integers_are_bounded() -> None:
    message = _error(GOOD.replace("id: tiny", "id: tiny\norder: 99999999999999999999"))
    assert "line 2: integer 99999999999999999999 is out of range" in message
    assert "order" in _error(GOOD.replace("id: tiny", "id: tiny\norder: 20000"))


def test_not_yaml_and_empty_and_not_a_mapping() -> None:
    assert "line 2: not YAML" in _error("id: x\n  - : [\n")
    assert "the scenario is empty" in _error("")
    assert "Input should be" in _error("- a\n- b\n")


def test_a_file_that_is_not_utf8_or_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"id: \xff\xfe\n")
    with pytest.raises(DrillError, match="not UTF-8"):
        read_scenario_file(bad)
    with pytest.raises(DrillError, match="cannot read the scenario"):
        read_scenario_file(tmp_path / "missing.yaml")


def test_unknown_actions_and_bad_parameters_are_refused_before_anything_runs() -> None:
    text = GOOD.replace("action: pending", "action: teleport")
    with pytest.raises(DrillError) as caught:
        check_steps(read_scenario(text).steps, name="t")
    assert "step wait: unknown action 'teleport' (one of " in caught.value.diagnostics()
    assert "amend" in caught.value.diagnostics()
    bad = GOOD.replace("with: {reason: not built}", "with: {reason: not built, colour: red}")
    with pytest.raises(DrillError) as caught:
        check_steps(read_scenario(bad).steps, name="t")
    assert "step wait (with.colour): Extra inputs are not permitted" in caught.value.diagnostics()
    edits = GOOD.replace("action: pending", "action: amend").replace(
        "with: {reason: not built}", "with: {edits: [{set: /a, remove: /b}]}"
    )
    with pytest.raises(DrillError, match="exactly one of set, remove, append"):
        check_steps(read_scenario(edits).steps, name="t")
