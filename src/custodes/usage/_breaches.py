"""Which concentration rules are breached now: a pure function of the ledger's windows, the
active grants and the rules, so every overseer can recompute it from the log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from custodes.usage._ledger import WindowView
from custodes.usage._policy import UsagePolicy, UsageRule
from custodes.usage._reviews import ReviewClock

__all__ = ["Breach", "GrantHeld", "evaluate_breaches"]


@dataclass(frozen=True)
class GrantHeld:
    """An active grant, as far as concentration rules care: whose, to which tier."""

    person: str
    capability: str


@dataclass(frozen=True)
class Breach:
    """One rule broken by one subject (a person, an organisation, or the tier itself); an
    overdue review clock is one too (its subject the tier)."""

    rule: UsageRule | ReviewClock
    subject: str
    value: float
    limit: float
    message: str


def _pct(x: float) -> str:
    return f"{x:.1%}"


def evaluate_breaches(
    policy: UsagePolicy,
    windows: Mapping[tuple[str, float], WindowView],
    grants: Iterable[GrantHeld],
) -> list[Breach]:
    """Every breach of ``policy``: ``windows`` holds each rule's (tier, span) window."""
    out: list[Breach] = []
    held: dict[str, set[str]] = defaultdict(set)
    for g in grants:
        if g.capability in policy.restricted:
            held[g.person].add(g.capability)
    for rule in policy.rules:
        if rule.kind == "unusual-key-rate":
            continue  # per key, not per tier: KeyRates.breaches
        if rule.kind == "max-restricted-grants":
            assert rule.tiers is not None
            for person, tiers in sorted(held.items()):
                if len(tiers) > rule.tiers:
                    out.append(
                        Breach(
                            rule,
                            person,
                            float(len(tiers)),
                            float(rule.tiers),
                            f"{person} holds grants to {len(tiers)} restricted tiers "
                            f"({', '.join(sorted(tiers))}): {rule.says()}",
                        )
                    )
            continue
        assert rule.capability is not None
        view = windows[(rule.capability, rule.span)]
        if rule.kind == "min-organisations":
            assert rule.organisations is not None
            n = len(view.org_calls)
            if n < rule.organisations:
                out.append(
                    Breach(
                        rule,
                        rule.capability,
                        float(n),
                        float(rule.organisations),
                        f"only {n} organisations used {rule.capability} in the window: "
                        f"{rule.says()}",
                    )
                )
            continue
        assert rule.share is not None
        persons = rule.kind == "max-person-share"
        if rule.measure == "tokens":
            amounts, total = (view.person_tokens if persons else view.org_tokens), view.tokens
        else:
            amounts, total = (view.person_calls if persons else view.org_calls), view.calls
        if total <= 0 or view.calls < rule.min_calls:
            continue
        for subject, amount in sorted(amounts.items()):
            share = amount / total
            if share > rule.share:
                out.append(
                    Breach(
                        rule,
                        subject,
                        share,
                        rule.share,
                        f"{'person' if persons else 'organisation'} {subject} holds "
                        f"{_pct(share)} of {rule.capability} {rule.measure} in the window: "
                        f"{rule.says()}",
                    )
                )
    return out
