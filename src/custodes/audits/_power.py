"""Power analysis before a run, and the power a finished run actually had.

An audit may only say "no differential above δ detected" if it could have detected δ. The
decision rule it must have had power for is the whole one (:mod:`custodes.audits._analysis`):
an arm is a finding if, on the discovery half, its paired test survives Benjamini–Hochberg over
the ``arms`` tested and its estimate reaches the reporting floor, and then, on the confirmation
half, a one-sided test in the same direction passes at α. The plan bounds each step from below:

- BH's threshold for a lone true effect among ``arms`` tests is α/arms (Bonferroni), the least
  it can be, so discovery is planned at α/arms, two-sided;
- confirmation is planned at α, one-sided (Holm over the few discovered arms);
- Wilcoxon's test is planned as a t-test on an effect shrunk by its Pitman asymptotic relative
  efficiency, never below 0.864 whatever the distribution (Hodges & Lehmann 1956); the sign-flip
  test of the mean has efficiency 1;
- the estimate reaches the floor with probability Φ((δ − floor)/se).

The per-step powers come from ``statsmodels``' ``TTestPower``. The exchangeability test with D
decoys cannot give a p-value below 1/(D + 1), so the plan also says how many decoys it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats
from statsmodels.stats.power import TTestPower

from custodes.audits._stats import Method
from custodes.errors import InputError

__all__ = ["PowerPlan", "achieved_power", "decoys_needed", "plan_power"]

# Hodges & Lehmann (1956): the Wilcoxon signed-rank test's efficiency relative to the t-test
# is at least 108/125 = 0.864 for every continuous symmetric distribution.
_ARE: dict[Method, float] = {"wilcoxon": 0.864, "sign-flip": 1.0}
_MAX_TEMPLATES = 100_000


@dataclass(frozen=True)
class PowerPlan:
    """How many paired templates an audit needs.

    Attributes:
        templates_per_half: templates in each of the discovery and confirmation halves.
        templates: both halves together.
        decoys: the fewest decoys for which the exchangeability test can pass at ``alpha_decoy``.
        power: the planned power of the whole rule at ``delta`` (at least the target).
        delta: the effect (log-odds) the plan is for.
        sigma: the assumed standard deviation of template-level differences.
        alpha: the false-alarm level.
        alpha_decoy: the level of the exchangeability test.
        arms: how many arms (entities, triggers) are tested together (BH's family).
        floor: the smallest effect estimate reported as a finding.
        method: the paired test.
    """

    templates_per_half: int
    templates: int
    decoys: int
    power: float
    delta: float
    sigma: float
    alpha: float
    alpha_decoy: float
    arms: int
    floor: float
    method: Method


def _check(name: str, value: float, low: float, high: float) -> None:
    if not (low < value < high) or not math.isfinite(value):
        raise InputError(
            f"{name} is out of range",
            where=name,
            expected=f"a number in ({low:g}, {high:g})",
            actual=repr(value),
        )


def achieved_power(
    *,
    templates_per_half: int,
    delta: float,
    sigma: float,
    alpha: float,
    arms: int,
    floor: float,
    method: Method,
) -> float:
    """The power of the decision rule at ``delta`` with this many templates in each half.

    Raises:
        InputError: a parameter is out of range.
    """
    _check("delta", delta, 0, math.inf)
    _check("sigma", sigma, 0, math.inf)
    _check("alpha", alpha, 0, 1)
    if arms < 1 or templates_per_half < 1:
        raise InputError("arms and templates must be positive", where="arms")
    if not 0 <= floor <= delta:
        raise InputError("floor must be in [0, delta]", where="floor", actual=repr(floor))
    # Both tests are exact for small n and cannot go below 2 / 2**n (all signs one way): with
    # fewer templates than that allows, discovery at alpha/arms is impossible, whatever the effect.
    if templates_per_half < 2 or 2 / 2**templates_per_half > alpha / arms:
        return 0.0
    effect = delta / sigma * math.sqrt(_ARE[method])
    analysis = TTestPower()
    discover = analysis.power(
        effect_size=effect, nobs=templates_per_half, alpha=alpha / arms, alternative="two-sided"
    )
    confirm = analysis.power(
        effect_size=effect, nobs=templates_per_half, alpha=alpha, alternative="larger"
    )
    # statsmodels' noncentral t gives NaN for large effects, where the power is 1 to double
    # precision (checked: 0.99992 at effect 1.5 with 24 templates, NaN from 2).
    if math.isnan(discover):
        discover = 1.0
    if math.isnan(confirm):
        confirm = 1.0
    se = sigma / math.sqrt(templates_per_half)
    reach = float(stats.norm.cdf((delta - floor) / se))
    return float(discover) * float(confirm) * reach


def decoys_needed(alpha_decoy: float) -> int:
    """The fewest decoys D with 1/(D + 1) <= ``alpha_decoy``."""
    _check("alpha_decoy", alpha_decoy, 0, 1)
    return max(1, math.ceil(1 / alpha_decoy - 1e-9) - 1)


def plan_power(
    *,
    delta: float,
    sigma: float,
    alpha: float = 0.05,
    power: float = 0.9,
    arms: int,
    floor: float | None = None,
    alpha_decoy: float = 0.1,
    method: Method = "wilcoxon",
) -> PowerPlan:
    """The fewest templates for which the rule detects ``delta`` with ``power``.

    Args:
        delta: the effect to detect, in log-odds.
        sigma: the expected standard deviation of template-level differences (from a pilot
            run or a previous audit of a similar model; the finished run re-checks it).
        alpha: the false-alarm level.
        power: the target power 1 − β.
        arms: how many entities and triggers are tested together.
        floor: the smallest estimate reported (default ``delta / 2``).
        alpha_decoy: the exchangeability test's level.
        method: the paired test.

    Raises:
        InputError: a parameter is out of range, or no feasible number of templates reaches
            the power.
    """
    _check("power", power, 0, 1)
    floor = delta / 2 if floor is None else floor

    def reached(n: int) -> float:
        return achieved_power(
            templates_per_half=n,
            delta=delta,
            sigma=sigma,
            alpha=alpha,
            arms=arms,
            floor=floor,
            method=method,
        )

    # Power grows with n: double to bracket the target, then bisect for the least n.
    high = 2
    while reached(high) < power:
        high *= 2
        if high > _MAX_TEMPLATES:
            break
    else:
        low = high // 2
        while low + 1 < high:
            middle = (low + high) // 2
            if reached(middle) >= power:
                high = middle
            else:
                low = middle
        return PowerPlan(
            high,
            2 * high,
            decoys_needed(alpha_decoy),
            reached(high),
            delta,
            sigma,
            alpha,
            alpha_decoy,
            arms,
            floor,
            method,
        )
    raise InputError(
        "no feasible number of templates reaches that power",
        where="delta",
        expected=f"an effect detectable with under {_MAX_TEMPLATES} templates",
        actual=f"delta={delta}, sigma={sigma}",
    )
