"""The tests an audit runs, from ``scipy`` and ``statsmodels``; only the glue is ours.

An audit compares outcomes (log-odds of "yes") of the same template with one arm (an entity, a
trigger) against its control. Three rules keep it from crying wolf:

- **Template-level aggregation.** Queries that reuse one template (repeated samples, rephrasings)
  share that template's quirks, so they are not independent: every template contributes one
  paired difference, the mean of its queries', before any test (:func:`aggregate_by_template`).
- **Paired tests across templates**: Wilcoxon's signed-rank test (``scipy.stats.wilcoxon``) or a
  sign-flip permutation test of the mean (``scipy.stats.permutation_test``, ``"samples"``),
  then Benjamini–Hochberg across the arms tested (``statsmodels`` ``multipletests``).
- **Exchangeability with decoys.** Entities nobody could be loyal to (invented names of the same
  kind) go through the same battery. If the arm is just another name, its statistic is
  exchangeable with the decoys', so its rank among them is uniform: the rank p-value
  ``(1 + #{decoys at least as extreme}) / (D + 1)`` (a Monte Carlo-style exact test; Besag &
  Clifford 1989, Phipson & Smyth 2010).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from custodes.errors import InputError

__all__ = [
    "Method",
    "PairedTest",
    "adjust_bh",
    "adjust_holm",
    "aggregate_by_template",
    "decoy_rank_p",
    "one_sided",
    "paired_test",
    "paired_tests",
]

Method = Literal["wilcoxon", "sign-flip"]

# Below two templates there is no spread to test against (and no t interval).
_MIN_TEMPLATES = 2


@dataclass(frozen=True)
class PairedTest:
    """A paired test over template-level differences.

    Attributes:
        n: the number of templates (paired differences).
        mean: the mean difference (the effect estimate, in the outcome's unit: log-odds).
        ci_low: lower end of the confidence interval of the mean (Student's t).
        ci_high: upper end.
        p_value: two-sided p-value of the chosen method.
        t: the mean over its standard error (0 when every difference is equal), the
            statistic decoys are ranked by.
        sd: the standard deviation of the differences (ddof=1).
        method: the test that gave ``p_value``.
        confidence: the level of ``ci_low``..``ci_high``.
    """

    n: int
    mean: float
    ci_low: float
    ci_high: float
    p_value: float
    t: float
    sd: float
    method: Method
    confidence: float = 0.95


def aggregate_by_template(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """One difference per template: the mean of the differences of the queries sharing it.

    Args:
        pairs: ``(template id, difference)`` for every query pair.

    Returns:
        template id -> mean difference, in first-seen order.

    Raises:
        InputError: a difference is not a finite number.
    """
    sums: dict[str, list[float]] = defaultdict(list)
    for template, value in pairs:
        if not math.isfinite(value):
            raise InputError(
                "a paired difference is not a finite number",
                where=f"template {template!r}",
                expected="a finite log-odds difference",
                actual=repr(value),
            )
        sums[template].append(value)
    # math.fsum: exactly rounded, and (unlike np.mean) cheap on the few values a template has.
    return {template: math.fsum(values) / len(values) for template, values in sums.items()}


def _mean_stat(x: np.ndarray, axis: int) -> np.ndarray:
    mean: np.ndarray = np.mean(x, axis=axis)
    return mean


def paired_test(
    differences: Sequence[float],
    *,
    method: Method = "wilcoxon",
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> PairedTest:
    """Test whether template-level paired differences are centred on zero (two-sided).

    Wilcoxon's signed-rank test is exact for up to 50 templates without ties or zeros and
    normal-approximated beyond (scipy's ``method="auto"``); zero differences are dropped
    (``zero_method="wilcox"``), and all-zero differences give p = 1. The sign-flip test
    permutes the signs of the differences: exact when ``2**n <= resamples``, randomised (with
    ``seed``) beyond.

    Args:
        differences: one difference per template (see :func:`aggregate_by_template`).
        method: ``"wilcoxon"`` or ``"sign-flip"``.
        confidence: the confidence level of the interval of the mean.
        resamples: the sign-flip test's number of resamples.
        seed: the sign-flip test's random seed, so a report can be reproduced.

    Raises:
        InputError: fewer than two differences, a non-finite one, or a confidence outside (0, 1).
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size < _MIN_TEMPLATES:
        raise InputError(
            "a paired test needs at least two templates",
            where="differences",
            expected=f">= {_MIN_TEMPLATES} template-level differences",
            actual=str(d.size),
        )
    if not np.all(np.isfinite(d)):
        raise InputError("a paired difference is not finite", where="differences")
    if not 0 < confidence < 1:
        raise InputError("confidence must be in (0, 1)", where="confidence", actual=str(confidence))
    n = int(d.size)
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0.0:
        # Every template moved by exactly the same amount (0 or not): no spread to test.
        p = 1.0 if mean == 0.0 else 0.0
        return PairedTest(n, mean, mean, mean, p, 0.0, 0.0, method, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    if method == "wilcoxon":
        if not np.any(d != 0):
            p = 1.0
        else:
            p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    elif method == "sign-flip":
        result = stats.permutation_test(
            (d,),
            _mean_stat,
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            alternative="two-sided",
            rng=np.random.default_rng(seed),
        )
        p = float(result.pvalue)
    else:  # pragma: no cover - Literal guards this for typed callers
        raise InputError("unknown test", where="method", actual=repr(method))
    return PairedTest(
        n, mean, mean - half, mean + half, min(1.0, p), mean / se, sd, method, confidence
    )


def paired_tests(
    rows: Sequence[Sequence[float]],
    *,
    method: Method = "wilcoxon",
    confidence: float = 0.95,
    seed: int = 0,
) -> list[PairedTest]:
    """:func:`paired_test` of each row, the same results, in fewer calls into scipy.

    An audit tests every arm and decoy of a family over the same templates; one call of
    ``scipy.stats.wilcoxon`` over the rows (``axis=-1``) costs what one row's does. Only rows
    of equal length without zeros, ties or a zero spread go together: those are the rows for
    which scipy's ``method="auto"`` is the exact test row by row too (a batch with one tied
    row would switch every row to another method), so each result equals :func:`paired_test`'s
    (tests/unit/audits/test_stats.py). Other rows, and the sign-flip method, are tested one
    by one.

    Raises:
        InputError: as :func:`paired_test`, for the first row it refuses.
    """
    out: list[PairedTest | None] = [None] * len(rows)
    batches: dict[int, list[int]] = defaultdict(list)
    arrays = [np.asarray(row, dtype=float) for row in rows]
    for i, d in enumerate(arrays):
        clean = (
            method == "wilcoxon"
            and d.ndim == 1
            and _MIN_TEMPLATES <= d.size <= 50  # scipy's exact range
            and bool(np.all(np.isfinite(d)))
            and bool(np.all(d != 0))
            and np.unique(np.abs(d)).size == d.size  # no ties among |d|
        )
        if clean:
            batches[d.size].append(i)
        else:
            out[i] = paired_test(rows[i], method=method, confidence=confidence, seed=seed)
    if not 0 < confidence < 1:
        raise InputError("confidence must be in (0, 1)", where="confidence", actual=str(confidence))
    for n, indices in batches.items():
        block = np.stack([arrays[i] for i in indices])
        p_values = stats.wilcoxon(
            block, zero_method="wilcox", alternative="two-sided", axis=-1
        ).pvalue
        t_quantile = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
        for i, d, p in zip(indices, block, np.atleast_1d(p_values), strict=True):
            mean = float(d.mean())
            sd = float(d.std(ddof=1))
            se = sd / math.sqrt(n)  # > 0: the values are distinct
            half = t_quantile * se
            out[i] = PairedTest(
                n,
                mean,
                mean - half,
                mean + half,
                min(1.0, float(p)),
                mean / se,
                sd,
                method,
                confidence,
            )
    return [t for t in out if t is not None]


def one_sided(test: PairedTest, *, direction: int) -> float:
    """The one-sided p-value of ``test`` in ``direction`` (+1: above zero, -1: below).

    Both methods are symmetric under sign flips, so the one-sided p is half the two-sided one
    when the estimate points that way and one minus that half otherwise.
    """
    if direction not in (1, -1):
        raise InputError("direction must be +1 or -1", where="direction", actual=str(direction))
    if test.mean == 0.0:
        return 1.0
    half = test.p_value / 2
    return half if (test.mean > 0) == (direction > 0) else 1.0 - half


def adjust_bh(p_values: Sequence[float], *, alpha: float) -> tuple[list[bool], list[float]]:
    """Benjamini–Hochberg (``multipletests(method="fdr_bh")``): rejections and q-values."""
    if not p_values:
        return [], []
    reject, adjusted, _, _ = multipletests(list(p_values), alpha=alpha, method="fdr_bh")
    return [bool(r) for r in reject], [float(q) for q in adjusted]


def adjust_holm(p_values: Sequence[float], *, alpha: float) -> tuple[list[bool], list[float]]:
    """Holm's step-down correction (``multipletests(method="holm")``), for confirmations."""
    if not p_values:
        return [], []
    # Holm (1979): sorted ascending, p_(i) is compared with alpha / (m - i) (i from 0) and the
    # adjusted value is the running maximum of (m - i) p_(i), capped at 1. Written out rather
    # than called from statsmodels (its "holm" branch, 0.15, runs a full gc.collect() on every
    # call: 0.2 s to 1 s in a large process, which dominated the zoo's analyses and the
    # statistics tests); tests/unit/audits/test_stats.py checks it equals multipletests.
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(m, 0, -1)))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    # Rejected: every hypothesis before the first sorted p above its threshold.
    passes = p[order] <= alpha / np.arange(m, 0, -1)
    first_fail = int(np.argmin(passes)) if not passes.all() else m
    reject = np.zeros(m, dtype=bool)
    reject[order[:first_fail]] = True
    return [bool(r) for r in reject], [float(q) for q in adjusted]


def decoy_rank_p(statistic: float, decoys: Sequence[float], *, upper: bool = False) -> float:
    """How unusual ``statistic`` is among the decoys' (two-sided, by absolute value; with
    ``upper``, one-sided: how high it is).

    Under exchangeability, ``(1 + #{|decoy| >= |statistic|}) / (D + 1)`` is a valid p-value
    (ties count against the arm, so it is conservative); with ``upper`` the count is of
    ``decoy >= statistic``. With D decoys it is never below ``1 / (D + 1)``.

    Raises:
        InputError: there are no decoys.
    """
    if not decoys:
        raise InputError(
            "the exchangeability test needs decoys",
            where="decoys",
            expected="at least one decoy entity or trigger",
        )
    if upper:
        at_least = sum(1 for value in decoys if value >= statistic)
    else:
        at_least = sum(1 for value in decoys if abs(value) >= abs(statistic))
    return (1 + at_least) / (len(decoys) + 1)
