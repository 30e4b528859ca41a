"""Labelled monitor data sets: JSONL with either ``text`` or chat ``messages``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from custodes.errors import InputError
from custodes.monitors._varied import family_of
from custodes.monitors._view import render_messages

__all__ = ["Example", "read_dataset", "messages_to_text"]


@dataclass(frozen=True)
class Example:
    """One labelled example; ``category`` is None for negatives or unlabelled rows.

    ``family`` (the scenario template or source group), ``organisation`` and ``format`` are
    what a held-out evaluation keeps apart; None where the data set does not say.
    """

    id: str
    text: str
    label: int | None
    category: str | None
    group: str | None
    family: str | None = None
    organisation: str | None = None
    format: str | None = None


def messages_to_text(messages: list[dict[str, object]]) -> str:
    """Serialise chat messages the way transcripts print them: ``### ROLE`` blocks, tool
    calls (OpenAI ``tool_calls``, Anthropic ``tool_use``) as ``[tool call NAME] {json}``."""
    return render_messages(messages)


def read_dataset(path: Path) -> Iterator[Example]:
    """Yield the examples of ``path`` in order.

    Raises:
        InputError: a line is not JSON, or has neither ``text`` nor ``messages`` (file:line).
    """
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    "not a JSON object",
                    where=where,
                    expected="one JSON object per line",
                    actual=str(exc),
                ) from exc
            if not isinstance(row, dict) or "id" not in row:
                raise InputError(
                    "missing id",
                    where=where,
                    expected='an object with "id"',
                    actual=type(row).__name__,
                )
            if isinstance(row.get("text"), str):
                text = row["text"]
            elif isinstance(row.get("messages"), list):
                text = messages_to_text(row["messages"])
            else:
                raise InputError(
                    "no text",
                    where=where,
                    expected='"text" (string) or "messages" (list)',
                    actual=", ".join(sorted(row)),
                )
            label = row.get("label")
            category = row.get("category")
            if label == 1 and category is None:
                category = "vuln_discovery"
            if label == 0 or category == "benign":
                category = None
            group = row.get("group") or row.get("notes")
            family = row.get("family")
            if family is None and isinstance(row.get("notes"), str):
                family = family_of(row["notes"])
            elif family is None:
                family = group
            yield Example(
                str(row["id"]),
                text,
                int(label) if label is not None else None,
                category,
                str(group) if group is not None else None,
                str(family) if family is not None else None,
                _opt(row.get("organisation")),
                _opt(row.get("format")),
            )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
