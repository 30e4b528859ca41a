"""Concentration figures of one tier's use in one window, from the ledger's aggregates.

For each of persons and organisations, and each of calls and tokens: the total, the number of
distinct ids that used the tier, the top id and its share, the Herfindahl-Hirschman index
(the sum of the squared percentage shares: 10,000 when one id has all the use, 10,000/n when
n ids share it equally; the US merger guidelines' scale), and the coalition of use: the
smallest set of ids that together account for at least ``coalition_share`` of the total (the
largest users first, which is optimal for a sum).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from custodes.usage._ledger import WindowView

__all__ = ["Concentration", "Measure", "TierFigures", "concentration", "tier_figures"]

Measure = Literal["calls", "tokens"]


@dataclass(frozen=True)
class Concentration:
    """How concentrated one measure of a tier's use is among persons or organisations.

    ``top``, ``top_share``, ``hhi`` and ``coalition_share`` are ``None`` when the total is
    zero (no use in the window: nothing to share).
    """

    total: int
    distinct: int
    top: str | None
    top_share: float | None
    hhi: float | None
    coalition: tuple[str, ...]
    coalition_share: float | None


@dataclass(frozen=True)
class TierFigures:
    """One tier's use in the window ``[since, until]``."""

    capability: str
    window: str
    since: datetime
    until: datetime
    calls: int
    tokens: int
    persons_calls: Concentration
    persons_tokens: Concentration
    organisations_calls: Concentration
    organisations_tokens: Concentration

    @property
    def used(self) -> bool:
        """Whether the tier saw any call in the window (an unused tier has no shares)."""
        return self.calls > 0


def concentration(
    amounts: Mapping[str, int], total: int, sum_squares: int, *, coalition_share: float
) -> Concentration:
    """The figures of one measure over ids (``amounts``: the non-zero ones)."""
    distinct = sum(1 for v in amounts.values() if v > 0)
    if total <= 0:
        return Concentration(0, distinct, None, None, None, (), None)
    ranked = sorted(amounts.items(), key=lambda kv: (-kv[1], kv[0]))
    top, top_amount = ranked[0]
    need = coalition_share * total
    members: list[str] = []
    covered = 0
    for name, amount in ranked:
        if covered >= need:
            break
        members.append(name)
        covered += amount
    return Concentration(
        total=total,
        distinct=distinct,
        top=top,
        top_share=top_amount / total,
        hhi=10_000 * sum_squares / (total * total),
        coalition=tuple(members),
        coalition_share=covered / total,
    )


def tier_figures(view: WindowView, window: str, *, coalition_share: float) -> TierFigures:
    """The figures of one window of one tier."""
    until = datetime.fromtimestamp(view.cutoff + view.span, UTC)
    return TierFigures(
        capability=view.capability,
        window=window,
        since=until - timedelta(seconds=view.span),
        until=until,
        calls=view.calls,
        tokens=view.tokens,
        persons_calls=concentration(
            view.person_calls, view.calls, view.sq_person_calls, coalition_share=coalition_share
        ),
        persons_tokens=concentration(
            view.person_tokens, view.tokens, view.sq_person_tokens, coalition_share=coalition_share
        ),
        organisations_calls=concentration(
            view.org_calls, view.calls, view.sq_org_calls, coalition_share=coalition_share
        ),
        organisations_tokens=concentration(
            view.org_tokens, view.tokens, view.sq_org_tokens, coalition_share=coalition_share
        ),
    )
