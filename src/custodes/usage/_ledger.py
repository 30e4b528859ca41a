"""Per-tier, per-window aggregates of use, kept current one call at a time.

Each tier keeps its calls in time order (four compact arrays: time, person, organisation,
tokens). Each trailing window of a tier keeps a start position and, for the calls from there to
the end, the calls and tokens of every person and organisation, their totals, the sums of their
squares (the Herfindahl-Hirschman index without a pass). A new call adds to every window of its
tier in O(1); moving a window's end to ``now`` subtracts the calls that fell out of it, each
once (amortised O(1) a call). A window that has not been built yet (a rebuild from the log) is
computed in one vectorised pass.

A call is in the window of span ``w`` at ``now`` exactly when its time ``t >= now - w``.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["Counted", "Ledger", "WindowView"]


@dataclass(frozen=True, slots=True)
class Counted:
    """One call that counts as use: when (POSIX seconds), which tier, whose, how many tokens."""

    index: int
    time: float
    capability: str
    person: str
    organisation: str
    tokens: int


class _Side:
    """Calls and tokens per id (a person or an organisation) of one window."""

    __slots__ = ("calls", "sq_calls", "sq_tokens", "tokens")

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.tokens: list[int] = []
        self.sq_calls = 0
        self.sq_tokens = 0

    def grow(self, n: int) -> None:
        """Make room for ids below ``n`` (ids are interned densely, so lists beat dicts)."""
        if len(self.calls) < n:
            extra = n - len(self.calls)
            self.calls.extend([0] * extra)
            self.tokens.extend([0] * extra)

    def add(self, i: int, tokens: int, sign: int) -> None:
        """Count one call of id ``i`` in (``sign`` 1) or out of (-1) the window, keeping the
        sums of squares current."""
        c, t = self.calls[i], self.tokens[i]
        # (c +- 1)^2 - c^2 = +-2c + 1; likewise for tokens: the squares stay exact integers.
        self.sq_calls += 2 * c * sign + 1
        self.sq_tokens += tokens * (2 * t * sign + tokens)
        if sign > 0:
            self.calls[i], self.tokens[i] = c + 1, t + tokens
        else:
            self.calls[i], self.tokens[i] = c - 1, t - tokens

    def load(self, ids: np.ndarray, tokens: np.ndarray, n: int) -> None:
        """Set the counts from every call in the window at once (``ids``, ``tokens``: one
        element per call; ``n`` ids in all)."""
        calls = np.bincount(ids, minlength=n).astype(np.int64)
        toks = np.bincount(ids, weights=tokens, minlength=n)
        self.calls = [int(x) for x in calls]
        self.tokens = [int(x) for x in toks]
        self.sq_calls = sum(c * c for c in self.calls)
        self.sq_tokens = sum(t * t for t in self.tokens)


class _Window:
    """One trailing window of a tier: where it starts in the tier's arrays, the cutoff time
    it was moved to, and its aggregates (``built`` False until first computed)."""

    __slots__ = ("built", "calls", "cutoff", "orgs", "persons", "span", "start", "tokens")

    def __init__(self, span: float) -> None:
        self.span = span
        self.start = 0
        self.cutoff = float("-inf")
        self.calls = 0
        self.tokens = 0
        self.persons = _Side()
        self.orgs = _Side()
        self.built = False


@dataclass(frozen=True)
class WindowView:
    """A snapshot of one window's aggregates (copies: safe to read after the lock)."""

    capability: str
    span: float
    cutoff: float
    calls: int
    tokens: int
    person_calls: dict[str, int]
    person_tokens: dict[str, int]
    org_calls: dict[str, int]
    org_tokens: dict[str, int]
    sq_person_calls: int
    sq_person_tokens: int
    sq_org_calls: int
    sq_org_tokens: int


class _Tier:
    """One capability tier's calls in time order (parallel arrays) and its windows."""

    def __init__(self, spans: Iterable[float]) -> None:
        self.times = array("d")
        self.persons = array("q")
        self.orgs = array("q")
        self.tokens = array("q")
        self.windows = {s: _Window(s) for s in spans}


class Ledger:
    """Every tier's calls and its trailing windows' aggregates. Thread-safe.

    Args:
        spans: the window lengths kept, in seconds (the figures' and the rules').
    """

    def __init__(self, spans: Iterable[float]) -> None:
        self.spans = tuple(sorted(set(spans)))
        self._tiers: dict[str, _Tier] = {}
        self._person_ids: dict[str, int] = {}
        self._persons: list[str] = []
        self._org_ids: dict[str, int] = {}
        self._orgs: list[str] = []
        self._lock = threading.Lock()
        self.count = 0

    def _intern(self, ids: dict[str, int], names: list[str], name: str) -> int:
        """The dense integer id of ``name`` (a new one if unseen)."""
        i = ids.get(name)
        if i is None:
            i = ids[name] = len(names)
            names.append(name)
        return i

    def _tier(self, capability: str) -> _Tier:
        """The tier of ``capability``, made with every window span at its first call."""
        tier = self._tiers.get(capability)
        if tier is None:
            tier = self._tiers[capability] = _Tier(self.spans)
        return tier

    def capabilities(self) -> list[str]:
        """The capabilities with at least one call counted, sorted."""
        with self._lock:
            return sorted(self._tiers)

    def add(self, call: Counted) -> None:
        """Count one call (any order of times; in time order it costs O(windows))."""
        with self._lock:
            self._add(call)

    def extend(self, calls: Iterable[Counted]) -> None:
        """Count many calls; windows not built yet are computed at their next use."""
        with self._lock:
            for call in calls:
                self._add(call)

    def _add(self, call: Counted) -> None:
        """Count ``call`` under the lock: insert it in time order, then add it to each built
        window it falls in (or shift the window's start if it falls before it)."""
        tier = self._tier(call.capability)
        p = self._intern(self._person_ids, self._persons, call.person)
        o = self._intern(self._org_ids, self._orgs, call.organisation)
        t, tok = call.time, call.tokens
        times = tier.times
        if not times or t >= times[-1]:
            pos = len(times)
            times.append(t)
            tier.persons.append(p)
            tier.orgs.append(o)
            tier.tokens.append(tok)
        else:  # an entry older than the newest (rare: clocks of several replicas)
            pos = bisect_right(times, t)
            times.insert(pos, t)
            tier.persons.insert(pos, p)
            tier.orgs.insert(pos, o)
            tier.tokens.insert(pos, tok)
        self.count += 1
        for w in tier.windows.values():
            if not w.built:
                continue
            if t >= w.cutoff:
                # pos >= w.start: every call before start is older than the cutoff.
                self._include(w, p, o, tok, 1)
            else:
                w.start += 1  # inserted before the window's first call
        return

    def _include(self, w: _Window, p: int, o: int, tokens: int, sign: int) -> None:
        """Count a call of person ``p`` and organisation ``o`` in (1) or out of (-1) ``w``."""
        w.persons.grow(p + 1)
        w.orgs.grow(o + 1)
        w.persons.add(p, tokens, sign)
        w.orgs.add(o, tokens, sign)
        w.calls += sign
        w.tokens += tokens * sign

    def _build(self, tier: _Tier, w: _Window, cutoff: float) -> None:
        """Compute ``w`` from scratch at ``cutoff``: the first call at or after it found by
        binary search, the counts from there by one vectorised pass."""
        times = np.frombuffer(tier.times, dtype=np.float64) if tier.times else np.zeros(0)
        start = int(np.searchsorted(times, cutoff, side="left"))
        persons = np.frombuffer(tier.persons, dtype=np.int64)[start:] if tier.persons else None
        orgs = np.frombuffer(tier.orgs, dtype=np.int64)[start:] if tier.orgs else None
        tokens = np.frombuffer(tier.tokens, dtype=np.int64)[start:] if tier.tokens else None
        w.persons, w.orgs = _Side(), _Side()
        if persons is not None and orgs is not None and tokens is not None and len(persons):
            w.persons.load(persons, tokens.astype(np.float64), len(self._persons))
            w.orgs.load(orgs, tokens.astype(np.float64), len(self._orgs))
            w.calls, w.tokens = len(persons), int(tokens.sum())
        else:
            w.calls = w.tokens = 0
        w.start, w.cutoff, w.built = start, cutoff, True

    def _advance(self, tier: _Tier, w: _Window, now: float) -> None:
        """Move ``w``'s end to ``now``: the calls that fell out of it are subtracted, each
        once; a clock set back brings calls into it again."""
        cutoff = now - w.span
        if not w.built:
            self._build(tier, w, cutoff)
            return
        times, persons, orgs, tokens = tier.times, tier.persons, tier.orgs, tier.tokens
        if cutoff > w.cutoff:
            while w.start < len(times) and times[w.start] < cutoff:
                i = w.start
                self._include(w, persons[i], orgs[i], tokens[i], -1)
                w.start += 1
        else:  # a clock set back: calls come into the window again
            while w.start > 0 and times[w.start - 1] >= cutoff:
                w.start -= 1
                i = w.start
                self._include(w, persons[i], orgs[i], tokens[i], 1)
        w.cutoff = cutoff

    def share(
        self,
        capability: str,
        span: float,
        now: float,
        *,
        person: str | None = None,
        organisation: str | None = None,
        tokens: bool = True,
    ) -> tuple[int, int]:
        """(the person's or organisation's amount, the tier's total) in the window: calls,
        or tokens when ``tokens``. The hot path of a gate: no copies."""
        with self._lock:
            tier = self._tiers.get(capability)
            if tier is None:
                return 0, 0
            w = tier.windows[span]
            self._advance(tier, w, now)
            if person is not None:
                side, i = w.persons, self._person_ids.get(person)
            else:
                side, i = w.orgs, self._org_ids.get(organisation or "")
            values = side.tokens if tokens else side.calls
            mine = values[i] if i is not None and i < len(values) else 0
            return mine, (w.tokens if tokens else w.calls)

    def view(self, capability: str, span: float, now: float) -> WindowView:
        """The window of ``span`` seconds ending at ``now`` (POSIX seconds) of one tier."""
        with self._lock:
            tier = self._tiers.get(capability)
            if tier is None:
                return WindowView(capability, span, now - span, 0, 0, {}, {}, {}, {}, 0, 0, 0, 0)
            w = tier.windows[span]
            self._advance(tier, w, now)
            persons, orgs = self._persons, self._orgs
            return WindowView(
                capability,
                span,
                w.cutoff,
                w.calls,
                w.tokens,
                {persons[i]: c for i, c in enumerate(w.persons.calls) if c},
                {persons[i]: w.persons.tokens[i] for i, c in enumerate(w.persons.calls) if c},
                {orgs[i]: c for i, c in enumerate(w.orgs.calls) if c},
                {orgs[i]: w.orgs.tokens[i] for i, c in enumerate(w.orgs.calls) if c},
                w.persons.sq_calls,
                w.persons.sq_tokens,
                w.orgs.sq_calls,
                w.orgs.sq_tokens,
            )
