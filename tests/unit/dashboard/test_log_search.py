"""The log page's search on a real log (SQLite and PostgreSQL): pages of 50 newest first that
continue exactly where the previous one stopped, filters by principal, organisation, type
(exact or prefix) and time, a time bound found by binary search, and bad bounds refused; the
dashboard's index finds exactly what the scan finds."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.dashboard._log_index import LogIndex
from custodes.dashboard._log_view import LogQuery, LogView, log_view, older_href
from custodes.dashboard._tables import dashboard_log_entries
from custodes.errors import InputError
from custodes.log import ANNOTATION, Entry, TransparencyLog
from custodes.wiring import Deployment

N = 130


@pytest.fixture
def ctx(transparency_log: TransparencyLog, clock: FrozenClock) -> tuple[Deployment, list[Any]]:
    start = clock.now()
    times = [start + timedelta(minutes=i) for i in range(N)]
    transparency_log.append_batch(
        [
            Entry.create(
                ANNOTATION,
                time=times[i],
                principal="alice@lab" if i % 2 == 0 else "dana@asi",
                body={"text": f"n{i}"},
            )
            for i in range(N)
        ]
    )
    transparency_log.sign_checkpoint()
    constitution = SimpleNamespace(
        principals=[
            SimpleNamespace(id="alice@lab", organisation="lab"),
            SimpleNamespace(id="dana@asi", organisation="asi"),
        ],
        witnesses=SimpleNamespace(witnesses=[]),
    )
    deployment = SimpleNamespace(
        log=transparency_log, witness=None, authority=SimpleNamespace(constitution=constitution)
    )
    return cast(Deployment, deployment), times


def _pages(deployment: Deployment, query: LogQuery, index: LogIndex | None = None) -> list[LogView]:
    pages = [log_view(deployment, query=query, search_index=index)]
    while pages[-1].more:
        before = int(older_href(pages[-1]).rsplit("before=", 1)[1])
        pages.append(log_view(deployment, query=query, before=before, search_index=index))
    return pages


def test_pages_continue_where_the_last_stopped(ctx: tuple[Deployment, list[Any]]) -> None:
    deployment, _ = ctx
    pages = _pages(deployment, LogQuery())
    assert [len(p.entries) for p in pages] == [50, 50, 30]
    shown = [e.index for p in pages for e in p.entries]
    assert shown == list(range(N - 1, -1, -1))  # every entry once, newest first, none skipped


def test_principal_organisation_and_type_filters(ctx: tuple[Deployment, list[Any]]) -> None:
    deployment, _ = ctx
    alice = [e for p in _pages(deployment, LogQuery(principal="alice@lab")) for e in p.entries]
    assert [e.index for e in alice] == list(range(N - 2, -1, -2))
    assert {e.principal for e in alice} == {"alice@lab"}
    asi = [e for p in _pages(deployment, LogQuery(organisation="asi")) for e in p.entries]
    assert [e.index for e in asi] == list(range(N - 1, -1, -2))
    assert len(log_view(deployment, query=LogQuery(type="log.")).entries) == 50
    assert len(log_view(deployment, query=LogQuery(type=ANNOTATION)).entries) == 50
    nothing = log_view(deployment, query=LogQuery(type="log.annotation"))  # not a prefix
    assert nothing.entries == () and nothing.window_start == 0 and not nothing.more
    assert log_view(deployment, query=LogQuery(organisation="nobody")).entries == ()
    # "about" an id: entries naming it in a top-level field (what other pages link to).
    assert [e.index for e in log_view(deployment, query=LogQuery(about="n5")).entries] == [5]
    assert log_view(deployment, query=LogQuery(about="n")).entries == ()  # whole values only


def test_time_bounds(ctx: tuple[Deployment, list[Any]]) -> None:
    deployment, times = ctx
    recent = log_view(deployment, query=LogQuery(since=times[100]))
    assert [e.index for e in recent.entries] == list(range(N - 1, 99, -1))
    assert not recent.more  # the scan stopped at the first entry older than since
    old = log_view(deployment, query=LogQuery(until=times[20]))
    assert [e.index for e in old.entries] == list(range(20, -1, -1))
    between = log_view(
        deployment, query=LogQuery(since=times[10], until=times[12] + timedelta(seconds=30))
    )
    assert [e.index for e in between.entries] == [12, 11, 10]
    assert log_view(deployment, query=LogQuery(until=times[0] - timedelta(days=1))).entries == ()
    assert older_href(old).startswith("/dashboard/log?until=")  # the search goes with the link
    with pytest.raises(InputError, match="since is after until"):
        log_view(deployment, query=LogQuery(since=times[5], until=times[4]))
    with pytest.raises(InputError, match="too long"):
        log_view(deployment, query=LogQuery(principal="x" * 257))


_QUERIES = [
    LogQuery(principal="alice@lab"),
    LogQuery(organisation="asi"),
    LogQuery(organisation="nobody"),
    LogQuery(type=ANNOTATION),
    LogQuery(type="log."),
    LogQuery(type="log.annotation"),
    LogQuery(about="n5"),
    LogQuery(about="n"),
    LogQuery(principal="dana@asi", type="log."),
    LogQuery(organisation="lab", about="n64"),
]


@pytest.mark.parametrize("step", [5000, 37])
def test_the_index_finds_exactly_what_the_scan_finds(
    ctx: tuple[Deployment, list[Any]], engine: Engine, step: int
) -> None:
    """Page by page, a search through the index shows the same entries as the bounded scan:
    with the index covering the whole log, and catching up 37 entries per search (part
    scanned, part from the index, the split moving between pages)."""
    deployment, times = ctx
    queries = [
        *_QUERIES,
        LogQuery(since=times[100]),
        LogQuery(until=times[20]),
        LogQuery(principal="alice@lab", since=times[10], until=times[70]),
    ]
    for query in queries:
        index = LogIndex(engine, deployment.log, step=step)
        index.clear()
        scanned = [[e.index for e in p.entries] for p in _pages(deployment, query)]
        indexed = [[e.index for e in p.entries] for p in _pages(deployment, query, index)]
        assert [i for p in indexed for i in p] == [i for p in scanned for i in p], query
        assert [len(p) for p in indexed] == [len(p) for p in scanned], query
    assert LogIndex(engine, deployment.log).covered() >= min(step, N)


def test_a_stale_index_never_shows_an_entry_that_does_not_match(
    ctx: tuple[Deployment, list[Any]], engine: Engine
) -> None:
    """The index only says which entries to read; the log decides. An index row edited to
    claim a principal shows nothing its entry does not say."""
    deployment, _ = ctx
    index = LogIndex(engine, deployment.log)
    index.clear()
    assert index.catch_up() == N
    with engine.begin() as conn:
        conn.execute(
            sa.update(dashboard_log_entries)
            .where(dashboard_log_entries.c.idx == 3)
            .values(principal="alice@lab")
        )
    alice = [
        e.index
        for p in _pages(deployment, LogQuery(principal="alice@lab"), index)
        for e in p.entries
    ]
    assert 3 not in alice and alice == list(range(N - 2, -1, -2))
