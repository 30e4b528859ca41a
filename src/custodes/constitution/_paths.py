"""Paths into a constitution document, as used by entrenched clauses: ``/access/cyber/quorum``.

A segment after a list names the item whose ``id`` (or, for witnesses, ``name``) equals it, so a
path keeps meaning the same rule when items are reordered; a number selects by position only if
no item has that id.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "resolve_path"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def resolve_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``, or :data:`MISSING`."""
    node = document
    for segment in path.strip("/").split("/"):
        if isinstance(node, dict):
            node = node.get(segment, MISSING)
        elif isinstance(node, list):
            match = [
                item
                for item in node
                if isinstance(item, dict)
                and (item.get("id") == segment or item.get("name") == segment)
            ]
            if match:
                node = match[0]
            # ASCII digits only: str.isdigit alone passes "²", on which int() raises, and
            # other scripts' digits, which int() would read as a position.
            elif segment.isascii() and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return MISSING
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node
