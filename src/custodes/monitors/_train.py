"""Train the learned tier's linear heads and measure them in-sample and on held-out groups."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from custodes.monitors._datasets import Example
from custodes.monitors._learned import Encoder, LinearHeads, Matrix, fit_heads
from custodes.monitors._metrics import Metrics, compute_metrics

__all__ = ["TrainingResult", "train_heads"]

FOLDS = 5


@dataclass(frozen=True)
class TrainingResult:
    """The heads fitted on everything, their figures, and every example's held-out scores
    (``held_out_scores[i, k]``: example i, category ``heads.categories[k]``)."""

    heads: LinearHeads
    in_sample: dict[str, Metrics]
    held_out: dict[str, Metrics]
    held_out_scores: Matrix


def _fold(group: str) -> int:
    # Split by group (template / source), never by example: instances of one template share
    # most of their text, so an example-level split would measure memorisation.
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % FOLDS


def _targets(examples: Sequence[Example], cats: Sequence[str]) -> dict[str, np.ndarray]:
    return {c: np.asarray([1 if e.category == c else 0 for e in examples], np.int64) for c in cats}


def _metrics(
    examples: Sequence[Example], scores: Matrix, cats: Sequence[str], domain: Sequence[bool]
) -> dict[str, Metrics]:
    out = {}
    for k, cat in enumerate(cats):
        # A category is measured on its own data set: its positives against that set's
        # negatives (as the data sets' READMEs do), other categories' positives excluded.
        idx = [
            i
            for i, e in enumerate(examples)
            if domain[i] and (e.category == cat or e.category is None)
        ]
        labels = [1 if examples[i].category == cat else 0 for i in idx]
        if 0 < sum(labels) < len(labels):
            out[cat] = compute_metrics(labels, [float(scores[i, k]) for i in idx])
    return out


def train_heads(
    examples: Sequence[Example], *, encoder: Encoder, progress: Callable[[int], None] | None = None
) -> TrainingResult:
    """Encode ``examples``, fit one head per category found, and cross-validate by group.

    ``domain`` of a category is the data set it came from: examples whose ids share its
    positives' id prefix style are not tracked; instead every negative is a negative for
    every head, which is what an inline monitor sees.
    """
    feats = []
    for i, e in enumerate(examples):
        feats.append(encoder.document(e.text))
        if progress is not None:
            progress(i + 1)
    x = np.stack(feats).astype(np.float32)
    cats = sorted({e.category for e in examples if e.category is not None})
    targets = _targets(examples, cats)
    heads = fit_heads(x, targets)
    in_scores = heads.scores(x)
    held = np.zeros_like(in_scores)
    folds = np.asarray([_fold(e.group or e.id) for e in examples])
    for f in range(FOLDS):
        train = folds != f
        part = fit_heads(x[train], {c: t[train] for c, t in targets.items()})
        held[~train] = part.scores(x[~train])
    source = [e.id.split("-", 1)[0] for e in examples]
    domain_of = {c: {source[i] for i, e in enumerate(examples) if e.category == c} for c in cats}
    in_sample: dict[str, Metrics] = {}
    held_out: dict[str, Metrics] = {}
    for c in cats:
        dom = [s in domain_of[c] for s in source]
        in_sample[c] = _metrics(examples, in_scores, cats, dom)[c]
        held_out[c] = _metrics(examples, held, cats, dom)[c]
    return TrainingResult(heads, in_sample, held_out, held)
