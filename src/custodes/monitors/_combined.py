"""The ``combined`` detector: rules and learned tiers joined by the calibrated combiner.

Per category the rules tier's score (0 when no rule fired) and the learned head's score go
through :class:`~custodes.monitors._calibration.Calibration`; a detection is reported when
the combined score reaches the category's threshold at the default budget (1% false
positives on the calibration set), so the reported score is comparable across categories,
and either a rule fired or the score also reaches the strict threshold (0.1%): alone, the
learned tier says what a text is about more than what it shows, and on real changelogs and
documentation it would flag the topic.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

from custodes.errors import MonitorError
from custodes.monitors._calibration import CALIBRATION_FILE, Calibration
from custodes.monitors._detector import Category, Detection, Detector, Span

__all__ = ["CombinedDetector", "load_calibration"]

DEFAULT_FPR = 0.01
STRICT_FPR = 0.001  # what the learned tier must reach alone to report

_lock = threading.Lock()
_cached: Calibration | None = None


def load_calibration(path: Path | None = None) -> Calibration:
    """The packaged calibration (or ``path``'s).

    Raises:
        MonitorError: no calibration was trained yet.
        InputError: the file is not a calibration.
    """
    global _cached
    if path is not None:
        return Calibration.from_json(path.read_text(encoding="utf-8"), where=str(path))
    with _lock:
        if _cached is None:
            res = resources.files("custodes.monitors").joinpath(CALIBRATION_FILE)
            if not res.is_file():
                raise MonitorError("no calibration: run `custodes monitors train` first")
            _cached = Calibration.from_json(res.read_text(encoding="utf-8"), where=CALIBRATION_FILE)
        return _cached


class CombinedDetector:
    """Runs the rules detectors and the learned tier and reports calibrated scores.

    Thread-safe when its parts are (the built-in ones are).
    """

    name = "combined"

    def __init__(
        self,
        rules: list[Detector],
        learned: Detector,
        calibration: Calibration,
        *,
        fpr: float = DEFAULT_FPR,
    ) -> None:
        """Combine the ``rules`` detectors and the ``learned`` one through ``calibration``, flagging
        at the operating point of false-positive rate ``fpr``.
        """
        self._rules = rules
        self._learned = learned
        self._calibration = calibration
        cats: list[Category] = []
        for d in [*rules, learned]:
            cats.extend(c for c in d.categories if c not in cats)
        self.categories: tuple[Category, ...] = tuple(cats)
        self._thresholds = {c: cal.threshold(fpr) for c, cal in calibration.categories.items()}
        self._strict = {c: cal.threshold(STRICT_FPR) for c, cal in calibration.categories.items()}

    def _parts(self, text: str) -> tuple[dict[str, float], dict[str, Detection]]:
        """The rules' best score per category for ``text``, and the detection that gave it (the
        evidence a combined detection carries).
        """
        rules: dict[str, float] = {}
        evidence: dict[str, Detection] = {}
        for det in self._rules:
            for d in det.detect(text):
                if d.score > rules.get(d.category, 0.0):
                    rules[d.category] = d.score
                    evidence[d.category] = d
        return rules, evidence

    def score_text(self, text: str) -> dict[str, float]:
        """The combined score of every category."""
        rules, _ = self._parts(text)
        learned = self._learned.score_text(text)  # type: ignore[attr-defined]
        return {
            c: self._calibration.combine(c, rules.get(c, 0.0), float(learned.get(c, 0.0)))
            for c in self.categories
        }

    def detect(self, text: str) -> list[Detection]:
        """One detection per category, scored by the calibrated combination of both tiers
        (the rules tier's evidence spans kept)."""
        return self.detect_scored(text)[0]

    def detect_scored(self, text: str) -> tuple[list[Detection], dict[str, float]]:
        """:meth:`detect`'s detections and every category's combined score (one pass)."""
        rules, evidence = self._parts(text)
        learned = self._learned.score_text(text)  # type: ignore[attr-defined]
        out = []
        scores: dict[str, float] = {}
        for c in self.categories:
            r, lscore = rules.get(c, 0.0), float(learned.get(c, 0.0))
            score = self._calibration.combine(c, r, lscore)
            scores[c] = score
            if score < self._thresholds.get(c, 0.5):
                continue
            if r <= 0.0 and score < self._strict.get(c, 1.0):
                # The learned tier alone is a topic detector ("reads like a kernel log", "a
                # CVE changelog"): without a rule's structural evidence it reports only at
                # the strict threshold. The score still ranks every text for evaluation.
                continue
            ev = evidence.get(c)
            out.append(
                Detection(
                    self.name,
                    c,
                    round(score, 6),
                    (ev.reason + "; " if ev else "")
                    + f"calibrated combination of rules {r:.2f} and learned {lscore:.2f}",
                    ev.spans if ev else (Span(0, len(text)),),
                    ev.fingerprint if ev else None,
                    {
                        **(ev.details if ev else {}),
                        "rules": f"{r:.4f}",
                        "learned": f"{lscore:.4f}",
                        "threshold": f"{self._thresholds.get(c, 0.5):.4f}",
                    },
                )
            )
        return out, scores
