"""Detection figures on the dev data sets, in-sample and on held-out groups.

    .venv/bin/python benchmarks/monitors_figures.py

Prints, per category, TPR at 1% / 0.1% / 5% FPR, AUROC and AUPRC (computed like the data
sets' score.py) for:

* the rules tier (``vuln_rules``; ``coup_rules``): no training, but its signals were written
  while reading dev misses, so treat its dev figures as in-sample;
* the learned tier with the packaged weights (trained on all of dev: in-sample; its features
  are the pooled MiniLM embedding table plus the phenomenon features of ``_learned.py``);
* the learned tier under 5-fold cross-validation by group (vuln: the data set's ``group``;
  coup: the ``notes`` rationale, which follows the scenario template): each example is
  scored by heads that never saw its group (held-out);
* rules and learned combined (per-category maximum), in-sample and held-out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from custodes.monitors import compute_metrics, default_registry, read_dataset
from custodes.monitors._learned import Encoder, LearnedDetector
from custodes.monitors._train import train_heads

DATA = Path(__file__).resolve().parents[1] / "data" / "datasets" / "monitors"
COUP = (
    "training_tamper",
    "oversight_evasion",
    "weights_exfiltration",
    "command_override",
    "political_targeting",
    "exploit_stockpiling",
)


def _row(name: str, labels: list[int], scores: list[float]) -> str:
    m = compute_metrics(labels, scores)
    return (
        f"  {name:<34} TPR@1% {m.tpr_at_1pct:.3f}  TPR@0.1% {m.tpr_at_01pct:.3f}  "
        f"TPR@5% {m.tpr_at_5pct:.3f}  AUROC {m.auroc:.3f}  AUPRC {m.auprc:.3f}"
    )


def main() -> None:
    vuln = list(read_dataset(DATA / "vuln_discovery_dev.jsonl"))
    coup = list(read_dataset(DATA / "coup_misuse_dev.jsonl"))
    reg = default_registry()
    rules_v, rules_c = reg.get("vuln_rules"), reg.get("coup_rules")
    learned = LearnedDetector.load()

    def rule_scores(det: object, texts: list[str], cat: str) -> list[float]:
        out = []
        for t in texts:
            found = [d.score for d in det.detect(t) if d.category == cat]  # type: ignore[attr-defined]
            out.append(max(found, default=0.0))
        return out

    examples = coup + vuln
    print(f"encoding {len(examples)} examples and cross-validating (takes a minute or two)")
    held = train_heads(examples, encoder=Encoder())
    in_learned = [learned.score_text(e.text) for e in examples]
    cats = list(held.heads.categories)
    sets = {"vuln_discovery": vuln, **{c: coup for c in COUP}}
    for cat, data in sets.items():
        idx = [i for i, e in enumerate(data) if e.category in (cat, None)]
        labels = [1 if data[i].category == cat else 0 for i in idx]
        offset = 0 if data is coup else len(coup)
        texts = [data[i].text for i in idx]
        rules = rule_scores(rules_v if cat == "vuln_discovery" else rules_c, texts, cat)
        learned_in = [in_learned[offset + i][cat] for i in idx]
        print(f"{cat} (positives {sum(labels)}, negatives {len(labels) - sum(labels)})")
        print(_row("rules tier (dev)", labels, rules))
        print(_row("learned, packaged weights (in-sample)", labels, learned_in))
        print(_row("rules+learned (in-sample)", labels, list(np.maximum(rules, learned_in))))
        learned_out = [float(held.held_out_scores[offset + i, cats.index(cat)]) for i in idx]
        print(_row("learned, held-out groups", labels, learned_out))
        print(_row("rules+learned, held-out groups", labels, list(np.maximum(rules, learned_out))))


if __name__ == "__main__":
    main()
