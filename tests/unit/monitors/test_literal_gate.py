"""The literal gate of the learned tier's features is exact: a gated pattern finds what the
pattern finds ungated, on the dev data's transcripts and on strings built to break it
(case folding, the non-ASCII letters ``re.IGNORECASE`` equates with ASCII ones, literals
split across texts, unanchored and ungateable patterns)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from custodes.monitors import _units, read_dataset
from custodes.monitors._behaviour import PART_GATE
from custodes.monitors._literal_gate import LiteralGate, literal_prefixes
from custodes.monitors._normalise import normalise


def test_literals_are_read_from_the_pattern() -> None:
    assert literal_prefixes(re.compile(r"\b(?:audit\w*|two[-_ ]person)")) == (
        ("audit", "two person", "two-person", "two_person"),
        True,
    )
    # Each alternative starts with a literal: anchored; one starts with \w+: unanchored.
    assert literal_prefixes(re.compile(r"(?:https?|s3a?)://")) == (("http", "s3"), True)
    assert literal_prefixes(re.compile(r"\w+\.(?:pt|bin)|weights")) == ((".", "weights"), False)
    # Upper-case literals are compared lower-cased (the automaton reads lower-cased text).
    assert literal_prefixes(re.compile(r"Director\s+[A-Z]")) == (("director",), True)
    # No literal in some match: not gated.
    assert literal_prefixes(re.compile(r"[A-Z]{2,}\d+|ticket")) is None
    assert literal_prefixes(re.compile(r"x?")) is None
    assert literal_prefixes(re.compile(r"caf\u00e9")) is None  # non-ASCII literal


_TRICKY = [
    re.compile(r"\b(?:audit\w*|log(?:s|ging)?|two[-_ ]person)\b", re.I),
    re.compile(r"\b(?:kill|skip|sign)\w*", re.I),
    re.compile(r"(?::|=|==|\bto\b)\s*['\"]?(?:false|off|0)['\"]?\s*(?:[,}#;)]|$)", re.I | re.M),
    re.compile(r"^\s*(?:pass|continue)\s*$|\breturn\s+true\b", re.I),
    re.compile(r"\w+\.safetensors|\bweights?\b", re.I),
    re.compile(r"\b[A-Z]{2,}-\d{2,}\b"),
    re.compile(r"Director\s+[A-Z][a-z]+"),
    re.compile(r"(?<=\s)--no-[\w-]+"),
]
_PIECES = [
    "audit",
    "AUDIT",
    "aud\u0130t",  # dotted capital I: IGNORECASE equates it with i
    "s\u212aip",  # Kelvin sign: equated with k
    "\u017fign",  # long s: equated with s
    "log",
    "Logging",
    "two-person",
    "two_Person",
    ": false,",
    "= 0;",
    " to off)",
    "pass",
    "continue",
    "return True",
    "model.safetensors",
    " weights ",
    "SEC-123",
    "Director Smith",
    "director smith",
    " --no-verify",
    "--no-verify",
    "\u00e9",
    "\u03a3",
    "\n",
    " ",
    "x",
    "_",
]


def _strings(n: int) -> list[str]:
    rng = random.Random(23)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def _assert_exact(gate: LiteralGate, texts: list[str]) -> int:
    """Every pattern's search and findall agree with and without the gate; returns how
    many (text, pattern) pairs matched, so a test can check it exercised the patterns."""
    matched = 0
    for text, starts in zip(texts, gate.starts_many(texts), strict=True):
        for k, rx in enumerate(gate.patterns):
            found = rx.search(text) is not None
            assert gate.search(k, text, int(starts[k])) == found, (rx.pattern, text)
            assert gate.count(k, text, int(starts[k])) == len(rx.findall(text)), (rx.pattern, text)
            matched += found
    return matched


def test_the_gate_is_exact_on_strings_built_to_break_it() -> None:
    gate = LiteralGate(_TRICKY)
    texts = _strings(3000)
    assert _assert_exact(gate, texts) > 3000
    # One text at a time agrees with many at once (no literal spans two texts).
    for text in texts[:200]:
        assert (gate.starts(text) == gate.starts_many([text])[0]).all()
    assert gate.starts_many([]).shape == (0, len(_TRICKY))


@pytest.fixture(scope="module")
def transcript_units(data_dir: Path) -> list[str]:
    monitors = data_dir / "datasets" / "monitors"
    out: list[str] = []
    for name in ("coup_misuse_dev.jsonl", "vuln_discovery_dev.jsonl"):
        for example in list(read_dataset(monitors / name))[::40]:
            text = normalise(example.text).text
            out.append(text[:3000])
            out += [u.written for u in _units.text_unit_features(text)[0]]
    return out


def test_the_features_gates_are_exact_on_dev_transcripts(transcript_units: list[str]) -> None:
    assert _assert_exact(_units._GATE, transcript_units) > 1000
    lowered = [t.lower() for t in transcript_units]
    assert _assert_exact(PART_GATE, lowered) > 1000
