"""The constitution's ``usage`` section as typed rules (the reader has checked it at load).

Kinds of rule:

- ``max-person-share``: no person above ``share`` of a tier's ``measure`` (tokens or calls) in
  any trailing ``window``; ``max-organisation-share`` the same for organisations. With
  ``gate: true`` a call by a person (organisation) already above the share is refused until
  an overseer approves more use.
- ``min-organisations``: at least ``organisations`` distinct organisations used the tier in
  the trailing ``window``.
- ``max-restricted-grants``: no person holds active grants to more than ``tiers`` restricted
  tiers at once (restricted: ``usage.restricted``, default every tier whose access needs an
  approval).
- ``unusual-key-rate``: no API key makes, in the trailing ``window``, more than ``factor`` times
  the calls its own rate over the ``baseline`` before the window predicts, once it made
  ``min_calls`` there (of ``capability``, or of any tier): a stolen key used at a rate its owner
  never uses is flagged.

A share rule with ``min_calls`` applies once the window holds that many calls of the tier: the
first user of an unused tier holds 100% of it, which says nothing yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

from custodes._durations import say_duration
from custodes.constitution import Constitution, parse_duration
from custodes.usage._figures import Measure

__all__ = ["FIGURE_WINDOWS", "RuleKind", "UsagePolicy", "UsageRule"]

RuleKind = Literal[
    "max-person-share",
    "max-organisation-share",
    "min-organisations",
    "max-restricted-grants",
    "unusual-key-rate",
]

FIGURE_WINDOWS: Mapping[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "90d": timedelta(days=90),
}
"""The windows every figure is given for (a rule may name others)."""


@dataclass(frozen=True)
class UsageRule:
    """One concentration rule."""

    id: str
    kind: RuleKind
    capability: str | None = None
    measure: Measure = "tokens"
    share: float | None = None
    window: timedelta | None = None
    organisations: int | None = None
    tiers: int | None = None
    gate: bool = False
    min_calls: int = 0
    description: str = ""
    baseline: timedelta | None = None
    factor: float | None = None

    @property
    def span(self) -> float:
        """The rule's window in seconds (0 for a rule without one)."""
        return self.window.total_seconds() if self.window is not None else 0.0

    def says(self) -> str:
        """The rule in words, for alarms and refusals."""
        w = self.window
        days = f"{w.total_seconds() / 86_400:g} days" if w is not None else ""
        if self.kind == "max-person-share":
            return f"no person above {self.share:.0%} of {self.capability} {self.measure} in {days}"
        if self.kind == "max-organisation-share":
            return (
                f"no organisation above {self.share:.0%} of {self.capability} "
                f"{self.measure} in {days}"
            )
        if self.kind == "min-organisations":
            return f"at least {self.organisations} organisations used {self.capability} in {days}"
        if self.kind == "unusual-key-rate":
            assert w is not None and self.baseline is not None
            return (
                f"no API key above {self.factor:g} times its own rate of the "
                f"{say_duration(self.baseline)} before, over {say_duration(w)}"
                + (f" of {self.capability}" if self.capability else "")
                + (f", once it made {self.min_calls} calls" if self.min_calls else "")
            )
        return f"no person holds grants to more than {self.tiers} restricted tiers at once"


@dataclass(frozen=True)
class UsagePolicy:
    """The rules, the restricted tiers and the coalition-of-use share of a constitution."""

    rules: tuple[UsageRule, ...] = ()
    restricted: frozenset[str] = frozenset()
    coalition_share: float = 0.5

    @classmethod
    def from_constitution(cls, c: Constitution) -> UsagePolicy:
        """The policy of ``c`` (its document's ``usage`` section; none: no rules)."""
        raw: Mapping[str, Any] = (c.document or {}).get("usage") or {}
        rules = []
        for r in raw.get("rules", []):
            window = parse_duration(r["window"]) if "window" in r else None
            rules.append(
                UsageRule(
                    id=r["id"],
                    kind=cast(RuleKind, r["kind"]),
                    capability=r.get("capability"),
                    measure=cast(Measure, r.get("measure", "tokens")),
                    share=float(r["share"]) if "share" in r else None,
                    window=window,
                    organisations=r.get("organisations"),
                    tiers=r.get("tiers"),
                    gate=bool(r.get("gate", False)),
                    min_calls=int(r.get("min_calls", 0)),
                    description=r.get("description", ""),
                    baseline=parse_duration(r["baseline"]) if "baseline" in r else None,
                    factor=float(r["factor"]) if "factor" in r else None,
                )
            )
        if "restricted" in raw:
            restricted = frozenset(raw["restricted"])
        else:
            restricted = frozenset(r.capability for r in c.access_rules if r.quorum.approvals > 0)
        return cls(tuple(rules), restricted, float(raw.get("coalition_share", 0.5)))

    def spans(self) -> set[float]:
        """Every window length the ledger must keep, in seconds."""
        spans = {w.total_seconds() for w in FIGURE_WINDOWS.values()}
        spans |= {
            r.span for r in self.rules if r.window is not None and r.kind != "unusual-key-rate"
        }
        return spans

    def gating(self, capability: str) -> tuple[UsageRule, ...]:
        """The share rules of ``capability`` with ``gate: true``: a call beyond their share
        needs an overseer's approval, not only an alarm (docs/usage.md)."""
        return tuple(
            r for r in self.rules if r.gate and r.capability == capability and r.share is not None
        )
