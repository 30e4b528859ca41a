"""Detection figures, in-sample and held out by scenario family, organisation and format.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/monitors_figures.py [--cache x.npy]

Training data: the DEV sets (data/datasets/monitors) and the generated coup material
(data/datasets/monitors/generated: DEV re-told by other organisations in other formats, and
36 new scenario families with twins). Prints per category TPR at 5% / 1% FPR and AUROC
(computed like score.py) for:

* the rules tier (untrained; written while reading DEV misses, so DEV is in-sample for it);
* the learned tier in-sample, and under each held-out scheme of ``_train.py`` (family,
  organisation, format, all three), with nested CV for its hyper-parameters;
* the calibrated combination of tiers, its combiner cross-validated by family;
* **templates disjoint from DEV**: heads trained without any DEV-derived coup row (only the
  new families and the vulnerability set), scored on the DEV coup set — the closest this
  repository gets to the unseen hold-out (another author's templates, organisation, format).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402 - after the thread setting

from custodes.monitors import compute_metrics, read_dataset  # noqa: E402
from custodes.monitors._learned import Encoder  # noqa: E402
from custodes.monitors._train import (  # noqa: E402
    GRID,
    UNIT_GRID,
    encode_examples,
    encode_units,
    fit_combination,
    rules_scores,
    train_heads,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "datasets" / "monitors"
FILES = (
    "coup_misuse_dev.jsonl",
    "generated/coup_misuse_varied.jsonl",
    "generated/coup_misuse_families.jsonl",
    "vuln_discovery_dev.jsonl",
)


def _line(label: str, m: object) -> str:
    return (
        f"  {label:<40} TPR@5% {m.tpr_at_5pct:.3f}  TPR@1% {m.tpr_at_1pct:.3f}  "  # type: ignore[attr-defined]
        f"AUROC {m.auroc:.3f}  (n+ {m.positives}, n- {m.negatives})"  # type: ignore[attr-defined]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=None, help="feature matrix cache (.npy)")
    ap.add_argument("--units", action="store_true", help="search the per-unit term too")
    a = ap.parse_args()
    grid = UNIT_GRID if a.units else GRID
    examples = [e for f in FILES for e in read_dataset(DATA / f) if e.label is not None]
    encoder = Encoder()
    if a.cache is not None and a.cache.exists():
        x = np.load(a.cache)
    else:
        print(f"encoding {len(examples)} examples (a few minutes on a shared machine)")
        x = encode_examples(examples, encoder)
        if a.cache is not None:
            np.save(a.cache, x)
    print(f"unit features of {len(examples)} examples")
    units = encode_units(examples)
    result = train_heads(
        examples,
        encoder=encoder,
        features=x,
        units=units,
        on_step=lambda s: print("...", s),
        grid=grid,
    )
    rules = rules_scores(examples, list(result.heads.categories))
    combo = fit_combination(examples, result, rules)
    # Templates disjoint from DEV: no DEV-derived coup row in training.
    keep = np.asarray([not e.id.startswith(("dev-", "var-")) for e in examples])
    disjoint = train_heads(
        [e for e, k in zip(examples, keep, strict=True) if k],
        encoder=encoder,
        features=x[keep],
        units=[u for u, k in zip(units, keep, strict=True) if k],
        schemes=(),
        grid=grid,
    )
    dev = [i for i, e in enumerate(examples) if e.id.startswith("dev-")]
    dev_scores = disjoint.heads.scores(x[dev], [units[i] for i in dev])
    for cat in sorted(result.in_sample):
        print(cat)
        if cat in combo.rules_held_out:
            print(_line("rules tier (all rows)", combo.rules_held_out[cat]))
        print(_line("learned, IN-SAMPLE", result.in_sample[cat]))
        for scheme, ms in result.schemes.items():
            if cat in ms:
                print(_line(f"learned, held out by {scheme}", ms[cat]))
        if cat in combo.held_out:
            print(_line("combined, held out by family", combo.held_out[cat]))
        if cat != "vuln_discovery":
            k = list(disjoint.heads.categories).index(cat)
            rows = [j for j, i in enumerate(dev) if examples[i].category in (cat, None)]
            labels = [int(examples[dev[j]].category == cat) for j in rows]
            m = compute_metrics(labels, [float(dev_scores[j, k]) for j in rows])
            print(_line("learned, new families only -> DEV", m))
    print("hyper-parameters:", {c: cfg.describe() for c, cfg in result.chosen.items()})


if __name__ == "__main__":
    main()
