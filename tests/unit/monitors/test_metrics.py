"""compute_metrics agrees with the project's scorer (score.py, run in place, not copied)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.monitors import compute_metrics


@pytest.fixture(scope="module")
def scorer(data_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "data_score", data_dir / "datasets" / "monitors" / "score.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference(scorer: ModuleType, labels: list[int], scores: list[float]) -> dict[str, float]:
    y, s = np.array(labels), np.array(scores, dtype=float)
    thr, fpr, tpr, _, _ = scorer.roc_points(y, s)
    return {
        "t1": scorer.tpr_at_fpr(thr, fpr, tpr, 0.01)[0],
        "t01": scorer.tpr_at_fpr(thr, fpr, tpr, 0.001)[0],
        "auroc": scorer.auroc(y, s),
        "ap": scorer.average_precision(y, s),
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=300))
def test_matches_score_py(scorer: ModuleType, pairs: list[tuple[int, int]]) -> None:
    labels = [p[0] for p in pairs]
    if len(set(labels)) < 2:
        labels[0], labels[1] = 0, 1
    scores = [p[1] / 20 for p in pairs]  # coarse scores: many ties, as real detectors give
    ref = _reference(scorer, labels, scores)
    m = compute_metrics(labels, scores)
    assert m.tpr_at_1pct == pytest.approx(ref["t1"])
    assert m.tpr_at_01pct == pytest.approx(ref["t01"])
    assert m.auroc == pytest.approx(ref["auroc"])
    assert m.auprc == pytest.approx(ref["ap"])


def test_confusion_at_the_operating_threshold() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.1, 0.85, 0.2, 0.1, 0.0, 0.0]
    m = compute_metrics(labels, scores, operating_fpr=0.2)
    assert m.operating_threshold == 0.8  # one false positive of five is within 20%
    assert (m.confusion.tp, m.confusion.fp, m.confusion.tn, m.confusion.fn) == (2, 1, 4, 1)


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        compute_metrics([1, 1], [0.2, 0.3])
