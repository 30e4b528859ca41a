"""Train the learned tier's heads and measure them honestly: in-sample, and held out by
scenario family, by organisation, by tool-call format, and by all three at once.

Instances of one template share most of their text, so a random split measures
memorisation. Every held-out figure here keeps whole groups apart:

* ``family``: 5 folds over scenario families (the template behind an example; for the
  vulnerability set, its source group), every variant of an example in its family's fold;
* ``organisation``: leave one fictional organisation out (its transcripts are only tested);
* ``format``: leave one tool-call convention out;
* ``family+organisation+format``: fold k's families are tested only in transcripts of an
  organisation or a format that fold's training never saw.

Hyper-parameters (L2 strength, whether a head reads the pooled embeddings or the behaviour
features alone, and whether it adds the per-unit term: each action or sentence of a
transcript scored on what it does, the maximum taken, :mod:`custodes.monitors._units`) are
chosen per category by an inner 3-fold family split of each
outer fold's training rows (nested cross-validation), and once more on all rows for the
packaged heads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from custodes.monitors._calibration import Calibration, fit_calibration
from custodes.monitors._datasets import Example
from custodes.monitors._learned import Encoder, LinearHeads, Matrix
from custodes.monitors._metrics import Metrics, compute_metrics

__all__ = [
    "GRID",
    "SCHEMES",
    "UNIT_GRID",
    "CombinationResult",
    "Config",
    "TrainingResult",
    "encode_examples",
    "encode_units",
    "fit_combination",
    "rules_scores",
    "train_heads",
]

FOLDS = 5
INNER_FOLDS = 3
EMB_COMPONENTS = 48
SCHEMES = ("family", "organisation", "format", "family+organisation+format")
# The id prefixes of the coup set and of the material generated for it (data/datasets/monitors/
# generated): one domain, each coup category measured against all of their negatives.
_COUP_SOURCES = frozenset({"dev", "var", "fam", "req"})


@dataclass(frozen=True)
class Config:
    """One hyper-parameter setting of a head: L2 strength, whether it reads the pooled
    embeddings, and whether it adds the maximum of its per-unit scores (multiple-instance
    learning over the transcript's actions and sentences)."""

    l2: float
    embeddings: bool
    units: bool = False

    def describe(self) -> str:
        """The setting in words (for reports)."""
        reads = "embeddings+behaviour" if self.embeddings else "behaviour"
        return f"L2 {self.l2:g}, {reads}" + (", max over units" if self.units else "")


GRID = (Config(3.0, True), Config(30.0, True), Config(3.0, False), Config(30.0, False))
# The grid with the per-unit term as well (``custodes monitors train --units``): it lifts every
# coup category's learned figures held out by family, but its fits take several times longer.
UNIT_GRID = (
    *GRID,
    Config(3.0, False, True),
    Config(30.0, False, True),
    Config(30.0, True, True),
)


@dataclass(frozen=True)
class TrainingResult:
    """The packaged heads, their figures and every example's held-out scores.

    ``held_out`` is the ``family`` scheme (also in ``schemes``); ``held_out_scores[i, k]``
    is example i's family-held-out score for ``heads.categories[k]`` (used to fit the
    calibrated combination of tiers). ``chosen`` is each category's hyper-parameters.
    """

    heads: LinearHeads
    in_sample: dict[str, Metrics]
    held_out: dict[str, Metrics]
    held_out_scores: Matrix
    schemes: dict[str, dict[str, Metrics]]
    chosen: dict[str, Config]


def _hash_fold(key: str, folds: int) -> int:
    """The fold (of ``folds``) that ``key`` falls in: a stable hash, so a family stays in one fold
    across runs and machines.
    """
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % folds


def encode_examples(
    examples: Sequence[Example], encoder: Encoder, progress: Callable[[int], None] | None = None
) -> Matrix:
    """Feature vectors (pooled embeddings, then behaviour features) of ``examples``."""
    from custodes.monitors._normalise import normalise

    feats = []
    for i, e in enumerate(examples):
        feats.append(encoder.document(normalise(e.text).text))
        if progress is not None:
            progress(i + 1)
    return np.stack(feats).astype(np.float32)


def encode_units(
    examples: Sequence[Example], progress: Callable[[int], None] | None = None
) -> list[Matrix]:
    """Each example's unit features (one row per action or sentence; see ``_units``)."""
    from custodes.monitors._normalise import normalise
    from custodes.monitors._units import text_unit_features

    out = []
    for i, e in enumerate(examples):
        out.append(text_unit_features(normalise(e.text).text)[1])
        if progress is not None:
            progress(i + 1)
    return out


class _Bags:
    """The unit rows of a set of examples as indices into one table of distinct rows (agent
    transcripts repeat the same actions, ``ls`` or a test run, so the table is several times
    smaller than the rows); each example's bag also holds the zero row (the "no act" unit, so
    that every bag has a unit and its maximum is never below 0), and no row twice (the
    maximum over a bag does not see duplicates)."""

    def __init__(self, units: Sequence[Matrix], dim: int) -> None:
        """Index the rows of ``units`` (one matrix per example, ``dim`` columns)."""
        stacked = np.concatenate(
            [np.zeros((1, dim), np.float32), *(u.astype(np.float32) for u in units if len(u))]
        )
        self.matrix, inverse = np.unique(stacked, axis=0, return_inverse=True)
        inverse = np.asarray(inverse, np.int64).reshape(-1)
        null = inverse[0]
        self.bags: list[npt.NDArray[np.int64]] = []
        pos = 1
        for u in units:
            self.bags.append(np.unique(np.concatenate([[null], inverse[pos : pos + len(u)]])))
            pos += len(u)

    def subset(
        self, idx: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The table rows of the bags of examples ``idx``, concatenated, and each bag's size."""
        if not len(idx):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        chosen = [self.bags[i] for i in idx]
        return np.concatenate(chosen), np.asarray([len(b) for b in chosen], np.int64)


def _bag_max(logits: Matrix, counts: npt.NDArray[np.int64]) -> tuple[Matrix, Matrix]:
    """Per bag (consecutive rows, ``counts`` each) the maximum of each column, and each row's
    share of its bag's gradient (1 / ties on the maximum rows, 0 elsewhere)."""
    return _BagIndex(counts).max(logits)


class _BagIndex:
    """Where each bag's rows sit among consecutive rows (``counts`` per bag), for the
    per-bag maximum and its gradient."""

    def __init__(self, counts: npt.NDArray[np.int64]) -> None:
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.bag = np.repeat(np.arange(len(counts)), counts)

    def max(self, logits: Matrix) -> tuple[Matrix, Matrix]:
        """Each bag's maximum per column, and each row's share of its bag's gradient."""
        top = np.maximum.reduceat(logits, self.offsets, axis=0)
        is_max = (logits >= top[self.bag]).astype(np.float32)
        ties = np.add.reduceat(is_max, self.offsets, axis=0)
        share = is_max / ties[self.bag]
        return top.astype(np.float32), share.astype(np.float32)


def _fit_mil(
    z: Matrix,
    y: npt.NDArray[np.float32],
    table: Matrix,
    rows: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    l2: float,
    steps: int = 250,
) -> tuple[Matrix, Matrix, Matrix]:
    """Class-balanced L2 logistic regression per column of ``y`` whose log-odds add, to the
    document term ``z @ w + b``, the maximum over the bag's units of ``unit @ v``
    (multiple-instance learning: a bag is positive when some unit is; the gradient of the
    unit term flows through the maximal unit, shared among ties, so the first steps see the
    mean of a bag's units and later ones the unit that carries the act). A bag's units are
    ``table[rows]``, ``counts`` rows per bag.

    Each step scores only the distinct units these bags use, once, and sums the gradient of
    a unit over the bag rows that are it with one sparse product."""
    from scipy import sparse

    n, d = z.shape
    pos = np.maximum(1.0, y.sum(axis=0))
    sw = np.where(y == 1, n / (2 * pos), n / (2 * np.maximum(1.0, n - pos))).astype(np.float32)
    k = y.shape[1]
    used, local = np.unique(rows, return_inverse=True)
    local = np.asarray(local, np.int64).reshape(-1)
    units = np.ascontiguousarray(table[used], np.float32)
    # one[u, r] = 1 when bag row r is distinct unit u: the per-unit sum of a row gradient.
    one = sparse.csr_matrix(
        (np.ones(len(local), np.float32), (local, np.arange(len(local)))),
        shape=(len(used), len(local)),
    )
    index = _BagIndex(counts)
    w = np.zeros((k, d), np.float32)
    b = np.zeros(k, np.float32)
    v = np.zeros((k, table.shape[1]), np.float32)
    vw, vb, vv = np.zeros_like(w), np.zeros_like(b), np.zeros_like(v)
    lr, momentum = 0.5, 0.9
    for _ in range(steps):
        top, share = index.max((units @ v.T)[local])
        p = 0.5 * (1.0 + np.tanh(0.5 * (z @ w.T + b + top)))
        g = sw * (p - y)
        per_unit = np.asarray(one @ (share * g[index.bag]), np.float32)
        vw = momentum * vw - lr * ((g.T @ z) / n + l2 * w / n)
        vb = momentum * vb - lr * g.mean(axis=0)
        vv = momentum * vv - lr * ((per_unit.T @ units) / n + l2 * v / n)
        w += vw
        b += vb
        v += vv
    return w.astype(np.float32), b.astype(np.float32), v.astype(np.float32)


def _fit(
    z: Matrix, y: npt.NDArray[np.float32], l2: float, steps: int = 250
) -> tuple[Matrix, Matrix]:
    """Class-balanced L2 logistic regression per column of ``y`` on standardised ``z``
    (heavy-ball gradient descent; a few thousand rows by a thousand features)."""
    n, d = z.shape
    pos = np.maximum(1.0, y.sum(axis=0))
    sw = np.where(y == 1, n / (2 * pos), n / (2 * np.maximum(1.0, n - pos))).astype(np.float32)
    w = np.zeros((y.shape[1], d), np.float32)
    b = np.zeros(y.shape[1], np.float32)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    lr, momentum = 0.5, 0.9
    for _ in range(steps):
        p = 0.5 * (1.0 + np.tanh(0.5 * (z @ w.T + b)))
        g = sw * (p - y)
        vw = momentum * vw - lr * ((g.T @ z) / n + l2 * w / n)
        vb = momentum * vb - lr * g.mean(axis=0)
        w += vw
        b += vb
    return w.astype(np.float32), b.astype(np.float32)


def _scores(z: Matrix, w: Matrix, b: Matrix) -> Matrix:
    """The logistic scores of the linear heads ``w``, ``b`` on the whitened features ``z`` (the tanh
    form, which does not overflow).
    """
    out: Matrix = (0.5 * (1.0 + np.tanh(0.5 * (z @ w.T + b)))).astype(np.float32)
    return out


_Fitted = tuple[Matrix, Matrix, Matrix | None]


class _Problem:
    """Standardised features, unit bags, targets and grouping of one training run."""

    def __init__(
        self,
        examples: Sequence[Example],
        x: Matrix,
        emb_dim: int,
        units: Sequence[Matrix],
        grid: Sequence[Config] = GRID,
    ) -> None:
        """Whiten ``x`` (standardise, then project each embedding block onto its principal
        components), scale the ``units`` (each column by its root mean square, so that a
        unit without any cue stays 0) and keep the labels of ``examples``, once for every
        fit of a search.
        """
        self.examples = list(examples)
        self.mean = x.mean(axis=0)
        self.std = x.std(axis=0) + 1e-6
        z = ((x - self.mean) / self.std).astype(np.float32)
        # Each block of pooled-embedding columns (the document's, the actions') is whitened
        # onto its first EMB_COMPONENTS principal components (unsupervised: labels are not
        # read), which keeps a fit to about a second on a shared core; the projection folds
        # back into the packaged weights.
        blocks = []
        for lo in range(0, 2 * emb_dim, emb_dim):
            _, sing, vt = np.linalg.svd(z[:, lo : lo + emb_dim], full_matrices=False)
            k = min(EMB_COMPONENTS, vt.shape[0])
            scale = np.sqrt(len(x)) / np.maximum(sing[:k], 1e-6)
            blocks.append((vt[:k].T * scale).astype(np.float32))  # emb_dim x k
        self.projection = np.zeros((2 * emb_dim, sum(b.shape[1] for b in blocks)), np.float32)
        col = 0
        for i, b in enumerate(blocks):
            self.projection[i * emb_dim : (i + 1) * emb_dim, col : col + b.shape[1]] = b
            col += b.shape[1]
        self.emb_dim = 2 * emb_dim
        self.k = col
        self.z = np.concatenate(
            [z[:, : self.emb_dim] @ self.projection, z[:, self.emb_dim :]], axis=1
        ).astype(np.float32)
        self.z_plain = self.z.copy()
        self.z_plain[:, : self.k] = 0.0  # behaviour features only
        self.cats = sorted({e.category for e in examples if e.category is not None})
        self.y = np.stack(
            [[1.0 if e.category == c else 0.0 for e in examples] for c in self.cats], axis=1
        ).astype(np.float32)
        self.family = [e.family or e.group or e.id for e in examples]
        self.source = [e.id.split("-", 1)[0] for e in examples]
        from custodes.monitors._units import UNIT_DIM

        stacked = np.concatenate(
            [u for u in units if len(u)] or [np.zeros((1, UNIT_DIM), np.float32)]
        )
        rms = np.sqrt((stacked.astype(np.float64) ** 2).mean(axis=0))
        self.unit_scale = np.where(rms > 1e-6, rms, 1.0).astype(np.float32)
        self.bags = _Bags([u / self.unit_scale for u in units], UNIT_DIM)
        self.grid = tuple(grid)

    def fit(self, rows: npt.NDArray[np.bool_], cfg: Config) -> _Fitted:
        """Fit the heads on the ``rows`` of the training set, with or without the embedding columns
        and the unit term as ``cfg`` says.
        """
        z = self.z if cfg.embeddings else self.z_plain
        if cfg.units:
            ids, counts = self.bags.subset(np.where(rows)[0])
            return _fit_mil(z[rows], self.y[rows], self.bags.matrix, ids, counts, cfg.l2)
        w, b = _fit(z[rows], self.y[rows], cfg.l2)
        return w, b, None

    def predict(self, rows: npt.NDArray[np.bool_], cfg: Config, wb: _Fitted) -> Matrix:
        """The scores of the fitted heads ``wb`` on ``rows``."""
        z = self.z if cfg.embeddings else self.z_plain
        w, b, v = wb
        if v is None:
            return _scores(z[rows], w, b)
        ids, counts = self.bags.subset(np.where(rows)[0])
        top, _ = _bag_max((self.bags.matrix @ v.T)[ids], counts)
        out: Matrix = (0.5 * (1.0 + np.tanh(0.5 * (z[rows] @ w.T + b + top)))).astype(np.float32)
        return out

    def domain(self, k: int) -> npt.NDArray[np.bool_]:
        """Rows a category is measured on: its own data set's positives and negatives."""
        cat = self.cats[k]
        sources = {s for s, e in zip(self.source, self.examples, strict=True) if e.category == cat}
        # The coup set's varied copies ("var-"), new families ("fam-") and requested twins'
        # families ("req-") are measured with the coup set ("dev-").
        if sources & _COUP_SOURCES:
            sources |= _COUP_SOURCES
        return np.asarray(
            [
                s in sources and (e.category == cat or e.category is None)
                for s, e in zip(self.source, self.examples, strict=True)
            ]
        )

    def select(self, rows: npt.NDArray[np.bool_]) -> list[Config]:
        """Per category, the grid point with the best inner-CV figure on ``rows``."""
        idx = np.where(rows)[0]
        inner = np.asarray([_hash_fold("inner" + self.family[i], INNER_FOLDS) for i in idx])
        best: list[tuple[float, Config]] = [(-1.0, self.grid[0])] * len(self.cats)
        for cfg in self.grid:
            held = np.zeros((len(idx), len(self.cats)), np.float32)
            for f in range(INNER_FOLDS):
                train = np.zeros(len(self.examples), bool)
                train[idx[inner != f]] = True
                test = np.zeros(len(self.examples), bool)
                test[idx[inner == f]] = True
                held[inner == f] = self.predict(test, cfg, self.fit(train, cfg))
            for k in range(len(self.cats)):
                dom = self.domain(k)[idx]
                figure = _figure(self.y[idx][dom, k], held[dom, k])
                if figure > best[k][0]:
                    best[k] = (figure, cfg)
        return [c for _, c in best]

    def nested(self, train: npt.NDArray[np.bool_], test: npt.NDArray[np.bool_]) -> Matrix:
        """Scores of ``test`` rows from heads whose hyper-parameters and weights saw only
        ``train`` rows."""
        chosen = self.select(train)
        out = np.zeros((int(test.sum()), len(self.cats)), np.float32)
        for cfg in set(chosen):
            s = self.predict(test, cfg, self.fit(train, cfg))
            for k, c in enumerate(chosen):
                if c == cfg:
                    out[:, k] = s[:, k]
        return out


def _figure(y: npt.NDArray[np.float32], s: Matrix) -> float:
    """What the search maximises for one category: AUROC plus the true-positive rate at 5% false
    positives (0 when the rows hold only one class).
    """
    if y.sum() == 0 or y.sum() == len(y):
        return 0.0
    m = compute_metrics([int(v) for v in y], [float(v) for v in s])
    return m.auroc + m.tpr_at_5pct


def _measure(p: _Problem, scores: Matrix, tested: npt.NDArray[np.bool_]) -> dict[str, Metrics]:
    """The metrics of each category on the ``tested`` rows of its domain (categories whose rows hold
    one class only are left out).
    """
    out: dict[str, Metrics] = {}
    for k, cat in enumerate(p.cats):
        rows = tested & p.domain(k)
        labels = [int(v) for v in p.y[rows, k]]
        if 0 < sum(labels) < len(labels):
            out[cat] = compute_metrics(labels, [float(v) for v in scores[rows, k]])
    return out


def _scheme_folds(
    p: _Problem, scheme: str
) -> list[tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]:
    """The (train, test) row masks of a held-out scheme: ``family`` (families hashed into folds),
    ``organisation`` or ``format`` (one value held out per fold; none when there is only one), or
    all three at once (a fold's families together with an organisation and a format its training
    rows never see).
    """
    n = len(p.examples)
    orgs = [e.organisation for e in p.examples]
    fmts = [e.format for e in p.examples]
    fam = np.asarray([_hash_fold(f, FOLDS) for f in p.family])
    if scheme == "family":
        return [(fam != f, fam == f) for f in range(FOLDS)]
    known_orgs = sorted({o for o in orgs if o})
    known_fmts = sorted({f for f in fmts if f})
    if scheme == "organisation":
        org = np.asarray([o or "" for o in orgs])
        return [(org != o, org == o) for o in known_orgs] if len(known_orgs) > 1 else []
    if scheme == "format":
        fmt = np.asarray([f or "" for f in fmts])
        return [(fmt != f, fmt == f) for f in known_fmts] if len(known_fmts) > 1 else []
    if len(known_orgs) < 2 or len(known_fmts) < 2:
        return []
    folds = []
    org = np.asarray([o or "" for o in orgs])
    fmt = np.asarray([f or "" for f in fmts])
    for f in range(FOLDS):
        o, t = known_orgs[f % len(known_orgs)], known_fmts[f % len(known_fmts)]
        unseen = (org == o) | (fmt == t)
        train = (fam != f) & ~unseen
        test = (fam == f) & unseen
        folds.append((train, test))
    del n
    return folds


def train_heads(
    examples: Sequence[Example],
    *,
    encoder: Encoder,
    progress: Callable[[int], None] | None = None,
    features: Matrix | None = None,
    units: Sequence[Matrix] | None = None,
    schemes: Sequence[str] = SCHEMES,
    on_step: Callable[[str], None] | None = None,
    grid: Sequence[Config] = GRID,
    with_units: bool = False,
    package: bool = True,
) -> TrainingResult:
    """Encode ``examples`` (or use ``features`` and ``units``), choose and fit one head per
    category, and measure it in-sample and under each held-out scheme. ``grid`` is the
    hyper-parameter settings searched (:data:`UNIT_GRID` adds the per-unit term); the unit
    features are computed only when a setting uses them; ``with_units`` searches
    :data:`UNIT_GRID` instead of ``grid``. ``package=False`` skips the heads fitted on every
    row (about a third of the work): only the held-out figures and scores are computed, the
    result's heads are zero, its ``in_sample`` and ``chosen`` empty (what an evaluation's
    held-out figures need, and no more)."""
    if with_units:
        grid = UNIT_GRID
    with _one_blas_thread():
        return _train_heads(
            examples, encoder, progress, features, units, schemes, on_step, grid, package
        )


def _one_blas_thread() -> Any:
    """BLAS limited to one thread while heads are fitted: the matrices are a few thousand rows
    by a few hundred columns, where threads gain nothing, and on a shared machine OpenBLAS's
    spinning threads doubled the CPU time of a fit (and multiplied its wall time by up to
    eight under load)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _train_heads(
    examples: Sequence[Example],
    encoder: Encoder,
    progress: Callable[[int], None] | None,
    features: Matrix | None,
    units: Sequence[Matrix] | None,
    schemes: Sequence[str],
    on_step: Callable[[str], None] | None,
    grid: Sequence[Config],
    package: bool = True,
) -> TrainingResult:
    """:func:`train_heads` itself (its caller limits BLAS threads)."""
    x = features if features is not None else encode_examples(examples, encoder, progress)
    if units is not None:
        unit_rows = list(units)
    elif any(c.units for c in grid):
        unit_rows = encode_units(examples)
    else:
        from custodes.monitors._units import UNIT_DIM

        unit_rows = [np.zeros((0, UNIT_DIM), np.float32) for _ in examples]
    p = _Problem(examples, x, encoder.dim, unit_rows, grid)
    all_rows = np.ones(len(examples), bool)
    results: dict[str, dict[str, Metrics]] = {}
    family_scores = np.zeros((len(examples), len(p.cats)), np.float32)
    for scheme in schemes:
        if on_step is not None:
            on_step(scheme)
        folds = _scheme_folds(p, scheme)
        if not folds:
            continue
        scores = np.zeros((len(examples), len(p.cats)), np.float32)
        tested = np.zeros(len(examples), bool)
        for train, test in folds:
            if not test.any() or not train.any():
                continue
            scores[test] = p.nested(train, test)
            tested |= test
        results[scheme] = _measure(p, scores, tested)
        if scheme == "family":
            family_scores = scores
    if not package:
        empty = np.zeros(len(p.cats), np.float32)
        unfitted = LinearHeads(
            tuple(p.cats),
            p.mean.astype(np.float32),
            p.std.astype(np.float32),
            np.zeros((len(p.cats), x.shape[1]), np.float32),
            empty,
        )
        return TrainingResult(unfitted, {}, results.get("family", {}), family_scores, results, {})
    if on_step is not None:
        on_step("packaged heads")
    chosen = p.select(all_rows)
    w = np.zeros((len(p.cats), x.shape[1]), np.float32)
    b = np.zeros(len(p.cats), np.float32)
    v = np.zeros((len(p.cats), p.bags.matrix.shape[1]), np.float32)
    for cfg in set(chosen):
        cw, cb, cv = p.fit(all_rows, cfg)
        # Fold the projection back: z_emb @ P @ w_k == z_emb @ (P @ w_k).
        full = np.concatenate([cw[:, : p.k] @ p.projection.T, cw[:, p.k :]], axis=1)
        for k, c in enumerate(chosen):
            if c == cfg:
                w[k], b[k] = full[k], cb[k]
                if cv is not None:
                    v[k] = cv[k]
    uses_units = any(c.units for c in chosen)
    heads = LinearHeads(
        tuple(p.cats),
        p.mean.astype(np.float32),
        p.std.astype(np.float32),
        w,
        b,
        p.unit_scale if uses_units else None,
        v if uses_units else None,
    )
    in_sample = _measure(p, heads.scores(x, unit_rows), all_rows)
    return TrainingResult(
        heads,
        in_sample,
        results.get("family", {}),
        family_scores,
        results,
        dict(zip(p.cats, chosen, strict=True)),
    )


def rules_scores(examples: Sequence[Example], cats: Sequence[str]) -> Matrix:
    """Every example's rules-tier score per category (0 where no rule fired)."""
    from custodes.monitors._coup import CoupRulesDetector
    from custodes.monitors._vuln import VulnDiscoveryDetector

    detectors = (VulnDiscoveryDetector(), CoupRulesDetector())
    out = np.zeros((len(examples), len(cats)), np.float32)
    index = {c: k for k, c in enumerate(cats)}
    for i, e in enumerate(examples):
        for det in detectors:
            for d in det.detect(e.text):
                k = index.get(d.category)
                if k is not None:
                    out[i, k] = max(out[i, k], d.score)
    return out


@dataclass(frozen=True)
class CombinationResult:
    """The calibration fitted on all held-out scores, and the combination's own figures
    with the combiner cross-validated by family (each fold's combiner never saw it)."""

    calibration: Calibration
    held_out: dict[str, Metrics]
    rules_held_out: dict[str, Metrics]


def fit_combination(
    examples: Sequence[Example],
    result: TrainingResult,
    rules: Matrix,
    *,
    trained_on: Sequence[str] = (),
) -> CombinationResult:
    """Fit the calibrated combination of tiers on family-held-out learned scores."""
    with _one_blas_thread():
        return _fit_combination(examples, result, rules, trained_on)


def _fit_combination(
    examples: Sequence[Example],
    result: TrainingResult,
    rules: Matrix,
    trained_on: Sequence[str],
) -> CombinationResult:
    """:func:`fit_combination` itself (its caller limits BLAS threads)."""
    cats = list(result.heads.categories)
    p_family = [e.family or e.group or e.id for e in examples]
    fam = np.asarray([_hash_fold(f, FOLDS) for f in p_family])
    learned = result.held_out_scores
    domains = {}
    for cat in cats:
        sources = {e.id.split("-", 1)[0] for e in examples if e.category == cat}
        if sources & _COUP_SOURCES:
            sources |= _COUP_SOURCES
        domains[cat] = np.asarray(
            [e.id.split("-", 1)[0] in sources and (e.category in (cat, None)) for e in examples]
        )

    def fit(rows: npt.NDArray[np.bool_]) -> Calibration:
        """The calibration fitted on ``rows``: for each category, the rules' and the learned tier's
        scores with their labels and families.
        """
        r, lsc, y, g = {}, {}, {}, {}
        for k, cat in enumerate(cats):
            m = rows & domains[cat]
            r[cat] = rules[m, k].tolist()
            lsc[cat] = learned[m, k].tolist()
            y[cat] = [1 if examples[i].category == cat else 0 for i in np.where(m)[0]]
            g[cat] = [p_family[i] for i in np.where(m)[0]]
        return fit_calibration(r, lsc, y, trained_on=trained_on, groups=g)

    combined = np.zeros_like(learned)
    for f in range(FOLDS):
        cal = fit(fam != f)
        for i in np.where(fam == f)[0]:
            for k, cat in enumerate(cats):
                combined[i, k] = cal.combine(cat, float(rules[i, k]), float(learned[i, k]))
    held: dict[str, Metrics] = {}
    rules_only: dict[str, Metrics] = {}
    for k, cat in enumerate(cats):
        m = domains[cat]
        labels = [1 if examples[i].category == cat else 0 for i in np.where(m)[0]]
        if 0 < sum(labels) < len(labels):
            held[cat] = compute_metrics(labels, combined[m, k].tolist())
            rules_only[cat] = compute_metrics(labels, rules[m, k].tolist())
    return CombinationResult(fit(np.ones(len(examples), bool)), held, rules_only)
