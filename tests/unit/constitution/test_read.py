"""Reading a constitution: the demo loads, and every kind of problem is named with its line."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from custodes.cli import cli
from custodes.constitution import (
    compile_policies,
    constitution_schema,
    parse_duration,
    read_constitution,
)
from custodes.errors import ConstitutionError
from tests.unit.constitution.helpers import document, dump, keys

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "constitution.yaml"
SAMPLES = Path(__file__).parent / "samples"


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def problems_of(source: Path | str) -> list[tuple[int | None, str]]:
    with pytest.raises(ConstitutionError) as info:
        read_constitution(source)
    return [(p.line, p.message) for p in info.value.problems]


def test_demo_constitution_loads_and_admits_partners_by_their_criteria() -> None:
    c = read_constitution(DEMO)
    kinds = {o.kind for o in c.organisations}
    assert kinds == {"developer", "overseer", "partner", "vendor"}
    assert {cap.id for cap in c.capabilities} >= {
        "general",
        "cyber-frontier",
        "exploit-details",
        "weights-export",
        "training-write",
    }
    compiled = compile_policies(c)
    assert compiled.org_admitted["cyberdef"] and not compiled.org_admitted["greyhat"]
    assert not compiled.principal_admitted["ivan@greyhat"]
    rule = c.access_rules_by_id["cyber-frontier-partners"]
    # heidi is a partner researcher without the cyber clearance; ivan's organisation is not
    # admitted: neither may request.
    assert set(compiled.eligible_requesters(rule)) == {"frank@cyberdef", "grace@bankcert"}
    assert c.organisation_of("dana@asi").kind == "overseer"
    assert all(p.organisation != "lab" for p in c.principals_not_in("lab", role="reviewer"))


def test_demo_validates_against_the_published_schema_file() -> None:
    schema_file = ROOT / "src" / "custodes" / "constitution" / "constitution.schema.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(DEMO.read_text()), schema)
    result = CliRunner().invoke(cli, ["constitution", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == schema == constitution_schema()


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    found = problems_of(SAMPLES / "many_problems.yaml")
    lines = {line for line, _ in found}
    assert lines == {8, 14, 16, 22, 26, 30, 33, 35, 41, 42, 45}
    text = dict(found)
    assert "duplicate id 'lab'" in text[8]
    assert "malformed" in text[14]
    assert "unknown organisation 'nowhere'" in text[16]
    assert "duplicate key" in text[22]
    assert "no models and no actions" in text[26]
    assert "unknown role 'astronaut'" in text[30]
    assert "bad duration '0h'" in text[33]
    assert "unknown capability 'weights'" in text[35]
    assert "unknown principal 'ghost@nowhere'" in text[41]
    assert "threshold 3 exceeds" in text[42]
    assert "names nothing" in text[45]


def test_impossible_quorums_count_without_the_requester_and_keyless_approvers() -> None:
    found = dict(problems_of(SAMPLES / "impossible_quorums.yaml"))
    assert set(found) == {28, 35, 42}
    assert "k = 2 but only 1 eligible approvers" in found[28]
    assert "m = 3" in found[35]
    assert "partner" in found[42]


def test_duplicate_yaml_keys_are_refused_not_overwritten() -> None:
    text = "version: 1\nversion: 2\n" + DEMO.read_text().split("version: 1\n", 1)[1]
    found = problems_of(text)
    assert found[0][0] == 2 and "duplicate key 'version'" in found[0][1]


def test_yaml_syntax_error_names_its_line() -> None:
    [(line, message)] = problems_of("version: 1\norganisations: [\n  - x: : :\n")
    assert line is not None and line >= 2 and "YAML syntax" in message


def test_schema_errors_name_the_line_and_what_was_expected() -> None:
    text = DEMO.read_text().replace("    kind: overseer\n", "    kind: regulator\n", 1)
    with pytest.raises(ConstitutionError) as info:
        read_constitution(text)
    [problem] = info.value.problems
    assert problem.line == line_of(text, "kind: regulator")
    assert problem.expected is not None and "overseer" in problem.expected
    text = DEMO.read_text().replace("  enabled: true\n", "  enabled: false\n")
    [(line, _)] = problems_of(text)
    assert line == line_of(text, "enabled: false")


def test_cedar_conditions_must_parse() -> None:
    text = DEMO.read_text().replace(
        'principal.attributes.clearance == "cyber"', 'principal.attributes.clearance === "cyber"'
    )
    [(line, message)] = problems_of(text)
    assert line == line_of(text, "===") and "Cedar condition does not parse" in message


def test_witness_keys_must_be_signed_note_keys_named_like_the_witness() -> None:
    text = DEMO.read_text().replace("name: witness.asi.example\n", "name: witness.other\n")
    [(line, message)] = problems_of(text)
    assert "named 'witness.asi.example'" in message
    assert line == line_of(text, "key: witness.asi.example+")


def test_a_rule_nobody_can_request_references_nothing() -> None:
    ks = keys("a@lab", "b@asi", "c@aud")
    # Approvers who request: all three could approve someone else, but never themselves.
    doc = document(ks, quorum={"approvals": 3, "organisations": 2})
    doc["access"][0]["requesters"] = {"roles": ["approver"]}
    doc["principals"] = [p for p in doc["principals"] if p["id"] != "r@lab"]
    [(_, message)] = problems_of(dump(doc))
    assert "impossible quorum for requester 'a@lab'" in message
    doc = document(
        ks, extra={"criteria": [{"id": "never", "applies_to": "principal", "condition": "false"}]}
    )
    doc["access"][0]["requesters"]["criteria"] = ["never"]
    [(_, message)] = problems_of(dump(doc))
    assert "references nobody" in message


def test_person_linked_identities_count_as_the_requester() -> None:
    """A requester's second identity is excluded from the approvers at load time too."""
    ks = keys("a@lab", "b@asi", "c@aud", "r2@lab")
    doc = document(ks, quorum={"approvals": 3, "organisations": 2})
    doc["principals"].append(
        {
            "id": "r2@lab",
            "organisation": "lab",
            "person": "r@lab",
            "roles": ["approver"],
            "key": ks["r2@lab"].public_key,
        }
    )
    read_constitution(dump(doc))  # a, b, c remain: feasible
    doc["principals"] = [p for p in doc["principals"] if p["id"] != "c@aud"]
    doc["amendment"]["signers"] = ["a@lab", "b@asi"]
    doc["entrenched"][1]["signers"] = 2
    found = problems_of(dump(doc))
    assert any("k = 3 but only 2" in m for _, m in found)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("8h", 8 * 3600),
        ("30m", 1800),
        ("1d12h", 36 * 3600),
        ("90s", 90),
        ("0s", None),
        ("", None),
        ("8x", None),
        ("h", None),
        ("1h1d", None),
    ],
)
def test_durations(text: str, seconds: int | None) -> None:
    d = parse_duration(text)
    assert (None if d is None else d.total_seconds()) == seconds


def test_check_command_prints_problems_and_exits_1(tmp_path: Path) -> None:
    from custodes.cli import main

    assert main(["constitution", "check", str(DEMO)]) == 0
    assert main(["constitution", "check", str(SAMPLES / "many_problems.yaml")]) == 1


def test_recursive_aliases_and_alias_bombs_are_refused_not_crashed() -> None:
    refused = (
        "YAML refused: alias *{} (aliases are not allowed in a constitution; write the value out)"
    )
    assert problems_of("a: &a [*a]\n") == [(1, refused.format("a"))]
    # Nine levels of ten aliases each: 10**9 lists if expanded. Refused at its first alias,
    # from the event stream, before anything is composed.
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join(["*" + chr(97 + i)] * 10) + "]\n"
        for i in range(8)
    )
    assert problems_of(bomb) == [(2, refused.format("a"))]


def test_merge_keys_of_inline_mappings_still_work_but_not_through_aliases() -> None:
    text = DEMO.read_text().replace(
        "  - id: asi\n    name: National AI Security Institute\n    kind: overseer\n",
        "  - <<: {kind: developer, name: placeholder}\n    id: asi\n"
        "    name: National AI Security Institute\n    kind: overseer\n",
        1,
    )
    assert "<<: {kind: developer" in text
    c = read_constitution(text)
    assert c.organisations_by_id["asi"].kind == "overseer"  # explicit keys win over merged
    aliased = (
        DEMO.read_text()
        .replace("organisations:\n  - id: lab\n", "organisations:\n  - &lab\n    id: lab\n", 1)
        .replace("  - id: asi\n", "  - <<: *lab\n    id: asi\n", 1)
    )
    line = line_of(aliased, "<<: *lab")
    assert problems_of(aliased) == [
        (
            line,
            "YAML refused: alias *lab (aliases are not allowed in a constitution; write the "
            "value out)",
        )
    ]


def test_custody_alarm_windows_come_from_the_constitution() -> None:
    from datetime import timedelta

    from custodes.custody import AlarmWindows

    text = DEMO.read_text().replace("stockpiling_window: 72h", "stockpiling_window: 36h")
    windows = AlarmWindows.from_document(read_constitution(text).document, parse_duration)
    assert windows.stockpiling == timedelta(hours=36)
    assert windows.vendor_notice == timedelta(days=7)

    bad = DEMO.read_text().replace("stockpiling_window: 72h", "stockpiling_window: soon")
    [(line, _message)] = [p for p in problems_of(bad) if "soon" in p[1]]
    assert line == line_of(bad, "stockpiling_window: soon")


def test_the_bounded_schema_check_finds_what_the_whole_document_check_finds() -> None:
    import copy

    from custodes.constitution._read import _schema_errors, _validator

    demo = yaml.safe_load(DEMO.read_text())
    cases = [yaml.safe_load(f.read_text()) for f in sorted(SAMPLES.glob("*.yaml"))]
    broken = copy.deepcopy(demo)
    broken["principals"][0]["bogus"] = 1
    broken["access"][1]["quorum"]["approvals"] = -1
    broken["extra"] = 1
    del broken["amendment"]
    broken["organisations"][2]["kind"] = "x"
    cases.append(broken)
    misshapen = copy.deepcopy(demo)
    misshapen["principals"] = {"a": 1}
    misshapen["coalition"]["min_organisations"] = "x"
    misshapen["break_glass"][0]["review"] = 3
    cases.append(misshapen)
    for case in cases:
        whole = sorted(
            (tuple(e.instance_path), e.message, tuple(e.schema_path))
            for e in _validator().iter_errors(case)
        )
        bounded = sorted(
            ((*w, *e.instance_path), e.message, (*s, *e.schema_path))
            for e, w, s in _schema_errors(case)
        )
        assert bounded == whole


def test_the_collector_is_paused_while_reading_and_its_state_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    import custodes.constitution._read as read_module

    seen: list[bool] = []
    load = read_module.load_located

    def spy(text: str) -> object:
        seen.append(gc.isenabled())
        return load(text)

    monkeypatch.setattr(read_module, "load_located", spy)
    was = gc.isenabled()
    try:
        gc.enable()
        read_constitution(DEMO)
        assert seen == [False] and gc.isenabled()
        with pytest.raises(ConstitutionError):
            read_constitution("version: 1\nprincipals: 7\n")
        assert seen == [False, False] and gc.isenabled()
        gc.disable()
        read_constitution(DEMO)
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("segment", ["\u00b2", "\u0660"])
def test_an_entrenched_path_with_a_non_ascii_digit_names_nothing(segment: str) -> None:
    # A superscript two passes str.isdigit but not int(); ARABIC-INDIC DIGIT ZERO passes both.
    # Neither is a position in the document: a problem, never a traceback or the first
    # access rule.
    doc = document(keys("a@lab", "b@asi", "c@aud"))
    doc["entrenched"][0]["paths"] = [f"/access/{segment}"]
    found = problems_of(dump(doc))
    assert [m for _, m in found] == [f"path '/access/{segment}' names nothing in this document"]
