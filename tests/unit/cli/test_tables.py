"""Tables never cut the ids a user pastes into the next command, however narrow the terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from custodes.cli._main import keep_whole

FINDING = "CUSTODES-2026-0001"
DETECTION = "det-aef8c0d1e2f3a4b5c6d7e8f9"


def _render(table: Table, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, highlight=False, color_system=None).print(table)
    return out.getvalue()


def _table() -> Table:
    table = Table("id", "title", "actor", "where", "reviewers")
    for ident in (FINDING, DETECTION):
        table.add_row(
            ident,
            "heap overflow in the packet parser of a network driver",
            "alice@lab",
            "transcripts/run-2026-11-22/agent-7.jsonl:1234",
            "frank@cyberdef, dana@asi",
        )
    return table


@pytest.mark.parametrize("width", [60, 80, 120])
def test_ids_stay_whole_and_nothing_is_ellipsised(width: int) -> None:
    text = _render(keep_whole(_table(), "id"), width)
    assert FINDING in text and DETECTION in text
    assert "…" not in text  # the other columns fold; nothing is dropped


def test_without_it_rich_would_cut_them() -> None:
    # The reason for keep_whole: rich's default shrinks every column, ids included.
    text = _render(_table(), 60)
    assert DETECTION not in text
