"""The YAML reader: one pass over the event stream, held to the composing reader (the same values,
problems and lines), in time and memory linear in the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.constitution._yaml import _load_marked, load_located

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "constitution.yaml"

SCALARS = """\
a: 1
b: -0x1F
c: 1_000
d: 3.5
e: -.5
f: true
g: no
h: "yes"
i: ~
j:
k: 9007199254740991
l: '2026-11-22T12:00:00Z'
m: '0777'
1: int key
true: bool key
n: [1, two, {three: 3}, [], {}]
o: |
  block
  text
p: {q: {r: [s, {t: u}]}}
"""


def same_as_the_composing_reader(text: str) -> None:
    doc = load_located(text)
    marked = _load_marked(text)
    assert doc.data == marked.data
    assert [(p.line, p.path, p.message) for p in doc.problems] == [
        (p.line, p.path, p.message) for p in marked.problems
    ]
    if marked.data is not None:  # a refused document has no lines to agree on
        for path, line in marked.lines.items():
            assert doc.line(path) == line, path


@pytest.mark.parametrize("text", [SCALARS, DEMO.read_text(encoding="utf-8")])
def test_the_event_reader_builds_what_the_composing_reader_builds(text: str) -> None:
    doc = load_located(text)
    marked = _load_marked(text)
    assert not doc.problems and not marked.problems
    assert doc.data == marked.data
    assert [type(v) for v in doc.data.values()] == [type(v) for v in marked.data.values()]
    same_as_the_composing_reader(text)


def test_lines_come_from_the_one_pass() -> None:
    doc = load_located(SCALARS)
    assert doc.line(("n", 2, "three")) == 16
    assert doc.line(("o",)) == 17
    assert doc.line(("n", 2, "nowhere")) == 16  # the nearest ancestor
    assert doc.line(()) == 1


@pytest.mark.parametrize(
    "text",
    [
        "a: &x {b: 1}\nc: *x\n",  # anchors and aliases
        "base: {x: 1}\nm:\n  <<: {x: 2}\n  y: 3\n",  # a merge key
        "a: !!str 1\n",  # an explicit tag
        "a: 1\na: 2\n",  # a duplicate key
        "? [a, b]\n: c\n",  # a key that is not a scalar
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [1, 2\n",  # a syntax error
        "",  # nothing at all
        "a: " + "[" * 100 + "]" * 100 + "\n",  # nested very deeply
        "a: {<<: {x: 1}, y: 2}\n",  # merge keys of inline mappings
        "a:\n  <<: [{x: 1, z: 3}, {x: 2, w: 4}]\n  x: 9\n",
        "a: {x: 1, <<: {x: 2, y: 3}}\n",
        "a: {<<: 1}\n",
        "a: {<<: [1]}\n",
        "a: <<\n",
        "a: !foo 1\n",
        "a: &x 1\nb: 2\n",  # an anchor alone
        "a:\n  - 1\n  - b: 1\n    b: 2\n  - [x, {y: 1}]\n",
    ],
)
def test_the_event_reader_agrees_on_everything_else(text: str) -> None:
    same_as_the_composing_reader(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: .inf\n", "inf is not a finite number"),
        ("a: .nan\n", "nan is not a finite number"),
        ("a: 9007199254740992\n", "integer 9007199254740992 is out of range"),
        ("a: -9007199254740992\n", "integer -9007199254740992 is out of range"),
        ("a: 2026-11-22\n", "a YAML timestamp is not a JSON value (quote it to make it a string)"),
        (
            "a: 2026-11-22T12:00:00Z\n",
            "a YAML timestamp is not a JSON value (quote it to make it a string)",
        ),
        (
            "a: !!binary aGk=\n",
            "a YAML binary value is not a JSON value (quote it to make it a string)",
        ),
    ],
)
def test_scalars_without_a_json_form_are_refused_by_both_paths(text: str, message: str) -> None:
    # The document's digest is its RFC 8785 canonical JSON: a value without one is refused
    # with its line, never a traceback.
    doc = load_located(text)
    assert [(p.line, p.message) for p in doc.problems] == [(1, message)]
