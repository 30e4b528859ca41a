"""A fast path to RFC 8785 bytes for the common shape of log entries.

The ``rfc8785`` package is pure Python and the append path's largest cost. For values made only
of objects with printable-ASCII keys, arrays, strings without control characters, booleans, null
and integers of magnitude below 2**53, RFC 8785 output is exactly ``orjson`` output with sorted
keys: no whitespace (§3.2.1), keys ordered by UTF-16 code units (§3.2.3; for ASCII this is byte
order), strings as UTF-8 escaping only ``"`` and ``\\`` (§3.2.2.2, control characters excluded
here), integers in plain decimal (§3.2.2.3 for exact integers). Anything else (floats, control
characters, non-ASCII keys) takes the reference path. A property test pins the equivalence.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

__all__ = ["canonical_json"]

_MAX_SAFE = 1 << 53  # RFC 8785 §3.2.2.3 / I-JSON: integers beyond this are not exact


def _simple(value: Any) -> bool:
    """Whether ``value`` is of the shape whose sorted-key orjson output is RFC 8785's."""
    if value is None or value is True or value is False:
        return True
    t = type(value)
    if t is str:
        if value.isascii():
            return bool(value.isprintable())  # no control characters, no DEL
        return not any(c < " " or c == "\x7f" or "\ud800" <= c <= "\udfff" for c in value)
    if t is int:
        return bool(-_MAX_SAFE < value < _MAX_SAFE)
    if t is dict:
        return all(
            type(k) is str and k.isascii() and k.isprintable() and _simple(v)
            for k, v in value.items()
        )
    if t is list:
        return all(_simple(v) for v in value)
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (same result as ``rfc8785.dumps``)."""
    if _simple(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(value)
