"""Entries: RFC 8785 canonical JSON, registered types, UTC times, exact fields, size limits."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from custodes.errors import InputError
from custodes.log import Entry, entry_types, leaf_hash, parse_time, register_entry_type

WHEN = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class _Anything(BaseModel):
    """A free-form body, so the tests reach the canonicaliser with any JSON value."""

    model_config = ConfigDict(extra="allow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int


register_entry_type("test.entry/v1", _Anything)
register_entry_type("test.strict/v1", _Strict)


def _entry(body: dict[str, Any]) -> Entry:
    return Entry.create("test.entry/v1", time=WHEN, principal="alice@lab", body=body)


# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical JSON numbers (finite ones).
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B, ids=[b for b, _ in APPENDIX_B])
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    entry = _entry({"n": value})
    assert entry.to_json().decode().startswith(f'{{"body":{{"n":{expected}}}')
    assert float(json.loads(entry.to_json())["body"]["n"]) == value
    assert Entry.from_json(entry.to_json()).to_json() == entry.to_json()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_non_finite_numbers_are_refused(bits: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    with pytest.raises(InputError, match="not a JSON number") as caught:
        _entry({"deep": [{"n": value}]})
    assert caught.value.where == "body.deep[0].n"


def test_rfc8785_section_3_2_2_example() -> None:
    # RFC 8785 §3.2.2: the worked example (its "numbers", "string" and "literals").
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        '"literals": [null, true, false]}'
    )
    out = _entry(json.loads(text)).to_json()
    assert out.startswith(
        b'{"body":{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,'
        b'1e-27],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )


def test_rfc8785_section_3_2_3_key_order() -> None:
    # RFC 8785 §3.2.3: names sort by UTF-16 code units, so U+1F600 (D83D DE00) sorts before
    # U+FB33, unlike a sort by code point.
    names = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    body = json.loads(_entry({n: n for n in names}).to_json())["body"]
    assert list(body) == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_strings_are_not_normalised() -> None:
    # RFC 8785 §3.2.2.2: strings are serialised as they are; NFC and NFD stay different
    # entries, and only the mandatory escapes are used.
    nfc, nfd = _entry({"s": "\u00e9"}), _entry({"s": "e\u0301"})
    assert nfc.to_json() != nfd.to_json()
    assert b'"s":"\xc3\xa9"' in nfc.to_json()
    ctl = _entry({"s": "\x00\x1f\x7f\u2028</script>"}).to_json()
    assert b'"s":"\\u0000\\u001f\x7f\xe2\x80\xa8</script>"' in ctl


def test_key_order_and_whitespace_do_not_change_the_leaf() -> None:
    a = Entry.from_json(
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z",'
        b'"principal":"alice@lab","body":{"b":1,"a":[1.0,"x"]}}'
    )
    b = Entry.from_json(
        b'{ "body" : { "a" : [ 1 , "x" ] , "b" : 1 } , "principal" :'
        b' "alice@lab", "time": "2026-11-22T12:00:00.000000Z",'
        b' "type": "test.entry/v1" }'
    )
    assert a.to_json() == b.to_json()
    assert a.leaf_hash() == b.leaf_hash() == leaf_hash(a.to_json())
    assert a.to_json() == rfc8785.dumps(json.loads(a.to_json()))


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**53) + 1, 2**53 - 1)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=5), inner, max_size=4)
            ),
            max_leaves=12,
        ),
        max_size=5,
    )
)
def test_canonical_json_round_trips(body: dict[str, Any]) -> None:
    try:
        entry = _entry(body)
    except InputError:
        # Only strings with lone surrogates are refused (RFC 8785 needs UTF-8).
        assert _has_surrogate(body)
        return
    again = Entry.from_json(entry.to_json())
    assert again == entry
    assert again.to_json() == entry.to_json() == rfc8785.dumps(entry.to_dict())


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def test_big_integers_are_doubles() -> None:
    exact = Entry.from_json(
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z",'
        b'"principal":"a","body":{"n":9007199254740992}}'
    )
    assert b'"n":9007199254740992' in exact.to_json()
    with pytest.raises(InputError, match="IEEE 754"):
        Entry.from_json(
            b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z",'
            b'"principal":"a","body":{"n":9007199254740993}}'
        )
    with pytest.raises(InputError, match="canonicalised"):
        _entry({"n": 2**60 + 1})


def test_unknown_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown entry type") as caught:
        Entry.create("test.nope/v1", time=WHEN, principal="a", body={})
    assert caught.value.where == "type"
    assert "test.entry/v1" in (caught.value.expected or "")
    assert "test.entry/v1" in entry_types()


@pytest.mark.parametrize("name", ["nodot/v1", "test.x", "test.x/v0", "Test.x/v1", "test.x/v01"])
def test_malformed_type_names_cannot_be_registered(name: str) -> None:
    with pytest.raises(ValueError, match="not of the form"):
        register_entry_type(name, _Anything)


def test_a_type_cannot_be_taken_over() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_entry_type("test.entry/v1", _Strict)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T12:00:00+00:00",
        "2026-11-22 12:00:00Z",
        "2026-11-22T12:00:00",
        "2026-02-30T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T12:00:00.1234567Z",
        "",
        "yesterday",
    ],
)
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_time(text, where="entry.time")
    assert caught.value.where == "entry.time"


def test_times_are_utc() -> None:
    plus_two = datetime(2026, 11, 22, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = Entry.create("test.entry/v1", time=plus_two, principal="a", body={})
    assert entry.to_dict()["time"] == "2026-11-22T12:00:00.000000Z"
    with pytest.raises(InputError, match="no timezone"):
        Entry.create("test.entry/v1", time=datetime(2026, 1, 1), principal="a", body={})  # noqa: DTZ001


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            {
                "type": "test.entry/v1",
                "time": "2026-11-22T12:00:00Z",
                "principal": "a",
                "body": {},
                "extra": 1,
            },
            "entry",
        ),
        ({"type": "test.entry/v1", "time": "2026-11-22T12:00:00Z", "principal": "a"}, "entry"),
        (
            {"type": "test.entry/v1", "time": "2026-11-22T12:00:00Z", "principal": "a", "body": []},
            "entry.body",
        ),
        ({"type": "test.entry/v1", "time": 5, "principal": "a", "body": {}}, "entry.time"),
        (
            {"type": "test.entry/v1", "time": "2026-11-22T12:00:00Z", "principal": "", "body": {}},
            "entry.principal",
        ),
        (
            {
                "type": "test.strict/v1",
                "time": "2026-11-22T12:00:00Z",
                "principal": "a",
                "body": {"count": 1, "surprise": True},
            },
            "entry.body.surprise",
        ),
        (
            {
                "type": "test.strict/v1",
                "time": "2026-11-22T12:00:00Z",
                "principal": "a",
                "body": {"count": "many"},
            },
            "entry.body.count",
        ),
        ({"type": 7, "time": "2026-11-22T12:00:00Z", "principal": "a", "body": {}}, "entry.type"),
    ],
)
def test_malformed_entries_say_where(data: dict[str, Any], where: str) -> None:
    with pytest.raises(InputError) as caught:
        Entry.from_json(json.dumps(data))
    assert caught.value.where == where


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"test.entry/v1","type":"test.entry/v1","time":"2026-11-22T12:00:00Z",'
        b'"principal":"a","body":{}}',
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z","principal":"a","body":{"n":NaN}}',
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z","principal":"a","body":{"n":1e400}}',
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z","principal":"a",'
        b'"body":{"n":123456789012345678901234567890}}',
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z","principal":"a",'
        b'"body":{"s":"\\ud800"}}',
        b'{"type":"test.entry/v1","time":"2026-11-22T12:00:00Z","principal":"a","body":{}',
        b"\xff\xfe",
        b"[]",
        b"null",
        b"[" * 100_000,
    ],
)
def test_json_that_canonical_json_cannot_hold_is_refused(raw: bytes) -> None:
    # RFC 8785 §3.1: I-JSON only: no duplicate names, no NaN, no integers it would round.
    with pytest.raises(InputError):
        Entry.from_json(raw)


def test_size_limit() -> None:
    with pytest.raises(InputError, match="larger than"):
        Entry.from_json(b" " * (1 << 20 + 1))
    with pytest.raises(InputError, match="larger than"):
        _entry({"big": "x" * (1 << 20)})


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzzed_json_only_raises_input_error(raw: bytes) -> None:
    try:
        Entry.from_json(raw)
    except InputError:
        pass
