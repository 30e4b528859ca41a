"""Each API key's calls over time, and the ``unusual-key-rate`` rule: a key whose call rate in
the trailing window jumps far above its own rate before it (a stolen key, used as its owner
never does) is a breach, raised as an alarm like every other usage rule.

A key's use is every ``gateway.call/v1`` entry naming its ``key_id``, whatever the outcome: an
attacker hammering the gateway with a stolen key is using it even when every call is refused.
The rule compares the calls in ``[now - window, now]`` with what the key's rate over the
``baseline`` before the window predicts (the key's history there, or as much of it as there is:
a key first seen a moment ago predicts nothing, so ``min_calls`` keeps a new key's first
ordinary burst from being flagged).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from custodes._durations import say_duration
from custodes.usage._breaches import Breach
from custodes.usage._counting import GATEWAY_CALL, entry_time
from custodes.usage._policy import UsageRule

__all__ = ["KeyRates", "KeyUse", "key_use"]

_CALL_MARK = b'"type":"gateway.call/v1"'
_KEY_MARK = b'"key_id":"'


@dataclass(frozen=True, slots=True)
class KeyUse:
    """One call made with an API key: which key, whose, when (POSIX seconds), which tier."""

    key_id: str
    principal: str
    time: float
    capability: str | None


def key_use(data: bytes) -> KeyUse | None:
    """The key use a log entry records, or None (not a gateway call, or no key named)."""
    if _CALL_MARK not in data or _KEY_MARK not in data:
        return None
    try:
        entry: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or entry.get("type") != GATEWAY_CALL:
        return None
    body = entry.get("body")
    if not isinstance(body, dict):
        return None
    key = body.get("key_id")
    if not isinstance(key, str) or not key:
        return None
    capability = body.get("capability")
    return KeyUse(
        key_id=key,
        principal=str(entry.get("principal")),
        time=entry_time(str(entry["time"])),
        capability=capability if isinstance(capability, str) else None,
    )


@dataclass
class _Key:
    principal: str
    first: float
    calls: list[tuple[float, str]] = field(default_factory=list)  # (time, capability), sorted


class KeyRates:
    """Every key's calls within the longest horizon a rule looks at. Thread-safe.

    Args:
        horizon: how far back calls are kept, in seconds (the longest window plus baseline).
    """

    def __init__(self, horizon: float = 0.0) -> None:
        self.horizon = horizon
        self._keys: dict[str, _Key] = {}
        self._lock = threading.Lock()

    def add(self, use: KeyUse) -> None:
        """Count one call of a key."""
        with self._lock:
            k = self._keys.get(use.key_id)
            if k is None:
                k = self._keys[use.key_id] = _Key(use.principal, use.time)
            k.first = min(k.first, use.time)
            # Entries arrive nearly in time order: an insort is an append almost always.
            insort(k.calls, (use.time, use.capability or ""))

    def _prune(self, now: float) -> None:
        cut = now - self.horizon
        for key_id in list(self._keys):
            k = self._keys[key_id]
            i = bisect_left(k.calls, (cut, ""))
            if i:
                del k.calls[:i]
            if not k.calls:
                del self._keys[key_id]

    def breaches(self, rules: Iterable[UsageRule], now: float) -> list[Breach]:
        """The keys that break each ``unusual-key-rate`` rule at ``now``."""
        out: list[Breach] = []
        rules = [r for r in rules if r.kind == "unusual-key-rate"]
        if not rules:
            return out
        with self._lock:
            if self.horizon > 0:
                self._prune(now)
            keys = {k: (v.principal, v.first, list(v.calls)) for k, v in self._keys.items()}
        for rule in rules:
            assert rule.window is not None and rule.baseline is not None
            assert rule.factor is not None
            window = rule.window.total_seconds()
            baseline = rule.baseline.total_seconds()
            for key_id, (principal, first, calls) in sorted(keys.items()):
                times = [t for t, cap in calls if rule.capability in (None, cap)]
                start = now - window
                recent = len(times) - bisect_left(times, start)
                if recent < max(1, rule.min_calls):
                    continue
                since = max(first, start - baseline)
                before = bisect_left(times, start) - bisect_left(times, since)
                # As much history as the key has, but never less than one window of it.
                span = max(start - since, window)
                expected = before * window / span
                limit = rule.factor * expected
                if recent <= limit:
                    continue
                history = (
                    f"its rate over the {say_duration(timedelta(seconds=start - since))} before "
                    f"predicts {expected:.1f}"
                    if start - since >= 1
                    else "it was not used before"
                )
                out.append(
                    Breach(
                        rule,
                        key_id,
                        float(recent),
                        limit,
                        f"API key {key_id} of {principal} made {recent} calls in the last "
                        f"{say_duration(timedelta(seconds=window))}, where {history}: "
                        f"{rule.says()}",
                    )
                )
        return out
