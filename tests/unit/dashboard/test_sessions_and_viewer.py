"""Dashboard sessions expire and end; viewers see what the constitution lets them see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.clock import FrozenClock
from custodes.constitution import read_constitution
from custodes.dashboard import SessionStore, viewer_of
from custodes.dashboard._render import time_left
from custodes.dashboard._sessions import tokens_match
from custodes.errors import Forbidden

ROOT = Path(__file__).resolve().parents[3]


def test_a_session_lives_until_its_expiry_to_the_microsecond() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = SessionStore(clock, lifetime=timedelta(hours=8))
    token, session = store.open("dana@asi", "cust_key")
    assert store.find(token) == session
    clock.advance(timedelta(hours=8) - timedelta(microseconds=1))
    assert store.find(token) == session
    clock.advance(timedelta(microseconds=1))
    assert store.find(token) is None
    assert store.find(token) is None  # and it stays gone


def test_sessions_are_found_only_by_their_own_token_and_end() -> None:
    store = SessionStore(FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    a, _ = store.open("dana@asi", "k1")
    b, _ = store.open("erin@auditor", "k2")
    assert a != b
    found_a, found_b = store.find(a), store.find(b)
    assert found_a is not None and found_a.principal == "dana@asi"
    assert found_b is not None and found_b.principal == "erin@auditor"
    assert store.find(a[:-1]) is None and store.find("") is None and store.find("x" * 500) is None
    store.end(a)
    assert store.find(a) is None and store.find(b) is not None


def test_tokens_match_only_when_equal_and_present() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("", "")
    assert not tokens_match(None, "abc")


@pytest.mark.parametrize(
    ("left", "shown"),
    [
        (None, "standing"),
        (timedelta(0), "expired"),
        (timedelta(seconds=-5), "expired"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=3, seconds=7), "3m 07s"),
        (timedelta(hours=3, minutes=59, seconds=59), "3h 59m"),
        (timedelta(days=2, hours=4, minutes=1), "2d 4h"),
    ],
)
def test_time_left(left: timedelta | None, shown: str) -> None:
    assert time_left(left) == shown


def test_overseers_see_every_organisation_partners_their_own() -> None:
    constitution = read_constitution(ROOT / "examples" / "constitution.yaml")
    dana = viewer_of(constitution, "dana@asi")
    frank = viewer_of(constitution, "frank@cyberdef")
    assert dana.overseer and dana.sees_organisation("lab") and dana.sees_organisation("cyberdef")
    assert not frank.overseer
    assert frank.sees_organisation("cyberdef") and not frank.sees_organisation("lab")


def test_nobody_outside_the_constitution_signs_in() -> None:
    constitution = read_constitution(ROOT / "examples" / "constitution.yaml")
    with pytest.raises(Forbidden, match="is not a principal of constitution version"):
        viewer_of(constitution, "mallory@nowhere")
    with pytest.raises(Forbidden, match="no constitution is loaded"):
        viewer_of(None, "dana@asi")
