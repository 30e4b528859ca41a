"""The append path's canonical JSON fast path gives exactly what the rfc8785 package gives."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.log._fastjson import _simple, canonical_json

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(st.characters(codec="utf-8") | st.sampled_from("\x00\t\x7f\u2028é"), max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_fast_path_equals_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError, ValueError):
        if _simple(value):
            raise AssertionError("the fast path accepted what RFC 8785 refuses") from None
        return
    assert canonical_json(value) == expected


def test_examples_on_both_paths() -> None:
    simple = {"type": "a/v1", "body": {"z": [1, "é\u2028", None, True], "a": -5}}
    assert _simple(simple)
    assert canonical_json(simple) == rfc8785.dumps(simple)
    for other in ({"k": 1.5}, {"k": "tab\there"}, {"é": 1}, {"k": "\x7f"}, {"k": "\ud800"}):
        assert not _simple(other)
        try:
            expected = rfc8785.dumps(other)
        except (rfc8785.CanonicalizationError, UnicodeError):
            continue
        assert canonical_json(other) == expected
    assert not _simple({"k": 2**53})
