"""Monitor metrics at a fixed audit budget, computed exactly as the project's ``score.py``.

TPR at FPR x is conservative: the best TPR over thresholds t ("flag if score >= t") whose
empirical FPR is <= x, tied scores flagged together, no interpolation. AUROC is the
Mann-Whitney statistic with average ranks for ties; AUPRC is average precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Confusion", "Metrics", "compute_metrics"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Confusion:
    """Counts at the operating threshold: true and false positives and negatives."""

    tp: int
    fp: int
    tn: int
    fn: int


@dataclass(frozen=True)
class Metrics:
    """A detector's quality on one labelled set.

    The figures that matter for a monitor are true-positive rates at low false-positive rates
    (a monitor that raises many false alarms is switched off), so those are reported at 0.1,
    1 and 5 %, with the thresholds that reach them.

    Attributes:
        n: texts scored.
        positives: texts labelled positive.
        negatives: texts labelled negative.
        tpr_at_1pct: true-positive rate at a 1 % false-positive rate.
        threshold_at_1pct: the score threshold of that point.
        tpr_at_01pct: true-positive rate at 0.1 %.
        threshold_at_01pct: its threshold.
        tpr_at_5pct: true-positive rate at 5 %.
        auroc: area under the ROC curve.
        auprc: area under the precision-recall curve.
        confusion: counts at ``operating_threshold``.
        operating_threshold: the threshold the counts are taken at.
    """

    n: int
    positives: int
    negatives: int
    tpr_at_1pct: float
    threshold_at_1pct: float
    tpr_at_01pct: float
    threshold_at_01pct: float
    tpr_at_5pct: float
    auroc: float
    auprc: float
    confusion: Confusion
    operating_threshold: float


def _roc(
    y: FloatArray, s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The ROC curve of scores ``s`` against labels ``y``: thresholds, false- and true-positive
    rates (from the origin), and the counts at each distinct score.
    """
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.where(np.diff(s_sorted))[0]
    idx = np.r_[distinct, len(y) - 1]
    tps = np.cumsum(y_sorted)[idx]
    fps = (idx + 1) - tps
    p, n = y.sum(), len(y) - y.sum()
    return (np.r_[np.inf, s_sorted[idx]], np.r_[0.0, fps / n], np.r_[0.0, tps / p], tps, fps)


def _tpr_at(
    thr: FloatArray, fpr: FloatArray, tpr: FloatArray, target: float
) -> tuple[float, float]:
    """The highest true-positive rate with a false-positive rate at most ``target``, and its
    threshold.
    """
    ok = np.where(fpr <= target + 1e-12)[0]
    i = ok[np.argmax(tpr[ok])]
    return float(tpr[i]), float(thr[i])


def _auroc(y: FloatArray, s: FloatArray) -> float:
    """The area under the ROC curve as the Mann-Whitney U statistic, ties given mid-ranks."""
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    ranks = np.empty(len(s), dtype=float)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s_sorted[j + 1] == s_sorted[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    p, n = y.sum(), len(y) - y.sum()
    return float((ranks[y == 1].sum() - p * (p + 1) / 2) / (p * n))


def compute_metrics(
    labels: list[int], scores: list[float], *, operating_fpr: float = 0.01
) -> Metrics:
    """Metrics for ``scores`` against binary ``labels`` (both classes must occur).

    The confusion matrix is taken at the threshold that achieves the best TPR within
    ``operating_fpr`` (the audit budget).

    Raises:
        ValueError: only one class present, or lengths differ.
    """
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    p, n = int(y.sum()), int(len(y) - y.sum())
    if p == 0 or n == 0:
        raise ValueError("need both positives and negatives")
    thr, fpr, tpr, tps, fps = _roc(y, s)
    t1, th1 = _tpr_at(thr, fpr, tpr, 0.01)
    t01, th01 = _tpr_at(thr, fpr, tpr, 0.001)
    t5, _ = _tpr_at(thr, fpr, tpr, 0.05)
    _, op = _tpr_at(thr, fpr, tpr, operating_fpr)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / y.sum()
    ap = float(np.sum((recall - np.r_[0.0, recall[:-1]]) * precision))
    flagged = s >= op
    confusion = Confusion(
        tp=int((flagged & (y == 1)).sum()),
        fp=int((flagged & (y == 0)).sum()),
        tn=int((~flagged & (y == 0)).sum()),
        fn=int((~flagged & (y == 1)).sum()),
    )
    return Metrics(len(y), p, n, t1, th1, t01, th01, t5, _auroc(y, s), ap, confusion, op)
