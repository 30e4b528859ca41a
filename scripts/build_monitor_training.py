"""Build the generated coup-misuse training sets in data/datasets/monitors/generated/:

* coup_misuse_varied.jsonl: every DEV example re-told three times by other fictional
  organisations, with other tools, in other tool-call formats, and (at random,
  label-neutrally) with an approval sentence appended (custodes.monitors._varied);
* coup_misuse_families.jsonl: the new scenario families of custodes.monitors._scenarios,
  each act and its twin, by every organisation, in every format;
* coup_misuse_requested.jsonl: the families of _scenarios.REQUESTED, each act, its
  safeguard twin and its *requested* twin (the same act, asked for and sanctioned in the
  request), by every organisation, in every format (its own seed: the files above are
  unchanged by it).

See the README beside the output.

    python scripts/build_monitor_training.py [--variants 3] [--per-family 6] [--seed 20261207]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from custodes.monitors._scenarios import FAMILIES, REQUESTED, build
from custodes.monitors._varied import FORMATS, ORGANISATIONS, family_of, vary

ROOT = Path(__file__).resolve().parents[1] / "data" / "datasets" / "monitors"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--per-family", type=int, default=6)
    ap.add_argument("--seed", type=int, default=20261207)
    a = ap.parse_args()
    rng = random.Random(a.seed)  # noqa: S311 - reproducible data, not secrets
    others = [o for o in ORGANISATIONS if o.key != "meridian"]
    rows = [json.loads(line) for line in (ROOT / "coup_misuse_dev.jsonl").open()]
    out = []
    for row in rows:
        family = family_of(row["notes"])
        combos = [(o, f) for o in others for f in FORMATS]
        for org, fmt in rng.sample(combos, a.variants):
            approval = rng.random() < 0.3
            rec = vary(row["messages"], org=org, fmt=fmt, rng=rng, approval=approval)
            body = json.dumps(rec, sort_keys=True)
            out.append(
                {
                    "id": "var-" + hashlib.sha256((row["id"] + body).encode()).hexdigest()[:14],
                    **rec,
                    "label": row["label"],
                    "category": row["category"],
                    "family": family,
                    "organisation": org.key,
                    "format": fmt,
                    "source_id": row["id"],
                    "approval_sentence": approval,
                }
            )
    _write(out, "coup_misuse_varied.jsonl", rng)
    new = []
    for fam in FAMILIES:
        for i in range(2 * a.per_family):
            harmful = i % 2 == 0
            org = ORGANISATIONS[(i // 2) % len(ORGANISATIONS)]
            fmt = FORMATS[rng.randrange(len(FORMATS))]
            msgs = build(fam, harmful=harmful, org=org, rng=rng)
            rec = vary(msgs, org=org, fmt=fmt, rng=rng, approval=False)
            body = json.dumps(rec, sort_keys=True)
            new.append(
                {
                    "id": "fam-" + hashlib.sha256((fam.key + body).encode()).hexdigest()[:14],
                    **rec,
                    "label": int(harmful),
                    "category": fam.category if harmful else "benign",
                    "family": "new:" + fam.key,
                    "organisation": org.key,
                    "format": fmt,
                    "notes": ("" if harmful else f"near-miss:{fam.category} - ") + fam.key,
                }
            )
    _write(new, "coup_misuse_families.jsonl", rng)
    rng = random.Random(a.seed + 1)  # noqa: S311 - reproducible data, not secrets
    asked = []
    # Per family: per_family acts, and two thirds as many of each twin (requested, safeguard).
    kinds = ["harm"] * a.per_family + ["requested", "twin"] * (2 * a.per_family // 3)
    for fam in REQUESTED:
        for i, kind in enumerate(kinds):
            org = ORGANISATIONS[i % len(ORGANISATIONS)]
            fmt = FORMATS[rng.randrange(len(FORMATS))]
            harmful = kind == "harm"
            msgs = build(fam, harmful=harmful, org=org, rng=rng, requested=kind == "requested")
            rec = vary(msgs, org=org, fmt=fmt, rng=rng, approval=False)
            body = json.dumps(rec, sort_keys=True)
            asked.append(
                {
                    "id": "req-" + hashlib.sha256((fam.key + body).encode()).hexdigest()[:14],
                    **rec,
                    "label": int(harmful),
                    "category": fam.category if harmful else "benign",
                    "family": "new:" + fam.key,
                    "organisation": org.key,
                    "format": fmt,
                    "notes": ("" if harmful else f"near-miss:{fam.category} - {kind} - ") + fam.key,
                }
            )
    _write(asked, "coup_misuse_requested.jsonl", rng)


def _write(rows: list[dict[str, object]], name: str, rng: random.Random) -> None:
    rng.shuffle(rows)
    target = ROOT / "generated" / name
    target.parent.mkdir(exist_ok=True)
    with target.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} examples written to {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
