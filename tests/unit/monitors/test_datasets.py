"""Reading the labelled data sets in both formats, and refusing bad lines with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodes.errors import InputError
from custodes.monitors import read_dataset


def test_text_and_messages_formats(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(
        json.dumps({"id": "a", "text": "hello", "label": 1})
        + "\n\n"
        + json.dumps(
            {
                "id": "b",
                "label": 1,
                "category": "oversight_evasion",
                "messages": [
                    {"role": "user", "content": "turn off the audit log"},
                    {"role": "assistant", "content": "done"},
                ],
            }
        )
        + "\n"
        + json.dumps({"id": "c", "text": "x", "label": 0, "category": "benign"})
        + "\n"
    )
    a, b, c = read_dataset(f)
    assert (a.text, a.label, a.category) == ("hello", 1, "vuln_discovery")
    assert b.text == "### USER\nturn off the audit log\n\n### ASSISTANT\ndone"
    assert b.category == "oversight_evasion"
    assert (c.label, c.category) == (0, None)


@pytest.mark.parametrize(
    "line,expected",
    [
        ("{not json", "one JSON object per line"),
        ('{"text": "no id"}', 'an object with "id"'),
        ('{"id": "x", "label": 1}', '"text" (string) or "messages" (list)'),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"id": "ok", "text": "t"}) + "\n" + line + "\n")
    with pytest.raises(InputError) as info:
        list(read_dataset(f))
    assert info.value.where == f"{f}:2"
    assert info.value.expected == expected
