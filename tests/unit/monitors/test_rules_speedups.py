"""The rules tier's speed-ups are exact: each gate is a necessary condition of the pattern
it skips, so the detectors' output is what the ungated patterns give (checked on the dev
data's crash reports and transcripts and on the crash-format samples)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from custodes.monitors import _fingerprint, _vuln
from custodes.monitors._coup import _FRAMES, _P, _SANCTION_FACTOR, _frame_score
from custodes.monitors._detector import Category
from custodes.monitors._normalise import normalise


@pytest.fixture(scope="module")
def texts(data_dir: Path) -> list[str]:
    monitors = data_dir / "datasets" / "monitors"
    lines = (monitors / "vuln_discovery_dev.jsonl").read_text(encoding="utf-8").splitlines()
    out = [json.loads(line)["text"] for line in lines if line.strip()]
    out += [p.read_text(encoding="utf-8") for p in sorted((monitors / "crash_formats").glob("*"))]
    return out


def _crash_type_ungated(text: str) -> str | None:
    for pattern, template in _fingerprint._TYPE_PATTERNS:
        m = pattern.search(text)
        if m is None:
            continue
        if template == "asan":
            kind = m.group(1).capitalize()
            access = f" {m.group(2)}" if m.group(2) else ""
            size = f" {m.group(3)}" if m.group(3) else ""
            return f"{kind}{access}{size}"
        return _fingerprint._normalise_type(template.format(*m.groups()))
    return None


def test_every_crash_type_gate_is_inside_every_match(texts: list[str]) -> None:
    matched = 0
    for text in texts:
        for (pattern, _), gate in zip(
            _fingerprint._TYPE_PATTERNS, _fingerprint._TYPE_GATES, strict=True
        ):
            for m in pattern.finditer(text):
                matched += 1
                assert any(g in m.group(0) for g in gate), (pattern.pattern, m.group(0))
    assert matched > 500  # the corpus exercises the patterns


def test_gated_crash_type_equals_ungated(texts: list[str]) -> None:
    for text in texts:
        assert _fingerprint._crash_type(text) == _crash_type_ungated(text)


def test_own_stack_gate_equals_the_pattern(texts: list[str]) -> None:
    seen = {True: 0, False: 0}
    for text in texts:
        ungated = _vuln._at_least(_vuln._FRAMES, text, 3)
        assert _vuln._own_stack(text) == ungated
        seen[ungated] += 1
    assert seen[True] and seen[False]


def _frame_score_eager(category: Category, unit: str) -> tuple[float, str]:
    present = {p for _, frame in _FRAMES[category] for p in frame if _P[p].search(unit)}
    miss, parts = 1.0, []
    for weight, frame in _FRAMES[category]:
        if all(p in present for p in frame):
            miss *= 1.0 - weight
            parts.append(" + ".join(p.replace("_", " ") for p in frame))
    if not parts:
        return 0.0, ""
    score = 1.0 - miss
    if _P["sanction"].search(unit) or _P["lawful_process"].search(unit):
        score *= _SANCTION_FACTOR
    return score, "; ".join(parts)


def test_lazy_frame_score_equals_eager(data_dir: Path) -> None:
    path = data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl"
    units = []
    for line in path.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line).get("messages") or []
        for m in messages:
            content = str(m.get("content") or "").lower()
            units += [content[i : i + 480] for i in range(0, len(content), 480)]
    scored = 0
    for unit in units:
        for category in _FRAMES:
            lazy = _frame_score(category, unit)
            assert lazy == _frame_score_eager(category, unit)
            scored += lazy[0] > 0
    assert scored > 50


def test_normalise_is_cached_but_equal_for_equal_texts() -> None:
    text = "Address\u200bSanitizer"
    first = normalise(text)
    again = normalise("".join(["Address\u200b", "Sanitizer"]))  # equal, another object
    assert again.text == first.text == "AddressSanitizer"
    assert again.to_original(0, 7) == (0, 7)
    assert re.fullmatch(r"Address.?Sanitizer", again.original)
