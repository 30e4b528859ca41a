"""Dashboard sessions expire and end; viewers see what the constitution lets them see."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.constitution import read_constitution
from custodes.dashboard import SessionStore, viewer_of
from custodes.dashboard._render import time_left
from custodes.dashboard._sessions import tokens_match
from custodes.dashboard._tables import dashboard_sessions
from custodes.errors import Forbidden

ROOT = Path(__file__).resolve().parents[3]


def test_a_session_lives_until_its_expiry_to_the_microsecond(engine: Engine) -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = SessionStore(engine, clock, lifetime=timedelta(hours=8))
    token, session = store.open("dana@asi", method="api-key", credential="key_1")
    assert store.find(token) == session
    clock.advance(timedelta(hours=8) - timedelta(microseconds=1))
    assert store.find(token) == session
    clock.advance(timedelta(microseconds=1))
    assert store.find(token) is None
    assert store.find(token) is None  # and it stays gone
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(dashboard_sessions)).scalar() == 0
        )


def test_sessions_are_found_only_by_their_own_token_and_end(engine: Engine) -> None:
    store = SessionStore(engine, FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    a, _ = store.open("dana@asi", method="api-key", credential="k1")
    b, _ = store.open("erin@auditor", method="key-signature", credential="ed25519:AAAA")
    assert a != b
    found_a, found_b = store.find(a), store.find(b)
    assert found_a is not None and found_a.principal == "dana@asi"
    assert found_a.method == "api-key" and found_a.credential == "k1"
    assert found_b is not None and found_b.principal == "erin@auditor"
    assert found_b.method == "key-signature" and found_b.credential == "ed25519:AAAA"
    assert store.find(a[:-1]) is None and store.find("") is None and store.find("x" * 500) is None
    store.end(a)
    assert store.find(a) is None and store.find(b) is not None


def test_sessions_outlive_the_process_and_only_digests_are_stored(engine: Engine) -> None:
    """A restarted server (a new store on the same database) finds the sessions it had; the
    table holds no token, only SHA-256 digests."""
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    token, session = SessionStore(engine, clock).open("dana@asi", method="api-key", credential="k1")
    assert SessionStore(engine, clock).find(token) == session
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(dashboard_sessions))]
    assert len(stored) == 1 and not any(token in str(v) for v in stored[0])
    assert stored[0][0] == hashlib.sha256(token.encode()).hexdigest()


def test_past_the_bound_the_oldest_sessions_are_evicted(engine: Engine) -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = SessionStore(engine, clock, max_sessions=3)
    tokens = []
    for i in range(5):
        tokens.append(store.open(f"p{i}@x", method="api-key", credential=f"k{i}")[0])
        clock.advance(timedelta(seconds=1))
    assert [store.find(t) is not None for t in tokens] == [False, False, True, True, True]


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
