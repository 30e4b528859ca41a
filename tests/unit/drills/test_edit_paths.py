"""The drills' constitution edits name list items by id or by an ASCII index."""

from __future__ import annotations

import pytest

from custodes.drills._act_authority import _walk
from custodes.drills._actions import NotRunnable


def test_a_list_item_is_named_by_id_by_index_or_by_dash() -> None:
    doc = {"rules": [{"id": "a"}, {"id": "b"}]}
    assert _walk(doc, "/rules/b") == (doc["rules"], 1)
    assert _walk(doc, "/rules/0") == (doc["rules"], 0)
    assert _walk(doc, "/rules/-") == (doc["rules"], 2)


@pytest.mark.parametrize("part", ["²", "١", "５", "7"])
def test_what_is_no_ascii_index_of_the_list_names_nothing(part: str) -> None:
    # "²" passes str.isdigit but int() raises on it (a traceback before the fix); "١" and "５"
    # pass str.isdigit and int() reads them as an index nobody wrote.
    doc = {"rules": [{"id": "a"}, {"id": "b"}]}
    with pytest.raises(NotRunnable, match="has no item"):
        _walk(doc, f"/rules/{part}")
