"""The figures equal a direct recomputation from the log's gateway entries (Hypothesis).

The recomputation below reads entries with the standard library only and applies the definition
of docs/usage.md: a ``gateway.call/v1`` entry whose outcome used the model counts, as the person
at the end of its chain (its principal's person when it has none), with its total tokens;
a window of span ``w`` at ``now`` holds the entries with ``time >= now - w``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.log import format_time
from custodes.usage import FIGURE_WINDOWS, Concentration, Ledger, count_entry, tier_figures

EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
PERSONS = {"alice": "lab", "bob": "lab", "frank": "cyberdef", "grace": "bankcert", "dana": "asi"}
PRINCIPALS = {"alice": ("alice", "lab"), "agent": ("alice", "lab"), "grace": ("grace", "bankcert")}
TIERS = ["general", "cyber-frontier"]
OUTCOMES = ["answered", "denied", "blocked", "cut", "upstream_error", "abandoned"]
SPANS = {name: w.total_seconds() for name, w in FIGURE_WINDOWS.items()} | {"2h": 7200.0}


def resolve(principal: str) -> tuple[str, str]:
    return PRINCIPALS.get(principal, (principal, "unknown"))


@st.composite
def entries(draw: st.DrawFn) -> bytes:
    seconds = draw(st.integers(0, 100 * 86_400))
    body: dict[str, Any] = {
        "request_id": "r",
        "route": "/v1/chat/completions",
        "method": "POST",
        "outcome": draw(st.sampled_from(OUTCOMES)),
        "status": 200,
        "request_sha256": "0" * 64,
        "capability": draw(st.sampled_from([*TIERS, None])),
    }
    tokens = draw(st.sampled_from(["total", "parts", "none"]))
    if tokens == "total":
        body["total_tokens"] = draw(st.integers(0, 5000))
    elif tokens == "parts":
        body["prompt_tokens"] = draw(st.integers(0, 500))
        body["completion_tokens"] = draw(st.none() | st.integers(0, 500))
    principal = draw(st.sampled_from([*PRINCIPALS, "stranger"]))
    if draw(st.booleans()):
        person = draw(st.sampled_from(sorted(PERSONS)))
        body["on_behalf_of"] = {
            "chain": [principal, person],
            "person": person,
            "organisation": PERSONS[person],
        }
    entry = {
        "type": draw(st.sampled_from(["gateway.call/v1"] * 6 + ["gateway.call_start/v1"])),
        "time": format_time(
            EPOCH + timedelta(seconds=seconds, microseconds=draw(st.integers(0, 9)))
        ),
        "principal": principal,
        "body": body,
    }
    return bytes(rfc8785.dumps(entry))


def recount(
    log: list[bytes], tier: str, span: float, now: float, by: str, measure: str
) -> dict[str, Any]:
    amounts: dict[str, int] = defaultdict(int)
    total = 0
    for data in log:
        e = json.loads(data)
        b = e["body"]
        if e["type"] != "gateway.call/v1" or b["outcome"] not in ("answered", "cut", "abandoned"):
            continue
        if b.get("capability") != tier:
            continue
        if datetime.fromisoformat(e["time"]).timestamp() < now - span:
            continue
        who = b.get("on_behalf_of")
        person, org = (who["person"], who["organisation"]) if who else resolve(e["principal"])
        if "total_tokens" in b:
            tokens = b["total_tokens"]
        else:
            tokens = (b.get("prompt_tokens") or 0) + (b.get("completion_tokens") or 0)
        amount = 1 if measure == "calls" else tokens
        key = person if by == "persons" else org
        amounts[key] += amount
        total += amount
    ranked = sorted(((v, k) for k, v in amounts.items()), key=lambda x: (-x[0], x[1]))
    if total == 0:
        return {"total": 0, "distinct": sum(1 for v in amounts.values() if v), "top": None}
    covered, members = 0, []
    for v, k in ranked:
        if covered >= total / 2:
            break
        members.append(k)
        covered += v
    return {
        "total": total,
        "distinct": sum(1 for v in amounts.values() if v),
        "top": ranked[0][1],
        "top_share": ranked[0][0] / total,
        "hhi": sum((100 * v / total) ** 2 for v in amounts.values()),
        "coalition": tuple(members),
    }


def same(c: Concentration, expected: dict[str, Any]) -> None:
    assert c.total == expected["total"]
    assert c.distinct == expected["distinct"]
    assert c.top == expected["top"]
    if expected["top"] is not None:
        assert c.top_share is not None and math.isclose(c.top_share, expected["top_share"])
        assert c.hhi is not None and math.isclose(c.hhi, expected["hhi"], rel_tol=1e-9)
        assert c.coalition == expected["coalition"]


@settings(max_examples=150, deadline=None)
@given(
    log=st.lists(entries(), max_size=60),
    # Queries between additions, forward and backward in time (a clock set back).
    queries=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 110 * 86_400)), max_size=8),
    build_first=st.booleans(),
)
def test_figures_equal_a_recount_of_the_entries(
    log: list[bytes], queries: list[tuple[int, int]], build_first: bool
) -> None:
    ledger = Ledger(SPANS.values())
    at = {after: EPOCH.timestamp() + s for after, s in queries}
    if build_first:  # windows built on an empty ledger, then kept current call by call
        for span in SPANS.values():
            ledger.view("cyber-frontier", span, EPOCH.timestamp())
    for i, data in enumerate(log):
        if i in at:
            for span in SPANS.values():
                ledger.view("cyber-frontier", span, at[i])
        counted = count_entry(i, data, resolve)
        if counted is not None:
            ledger.add(counted)
    now = EPOCH.timestamp() + 101 * 86_400 if not queries else at[max(at)]
    for tier in TIERS:
        for name, span in SPANS.items():
            f = tier_figures(ledger.view(tier, span, now), name, coalition_share=0.5)
            same(f.persons_calls, recount(log, tier, span, now, "persons", "calls"))
            same(f.persons_tokens, recount(log, tier, span, now, "persons", "tokens"))
            same(f.organisations_calls, recount(log, tier, span, now, "orgs", "calls"))
            same(f.organisations_tokens, recount(log, tier, span, now, "orgs", "tokens"))
            assert f.calls == f.persons_calls.total and f.tokens == f.persons_tokens.total
