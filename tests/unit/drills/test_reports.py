"""The scorecard reports: every value came from a deployment or a scenario, so none of it can
break out of its cell (HTML escaped, Markdown table cells kept whole)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from custodes.drills import Scorecard, StepResult, scorecard_html, scorecard_markdown

EVIL = '<script>alert("x")</script> | col | `tick` \\ [link](http://e.example)\nnext line'


def _card(**step: object) -> Scorecard:
    line = {
        "step": "s1",
        "title": EVIL,
        "actor": "bob@lab",
        "control": "a control",
        "expected": "stopped",
        "outcome": "MISSED",
        "why": EVIL,
        "seconds": None,
        "log_indices": (4, 7),
        "outside": ("witness: " + EVIL,),
    }
    line.update(step)
    return Scorecard(
        drill="d",
        title=EVIL,
        server="http://127.0.0.1:1",
        constitution_version=3,
        constitution_digest="ab" * 32,
        log_key="custodes.local/log+00000000+AAAA",
        log_key_pinned=False,
        started=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
        seconds=1.25,
        steps=(
            StepResult(**line),  # type: ignore[arg-type]
            StepResult(
                step="s2",
                title="fine",
                actor=None,
                control="c",
                expected="revealed",
                outcome="revealed",
                why="ok",
                seconds=0.5,
            ),
        ),
    )


def test_html_escapes_everything_and_loads_nothing_from_outside() -> None:
    page = scorecard_html(_card())
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "http://" not in page.replace("http://127.0.0.1:1", "").replace("http://e.example", "")
    assert "<link" not in page and "src=" not in page
    assert '<tr class="MISSED">' in page
    assert "FAILED: 1 revealed, 1 MISSED" in page
    assert "4, 7" in page
    assert "(fetched from the server: trust on first use)" in page


def test_markdown_cells_cannot_break_the_table() -> None:
    text = scorecard_markdown(_card())
    rows = [r for r in text.splitlines() if r.startswith("| ")]
    assert len(rows) == 4  # header, and one line per step: the newline in EVIL is gone
    header_cells = rows[0].count(" | ")
    for row in rows[2:]:
        # Escaped pipes are not column breaks.
        assert row.replace("\\|", "").count(" | ") == header_cells
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "**MISSED**" in rows[2]
    assert "| 0.50 s |" in rows[3] and "| — |" in rows[2]


def test_the_verdict_counts_outcomes() -> None:
    card = _card(outcome="stopped", seconds=0.1)
    assert card.verdict == "passed: 1 stopped, 1 revealed"
    assert card.missed == ()
    assert _card().missed[0].step == "s1"


def test_the_terminal_scorecard_prints_text_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    from custodes.cli import drill as drill_cli

    card = _card()
    drill_cli.console.print(drill_cli._table(card))
    drill_cli._accounts(card)
    out = capsys.readouterr().out
    # Rich markup in a title or an account is shown, not applied.
    assert "[link](http://e.example)" in out
    assert "s1 MISSED: <script>" in out
    assert "outside the log: witness: <script>" in out
    assert "| 4, 7 |" in out.replace("│", "|")
