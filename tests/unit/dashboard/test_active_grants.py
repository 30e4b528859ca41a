"""The authority's counted, soonest-first active grants (what the Now page reads) agree with
Grant.active_at over every state a grant can be in, to the microsecond."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event

from custodes.authority import Authority, Grant
from custodes.authority._grants import grant_row as _grant_row
from custodes.authority._tables import authority_grants
from custodes.clock import FrozenClock
from custodes.log import NoteSigner, TransparencyLog

_NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
_US = timedelta(microseconds=1)


def test_counted_and_ordered_active_grants_match_active_at(engine: Engine) -> None:
    clock = FrozenClock(_NOW)
    log = TransparencyLog(engine, NoteSigner.generate("test/log"), clock=clock)
    authority = Authority(engine, log, clock=clock)
    rng = random.Random(19)
    # Stored grants always expire (standing permissions come from rules, not rows).
    edges = [
        _NOW - _US,
        _NOW,
        _NOW + _US,
        _NOW - timedelta(hours=1),
        _NOW + timedelta(hours=2),
    ]
    grants = []
    for i in range(400):
        grants.append(
            Grant(
                id=f"g{i:04d}",
                principal=rng.choice(["a@x", "b@x", "c@y"]),
                capability="cap",
                rule="rule",
                granted_at=rng.choice([_NOW - timedelta(days=1), _NOW, _NOW + _US]),
                expires_at=rng.choice(edges),
                constitution_version=1,
                revoked_at=rng.choice([None, None, *edges]),
                break_glass=rng.random() < 0.2,
            )
        )
    with engine.begin() as conn:
        conn.execute(authority_grants.insert(), [_grant_row(g, i) for i, g in enumerate(grants)])
    for principals in (None, ["a@x", "b@x"], []):
        for flag in (False, True, None):
            want = [
                g
                for g in grants
                if g.active_at(_NOW)
                and (principals is None or g.principal in principals)
                and (flag is None or g.break_glass == flag)
            ]
            want.sort(key=lambda g: (g.expires_at or _NOW, g.id))
            got = authority.active_grants(principals=principals, break_glass=flag, limit=1000)
            assert [g.id for g in got] == [g.id for g in want]
            count = authority.count_active_grants(principals=principals, break_glass=flag)
            assert count == len(want)
            assert [
                g.id
                for g in authority.active_grants(principals=principals, break_glass=flag, limit=5)
            ] == [g.id for g in want[:5]]
    assert 0 < authority.count_active_grants() < len(grants)  # the states are mixed


def test_the_now_pages_grant_queries_walk_an_index(sqlite_engine: Engine) -> None:
    """The Now page's active grants and their count are answered from
    ix_authority_grants_active (a range from now, in the page's order), not by scanning and
    sorting every grant ever made: SQLite's own query plan for the statements the authority
    sends says so."""
    clock = FrozenClock(_NOW)
    log = TransparencyLog(sqlite_engine, NoteSigner.generate("test/log"), clock=clock)
    authority = Authority(sqlite_engine, log, clock=clock)
    sent: list[tuple[str, tuple[object, ...]]] = []

    def record(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        if "authority_grants" in statement and isinstance(params, tuple):
            sent.append((statement, params))

    event.listen(sqlite_engine, "before_cursor_execute", record)
    try:
        authority.active_grants(break_glass=False, limit=100)
        authority.active_grants(break_glass=True, limit=200)
        authority.count_active_grants(break_glass=False)
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", record)
    assert len(sent) == 3
    with sqlite_engine.connect() as conn:
        for statement, params in sent:
            plan = [
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            ]
            assert any("USING" in p and "INDEX ix_authority_grants_active" in p for p in plan), (
                statement,
                plan,
            )
            assert not any(p.startswith("SCAN") or "TEMP B-TREE" in p for p in plan), plan
