"""A calibrated combination of the rules and learned tiers, thresholds for a false-alarm
budget, and a drift check.

Combining tiers by their maximum lets the noisier tier set every threshold (a learned head
that saturates on a PEM certificate pushes the 1%-FPR threshold above every rules score).
Instead, per category, a logistic regression reads both tiers' scores (as log-odds, plus
whether a rule fired) and is fitted on *held-out* learned scores (each example scored by
heads that never saw its family), so the combination learns how far to trust each tier on
text neither was fitted to.

The calibration keeps, per category, quantiles of the combined held-out scores of
negatives and positives: a false-alarm budget per reviewer-day becomes a threshold (the
negatives' quantile at the implied false-positive rate, and the positives' share above it
is the expected recall), and the reference quantiles of the negatives' scores let
:meth:`Calibration.drift` warn when live traffic no longer looks like the calibration set
(population stability index over the reference deciles, Siddiqi 2006; PSI above 0.25 is
the conventional "significant shift").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from custodes.errors import InputError

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "CategoryCalibration",
    "Drift",
    "Operating",
    "MODES",
    "combine_features",
    "fit_calibration",
    "mode_features",
]

CALIBRATION_FILE = "monitor_calibration.json"
_FORMAT = "custodes-monitor-calibration/v1"
_EPS = 1e-3
_QUANTILES = 400
_MAX_KEPT = 20_000
PSI_WARN = 0.25
_MIN_LIVE = 50  # fewer live scores than this make PSI noise, not drift


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    out: npt.NDArray[np.float64] = np.log(q / (1 - q))
    return out


def combine_features(rules: Sequence[float], learned: Sequence[float]) -> npt.NDArray[np.float64]:
    """The combiner's inputs: log-odds of each tier and whether a rule fired."""
    r = np.asarray(rules, float)
    learned_ = np.asarray(learned, float)
    return np.stack([_logit(r), _logit(learned_), (r > 0).astype(float)], axis=1)


def _fit_logistic(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], l2: float = 1.0
) -> npt.NDArray[np.float64]:
    """Class-balanced L2 logistic regression by Newton's method (three inputs and a bias)."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    pos = max(1.0, y.sum())
    neg = max(1.0, len(y) - y.sum())
    sw = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg))
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(30):
        p = 1 / (1 + np.exp(-(xb @ w)))
        g = xb.T @ (sw * (p - y)) + reg * w
        h = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _sorted(values: npt.NDArray[np.float64]) -> tuple[float, ...]:
    """All values, sorted (thresholds need the exact order statistics), rounded up to six
    decimals so that a stored value is never below the score it stands for."""
    ordered = np.sort(values)
    if len(ordered) > _MAX_KEPT:  # evenly spaced order statistics keep the shape
        ordered = ordered[np.linspace(0, len(ordered) - 1, _MAX_KEPT).astype(int)]
    return tuple(math.ceil(float(v) * 1e6) / 1e6 for v in ordered)


def _quantiles(values: Sequence[float]) -> tuple[float, ...]:
    if not len(values):
        return ()
    qs = np.quantile(np.asarray(values, float), np.linspace(0, 1, _QUANTILES + 1))
    return tuple(round(float(v), 6) for v in qs)


@dataclass(frozen=True)
class Operating:
    """An operating point of one category: the threshold, the false-positive rate it was
    chosen for, the expected recall and false alarms per day at that threshold."""

    category: str
    fpr: float
    threshold: float
    expected_tpr: float
    false_alarms_per_day: float


@dataclass(frozen=True)
class Drift:
    """How far one category's live scores moved from the calibration set."""

    category: str
    psi: float
    live: int
    warn: bool
    message: str


Mode = Literal["logistic", "noisy_or", "learned"]
MODES: tuple[Mode, ...] = ("logistic", "noisy_or", "learned")


def mode_features(
    mode: Mode, rules: Sequence[float], learned: Sequence[float]
) -> npt.NDArray[np.float64]:
    """The inputs of one combiner form: both tiers' log-odds and whether a rule fired
    (``logistic``); the log-odds of their noisy-OR, so a firing rule lifts the score as a
    second independent witness would (``noisy_or``); the learned tier alone (``learned``).
    Unused columns are zero, so every form is three weights and a bias."""
    x = combine_features(rules, learned)
    if mode == "logistic":
        return x
    out = np.zeros_like(x)
    if mode == "noisy_or":
        r, lr = np.asarray(rules, float), np.asarray(learned, float)
        out[:, 0] = _logit(1 - (1 - r) * (1 - lr))
    else:
        out[:, 1] = x[:, 1]
    return out


@dataclass(frozen=True)
class CategoryCalibration:
    """The combiner's form and coefficients and the calibration-set quantiles of one
    category."""

    category: str
    coef: tuple[float, float, float, float]
    negatives: tuple[float, ...]
    positives: tuple[float, ...]
    reference: tuple[float, ...]
    mode: Mode = "logistic"

    def combine(self, rules: float, learned: float) -> float:
        """The calibrated probability that a text is this category, from the two tiers'
        scores (logistic regression over the mode's features)."""
        x = mode_features(self.mode, [rules], [learned])[0]
        z = float(np.dot(self.coef[:3], x) + self.coef[3])
        # Clamped: exp overflows a float past ~709, and a probability this close to 0 or 1
        # is that value to every threshold anyway.
        return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))

    def threshold(self, fpr: float) -> float:
        """The lowest threshold whose calibration false-positive rate is at most ``fpr``
        (just above the negative that the budget can no longer afford; ties stay below)."""
        n = len(self.negatives)
        if not n:
            return 1.0
        allowed = int(math.floor(max(0.0, fpr) * n + 1e-9))
        if allowed >= n:
            return 0.0
        return min(1.0, self.negatives[n - allowed - 1] + 1e-6)

    def tpr_at(self, threshold: float) -> float:
        """The share of the calibration positives scoring at least ``threshold`` (0 with no
        positives)."""
        if not self.positives:
            return 0.0
        return float((np.asarray(self.positives) >= threshold).mean())


@dataclass(frozen=True)
class Calibration:
    """Per-category calibration of the combined tiers (see the module docstring)."""

    categories: Mapping[str, CategoryCalibration]
    trained_on: tuple[str, ...] = ()

    def combine(self, category: str, rules: float, learned: float) -> float:
        """:meth:`CategoryCalibration.combine` for ``category``; an uncalibrated category
        takes the larger score (neither tier is discounted without evidence)."""
        cal = self.categories.get(category)
        if cal is None:
            return max(rules, learned)
        return cal.combine(rules, learned)

    def budget(
        self,
        *,
        texts_per_day: float,
        false_alarms_per_reviewer_day: float,
        reviewers: int = 1,
    ) -> list[Operating]:
        """Thresholds that keep false alarms within the reviewers' daily budget, shared
        equally among the categories.

        Raises:
            InputError: a figure is not positive.
        """
        if texts_per_day <= 0 or false_alarms_per_reviewer_day <= 0 or reviewers <= 0:
            raise InputError(
                "budget figures must be positive",
                where="monitors thresholds",
                expected="texts per day, false alarms per reviewer-day and reviewers > 0",
                actual=f"{texts_per_day}, {false_alarms_per_reviewer_day}, {reviewers}",
            )
        per_category = false_alarms_per_reviewer_day * reviewers / len(self.categories)
        fpr = min(1.0, per_category / texts_per_day)
        out = []
        for name, cal in sorted(self.categories.items()):
            t = cal.threshold(fpr)
            out.append(Operating(name, fpr, t, cal.tpr_at(t), fpr * texts_per_day))
        return out

    def drift(self, live: Mapping[str, Sequence[float]]) -> list[Drift]:
        """Population stability index of each category's live scores against the
        calibration set's, over the reference deciles."""
        out = []
        for name, scores in sorted(live.items()):
            cal = self.categories.get(name)
            if cal is None or not cal.reference:
                continue
            ref = np.asarray(cal.reference)
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11))[1:-1])
            expected = np.histogram(ref, bins=np.r_[-np.inf, edges, np.inf])[0] / len(ref)
            got = np.histogram(np.asarray(scores, float), bins=np.r_[-np.inf, edges, np.inf])[0]
            n = int(got.sum())
            if n < _MIN_LIVE:
                out.append(Drift(name, 0.0, n, False, f"only {n} live scores; need {_MIN_LIVE}"))
                continue
            actual = got / n
            e, a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
            psi = float(np.sum((a - e) * np.log(a / e)))
            warn = psi > PSI_WARN
            msg = (
                f"live scores drifted from the calibration set (PSI {psi:.2f} > {PSI_WARN}); "
                "thresholds may no longer hold their false-alarm budget: recalibrate"
                if warn
                else f"PSI {psi:.2f}: within the calibration set's range"
            )
            out.append(Drift(name, psi, n, warn, msg))
        return out

    def to_json(self) -> str:
        """The calibration as the JSON file :meth:`from_json` reads (packaged as
        ``monitor_calibration.json``)."""
        return json.dumps(
            {
                "format": _FORMAT,
                "trained_on": list(self.trained_on),
                "categories": {
                    k: {
                        "mode": c.mode,
                        "coef": list(c.coef),
                        "negatives": list(c.negatives),
                        "positives": list(c.positives),
                        "reference": list(c.reference),
                    }
                    for k, c in sorted(self.categories.items())
                },
            }
        )

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Calibration:
        """Parse a saved calibration.

        Raises:
            InputError: not a calibration file of this format.
        """
        try:
            doc = json.loads(text)
            if doc.get("format") != _FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            cats = {
                k: CategoryCalibration(
                    k,
                    tuple(float(x) for x in v["coef"]),  # type: ignore[arg-type]
                    tuple(float(x) for x in v["negatives"]),
                    tuple(float(x) for x in v["positives"]),
                    tuple(float(x) for x in v["reference"]),
                    _mode(v.get("mode", "logistic")),
                )
                for k, v in doc["categories"].items()
            }
            if any(len(c.coef) != 4 for c in cats.values()):
                raise ValueError("coef must have 4 numbers")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                "not a monitor calibration file",
                where=where,
                expected=f"{_FORMAT} JSON",
                actual=str(exc),
            ) from exc
        return cls(cats, tuple(str(x) for x in doc.get("trained_on", [])))


def _mode(value: object) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise ValueError(f"mode {value!r}, expected one of {', '.join(MODES)}")


def _figure(y: npt.NDArray[np.float64], s: npt.NDArray[np.float64]) -> float:
    from custodes.monitors._metrics import compute_metrics

    if y.sum() == 0 or y.sum() == len(y):
        return 0.0
    m = compute_metrics([int(v) for v in y], [float(v) for v in s])
    return m.auroc + m.tpr_at_5pct


def _choose_mode(
    r: Sequence[float], lr: Sequence[float], y: npt.NDArray[np.float64], groups: Sequence[str]
) -> Mode:
    """The combiner form with the best cross-validated figure (AUROC + TPR at 5% FPR),
    folds by ``groups`` (scenario families): a choice made on held-out data too."""
    keys = sorted(set(groups))
    if len(keys) < 3:
        return "logistic"
    fold = np.asarray([keys.index(g) % 3 for g in groups])
    best: tuple[float, Mode] = (-1.0, "logistic")
    for mode in MODES:
        x = mode_features(mode, r, lr)
        held = np.zeros(len(y))
        for f in range(3):
            w = _fit_logistic(x[fold != f], y[fold != f])
            held[fold == f] = x[fold == f] @ w[:3] + w[3]
        figure = _figure(y, held)
        if figure > best[0] + 1e-9:
            best = (figure, mode)
    return best[1]


def fit_calibration(
    rules: Mapping[str, Sequence[float]],
    learned: Mapping[str, Sequence[float]],
    labels: Mapping[str, Sequence[int]],
    *,
    trained_on: Sequence[str] = (),
    groups: Mapping[str, Sequence[str]] | None = None,
) -> Calibration:
    """Fit the combiner of each category on held-out learned scores and keep the combined
    scores' order statistics (negatives, positives) and quantiles (all) for thresholds and
    drift. With ``groups`` (each row's scenario family), the combiner's form is chosen per
    category by cross-validation over them; without, it is the logistic form."""
    cats = {}
    for name in sorted(labels):
        y = np.asarray(labels[name], float)
        mode: Mode = "logistic"
        if groups is not None:
            mode = _choose_mode(rules[name], learned[name], y, groups[name])
        x = mode_features(mode, rules[name], learned[name])
        w = _fit_logistic(x, y)
        combined = 1 / (1 + np.exp(-(x @ w[:3] + w[3])))
        cats[name] = CategoryCalibration(
            name,
            (float(w[0]), float(w[1]), float(w[2]), float(w[3])),
            _sorted(combined[y == 0]),
            _sorted(combined[y == 1]),
            # Live traffic is almost all negative: drift is measured against the negatives,
            # which is what the false-alarm budget rests on.
            _quantiles(combined[y == 0]),
            mode,
        )
    return Calibration(cats, tuple(trained_on))
