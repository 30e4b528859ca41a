"""``custodes monitors eval|train|list``, ``custodes scan PATH...`` and
``custodes review list|show|resolve``."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from custodes.cli._main import CliState, keep_whole, pass_state
from custodes.errors import InputError
from custodes.monitors import (
    DetectorRegistry,
    Example,
    JudgeCalibration,
    JudgedDetector,
    JudgeSettings,
    MonitorsService,
    ScanProblem,
    ScanSummary,
    StoredDetection,
    TranscriptScanner,
    calibrate_judge,
    compute_metrics,
    default_registry,
    read_dataset,
)

__all__ = ["monitors", "review", "scan"]

# Tables of figures are wide: do not squeeze them to 80 columns when output is redirected.
_console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
MAX_DASK_WORKERS = 256
"""The most worker processes ``--dask local:N`` starts on this machine."""
_err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _service(state: CliState) -> Iterator[MonitorsService]:
    """The monitors service over the deployment's database and log, for one command.

    It is built with the other records (custody's registry, whose findings a detection may
    be linked to) and everything is closed when the command ends.
    """
    from custodes.wiring import build_records, open_core

    core = open_core(state.settings)
    try:
        records = build_records(core)
        try:
            yield records.monitors
        finally:
            records.custody.close()
    finally:
        core.close()


# --- custodes monitors -----------------------------------------------------------------------


@click.group()
def monitors() -> None:
    """Detectors: list them, evaluate them on labelled data, train the learned tier."""


@monitors.command("list")
def list_detectors() -> None:
    """The registered detectors and their categories."""
    registry = default_registry()
    table = Table("detector", "categories", "status")
    for name in registry.names():
        try:
            det = registry.get(name)
            table.add_row(name, ", ".join(det.categories), "ready")
        except Exception as exc:  # noqa: BLE001 - a listing shows why a detector is unavailable
            table.add_row(name, "-", f"unavailable: {exc}")
    _console.print(table)


def _counted(label: str) -> Progress:
    """A bar counting items done of a known total, on standard error, gone when it ends.

    Args:
        label: the bar's caption (a rich template: ``{task.description}`` shows each task's).
    """
    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    )


def _score_examples(
    examples: list[Example],
    names: list[str],
    registry: DetectorRegistry | None = None,
    *,
    analysed: list[tuple[Any, Any]] | None = None,
) -> list[dict[str, float]]:
    """Each example's score per category: the highest of the ``names`` detectors' (their
    ``score_text`` where they have one, and every detection), 0 where none scores it.
    With ``analysed``, the learned tier's features of each example are appended to it (read
    as it scores, for the held-out figures, which would otherwise encode every text again).

    Every text needs a score, detected or not: the metrics rank all of them (ROC, PR).
    """
    from custodes.monitors import LearnedDetector

    registry = registry or default_registry()
    detectors = [registry.get(n) for n in names]
    learned = registry.get("learned") if analysed is not None else None
    out = []
    with _counted("scoring") as progress:
        task = progress.add_task("scoring", total=len(examples))
        for ex in examples:
            scores: dict[str, float] = {}
            for det in detectors:
                if hasattr(det, "score_text"):
                    for cat, s in det.score_text(ex.text).items():
                        scores[cat] = max(scores.get(cat, 0.0), s)
                for d in det.detect(ex.text):
                    scores[d.category] = max(scores.get(d.category, 0.0), d.score)
                for cat in det.categories:
                    scores.setdefault(cat, 0.0)
            if analysed is not None and isinstance(learned, LearnedDetector):
                analysed.append(learned.analysed(ex.text))
            out.append(scores)
            progress.advance(task)
    return out


def _judge_endpoint_options(command: Any) -> Any:
    """Add ``--judge-url`` and ``--judge-key-env``: where the judge is reached, the same for
    every command that calls it (defaults: the ``monitor_judge_*`` settings)."""
    command = click.option(
        "--judge-key-env",
        default=None,
        help="Environment variable holding the monitoring principal's gateway key (default: "
        "the monitor_judge_key_env setting, CUSTODES_JUDGE_API_KEY).",
    )(command)
    return click.option(
        "--judge-url",
        default=None,
        help="The gateway's OpenAI-compatible base URL the judge calls (default: the "
        "monitor_judge_url setting, http://127.0.0.1:8080/v1).",
    )(command)


def _judge_options(command: Any) -> Any:
    """Add the model tier's options (``--judge-model``, its endpoint, band, cap and
    calibration), the same for ``monitors eval`` and ``scan``."""
    options: list[Callable[[Any], Any]] = [
        click.option(
            "--judge-model",
            default=None,
            help="Add the model tier: the judge model's name as the gateway routes it "
            "(the 'judged' detector, which becomes the default; default model: the "
            "monitor_judge_model setting).",
        ),
        _judge_endpoint_options,
        click.option(
            "--judge-band",
            type=click.FloatRange(0.0, 1.0, min_open=True),
            default=0.2,
            show_default=True,
            help="Judge a category when its combined score passes the threshold at this "
            "FPR (and not the strict 0.1% one): the budget knob.",
        ),
        click.option(
            "--judge-mb-per-hour",
            type=click.FloatRange(0.0),
            default=50.0,
            show_default=True,
            help="At most this many MB of text judged per hour (shared equally by a "
            "scan's workers).",
        ),
        click.option(
            "--judge-calibration",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="A judge calibration fitted for this judge model (default: unfitted).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _judge_settings(
    state: CliState,
    model: str | None,
    url: str | None,
    key_env: str | None,
    band: float,
    mb_per_hour: float,
    calibration: Path | None,
) -> JudgeSettings:
    """The judge's settings: each flag given, else the ``monitor_judge_*`` setting; the key
    variable is checked here, before anything is read.

    Raises:
        InputError: no judge model (flag or setting), the key variable unset or empty, or
            ``calibration`` not a judge calibration file.
    """
    settings = state.settings
    jcal = (
        JudgeCalibration.from_json(calibration.read_text(encoding="utf-8"), where=str(calibration))
        if calibration is not None
        else None
    )
    judge = JudgeSettings(
        model=model if model is not None else settings.monitor_judge_model,
        url=url or settings.monitor_judge_url,
        key_env=key_env or settings.monitor_judge_key_env,
        band_fpr=band,
        max_mb_per_hour=mb_per_hour,
        calibration=jcal,
    )
    judge.key()
    return judge


@monitors.command("eval")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--detector",
    "names",
    multiple=True,
    help="Detector(s) to run (repeatable; default: combined, the calibrated combination of "
    "the rules and learned tiers, if the learned extra is installed, else vuln_rules and "
    "coup_rules).",
)
@click.option(
    "--predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one JSON line per example: id, score, scores, predicted.",
)
@click.option(
    "--budget",
    type=float,
    default=0.01,
    show_default=True,
    help="Audit budget (FPR) that sets the operating threshold.",
)
@click.option(
    "--held-out/--no-held-out",
    "held_out",
    default=None,
    help="Also cross-validate the learned tier and the combination on this data set, "
    "holding out whole scenario families (default: on when the learned tier is used).",
)
@_judge_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_state
def eval_command(
    state: CliState,
    dataset: Path,
    names: tuple[str, ...],
    predictions: Path | None,
    budget: float,
    held_out: bool | None,
    judge_model: str | None,
    judge_url: str | None,
    judge_key_env: str | None,
    judge_band: float,
    judge_mb_per_hour: float,
    judge_calibration: Path | None,
    as_json: bool,
) -> None:
    """Per category: TPR at 5%, 1% and 0.1% FPR, AUROC, AUPRC and the confusion matrix at
    the operating threshold (computed exactly like the data sets' score.py).

    The packaged detectors' figures are labelled IN-SAMPLE when the learned tier was
    trained on this file, and the held-out figures (5 folds over scenario families, heads,
    hyper-parameters and combiner refitted per fold) are printed beside them."""
    registry = default_registry()
    judge = None
    if judge_model is not None or "judged" in names:
        judge = _judge_settings(
            state,
            judge_model,
            judge_url,
            judge_key_env,
            judge_band,
            judge_mb_per_hour,
            judge_calibration,
        )
        judge.register(registry)
    examples = list(read_dataset(dataset))
    if not examples:
        raise InputError("the data set is empty", where=str(dataset), expected="labelled rows")
    chosen = list(names) or (["judged"] if judge is not None else _default_detectors())
    uses_learned = any(n in ("learned", "combined", "judged") for n in chosen)
    want_held = held_out if held_out is not None else uses_learned
    # The learned tier's features, read as the scoring pass computes them (when it does).
    analysed: list[tuple[Any, Any]] | None = [] if want_held and uses_learned else None
    scores = _score_examples(examples, chosen, registry, analysed=analysed)
    if "judged" in chosen:
        judged = registry.get("judged")
        if isinstance(judged, JudgedDetector):
            st = judged.stats
            _err.print(
                f"judge {judged.judge_model!r}: {st.judged_texts} of {st.texts} texts judged "
                f"({st.judged_bytes / 1e6:.3f} of {st.bytes / 1e6:.3f} MB), {st.calls} calls, "
                f"{st.prompt_tokens + st.completion_tokens} tokens, {st.judge_seconds:.1f} s; "
                f"{st.unjudged} left to the combined tier ({st.failures} failed calls)"
            )
    split = _split_label(dataset, chosen)
    cats = sorted({c for s in scores for c in s})
    # A text's overall score: its one category's score when the data set has positives of one
    # category only (a detection of another category there is not a hit), else its highest.
    positive_cats = {e.category for e in examples if e.label == 1 and e.category}
    only = next(iter(positive_cats)) if len(positive_cats) == 1 else None
    overall = [s.get(only, 0.0) if only else max(s.values(), default=0.0) for s in scores]
    results = _figures(examples, scores, cats, overall, budget)
    if predictions is not None:
        with predictions.open("w", encoding="utf-8") as fh:
            for ex, s, o in zip(examples, scores, overall, strict=True):
                predicted = sorted(
                    c for c, v in s.items() if c in results and v >= results[c].operating_threshold
                )
                fh.write(
                    json.dumps({"id": ex.id, "score": o, "scores": s, "predicted": predicted})
                    + "\n"
                )
    held: dict[str, dict[str, Any]] = {}
    if want_held:
        held = _held_out_by_family(examples, analysed or None)
    if as_json:
        doc: dict[str, Any] = {c: _metrics_json(m) for c, m in results.items()}
        doc["figures_are"] = split
        doc["held_out_by_family"] = {
            tier: {c: _metrics_json(m) for c, m in ms.items()} for tier, ms in held.items()
        }
        click.echo(json.dumps(doc, indent=2))
        return
    table = Table(
        "category",
        "n+",
        "n-",
        "TPR@5%",
        "TPR@1%",
        "TPR@0.1%",
        "AUROC",
        "AUPRC",
        f"TP/FP/TN/FN @ {budget:g} FPR",
        "threshold",
        title=f"{dataset}: {', '.join(chosen)} as packaged: {split}",
    )
    for cat, m in results.items():
        c = m.confusion
        table.add_row(
            cat,
            str(m.positives),
            str(m.negatives),
            f"{m.tpr_at_5pct:.4f}",
            f"{m.tpr_at_1pct:.4f}",
            f"{m.tpr_at_01pct:.4f}",
            f"{m.auroc:.4f}",
            f"{m.auprc:.4f}",
            f"{c.tp}/{c.fp}/{c.tn}/{c.fn}",
            f"{m.operating_threshold:.4g}",
        )
    _console.print(table)
    if held:
        _print_held(held, f"{dataset}: HELD-OUT by scenario family (5 folds; nested CV)")


def _figures(
    examples: list[Example],
    scores: list[dict[str, float]],
    cats: list[str],
    overall: list[float],
    budget: float,
) -> dict[str, Any]:
    """The metrics of each category in ``cats`` at the ``budget`` false-positive rate, and
    of ``any`` (every labelled example against its ``overall`` score) when there are two or
    more.

    A category is measured on its own positives against the negatives (``category`` None):
    the positives of another category are neither. A category without both is left out, as
    no curve can be drawn.
    """
    results: dict[str, Any] = {}
    labelled = [e for e in examples if e.label is not None]
    for cat in cats:
        idx = [
            i
            for i, e in enumerate(examples)
            if e.label is not None and (e.category == cat or e.category is None)
        ]
        labels = [1 if examples[i].category == cat else 0 for i in idx]
        if not 0 < sum(labels) < len(labels):
            continue
        results[cat] = compute_metrics(
            labels, [scores[i].get(cat, 0.0) for i in idx], operating_fpr=budget
        )
    if labelled and 0 < sum(e.label or 0 for e in labelled) < len(labelled) and len(results) > 1:
        results["any"] = compute_metrics(
            [e.label or 0 for e in labelled],
            [overall[i] for i, e in enumerate(examples) if e.label is not None],
            operating_fpr=budget,
        )
    return results


def _split_label(dataset: Path, chosen: list[str]) -> str:
    """Whether the packaged learned tier and combiner were trained on ``dataset``."""
    if not any(n in ("learned", "combined", "judged") for n in chosen):
        return (
            "rules tier only (untrained; its signals were written while reading the DEV "
            "sets, so DEV figures are in-sample in that sense)"
        )
    try:
        from custodes.monitors import load_calibration

        trained = load_calibration().trained_on
    except Exception:  # noqa: BLE001 - a missing calibration only loses the label
        trained = ()
    digest = hashlib.sha256(dataset.read_bytes()).hexdigest()
    hit = [t for t in trained if t.endswith(digest)]
    if hit:
        return f"IN-SAMPLE (the learned tier and the combiner were trained on this file: {hit[0]})"
    return "unseen (this file is not among the learned tier's training files)"


def _held_out_by_family(
    examples: list[Example], analysed: list[tuple[Any, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Held-out figures of each tier (rules, learned, combined) with folds by scenario family,
    so no text is scored by a model trained on its family; {} with fewer than 5 families.
    ``analysed``: each example's learned-tier features (document, units), already computed."""
    import numpy as np

    from custodes.monitors import (
        Encoder,
        LearnedDetector,
        fit_combination,
        rules_scores,
        train_heads,
    )

    keep = [i for i, e in enumerate(examples) if e.label is not None]
    labelled = [examples[i] for i in keep]
    if len({e.family or e.group or e.id for e in labelled}) < 5:
        _err.print("[yellow]held-out figures skipped:[/] fewer than 5 scenario families")
        return {}
    features = units = None
    if analysed is not None and len(analysed) == len(examples):
        features = np.stack([analysed[i][0] for i in keep])
        units = [analysed[i][1] for i in keep]
    encoder = Encoder()
    with _counted("held-out: encoding") as progress:
        task = progress.add_task("encode", total=len(labelled))
        result = train_heads(
            labelled,
            encoder=encoder,
            progress=lambda n: progress.update(task, completed=n),
            features=features,
            units=units,
            schemes=("family",),
            # The same search as the packaged heads': with the per-unit term when they have it.
            with_units=LearnedDetector.load().scores_units,
            # Held-out figures only: heads fitted on every row would not be used.
            package=False,
        )
    rules = rules_scores(labelled, list(result.heads.categories))
    combo = fit_combination(labelled, result, rules)
    return {"rules": combo.rules_held_out, "learned": result.held_out, "combined": combo.held_out}


def _print_held(held: dict[str, dict[str, Any]], title: str) -> None:
    """The held-out figures as a table: one row per category and tier."""
    table = Table("category", "tier", "TPR@5%", "TPR@1%", "TPR@0.1%", "AUROC", "AUPRC", title=title)
    cats = sorted({c for ms in held.values() for c in ms})
    for cat in cats:
        for tier, ms in held.items():
            m = ms.get(cat)
            if m is None:
                continue
            table.add_row(
                cat,
                tier,
                f"{m.tpr_at_5pct:.4f}",
                f"{m.tpr_at_1pct:.4f}",
                f"{m.tpr_at_01pct:.4f}",
                f"{m.auroc:.4f}",
                f"{m.auprc:.4f}",
            )
    _console.print(table)


def _metrics_json(m: Any) -> dict[str, Any]:
    """One category's metrics as ``monitors eval --json`` writes them: TPR at three
    false-positive rates, AUROC, AUPRC, the operating threshold and its confusion counts."""
    return {
        "n": m.n,
        "positives": m.positives,
        "negatives": m.negatives,
        "tpr_at_fpr_0.01": m.tpr_at_1pct,
        "tpr_at_fpr_0.001": m.tpr_at_01pct,
        "tpr_at_fpr_0.05": m.tpr_at_5pct,
        "auroc": m.auroc,
        "auprc": m.auprc,
        "threshold": m.operating_threshold,
        "confusion": {
            "tp": m.confusion.tp,
            "fp": m.confusion.fp,
            "tn": m.confusion.tn,
            "fn": m.confusion.fn,
        },
    }


@monitors.command("judge-calibrate")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--judge-model",
    default=None,
    help="The judge model as the gateway routes it (default: the monitor_judge_model setting).",
)
@_judge_endpoint_options
@click.option(
    "--judge-band",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.2,
    show_default=True,
    help="The band the calibration is for (as eval's --judge-band).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the judge calibration (JSON).",
)
@pass_state
def judge_calibrate(
    state: CliState,
    dataset: Path,
    judge_model: str | None,
    judge_url: str | None,
    judge_key_env: str | None,
    judge_band: float,
    out: Path,
) -> None:
    """Fit the judge's calibration for this judge model on a labelled DATASET held out from
    the pre-filter's training: every category in the band is judged, and the combination
    of the combined score and the judge's log-odds is fitted per category."""
    # No budget: a calibration judges every band text (calibrate_judge asks without the cap).
    judge = _judge_settings(state, judge_model, judge_url, judge_key_env, judge_band, 0.0, None)
    examples = [e for e in read_dataset(dataset) if e.label is not None]
    if not examples:
        raise InputError("no labelled rows", where=str(dataset), expected="labelled rows")
    split = _split_label(dataset, ["judged"])
    if split.startswith("IN-SAMPLE"):
        _err.print(
            "warning: the pre-filter was trained on this file: its combined scores are "
            "in-sample, so this calibration will trust the judge too little"
        )
    registry = default_registry()
    judge.register(registry)
    judged = registry.get("judged")
    assert isinstance(judged, JudgedDetector)
    with _counted("judging") as progress:
        task = progress.add_task("judging", total=len(examples))
        cal = calibrate_judge(
            examples, judged, progress=lambda n: progress.update(task, completed=n)
        )
    # Written beside and renamed over: a stopped run never leaves half a calibration.
    partial = out.with_name(out.name + ".partial")
    partial.write_text(cal.to_json() + "\n", encoding="utf-8")
    os.replace(partial, out)
    st = judged.stats
    _console.print(
        f"wrote {out}: judge {judge.model!r}, {st.calls} calls, "
        f"{st.prompt_tokens + st.completion_tokens} tokens, {st.judge_seconds:.1f} s"
    )
    table = Table("category", "a (combined)", "b (judge)", "c", "negatives", title=str(out))
    for name, c in sorted(cal.categories.items()):
        a, b, k = c.coef
        table.add_row(name, f"{a:.3f}", f"{b:.3f}", f"{k:.3f}", str(len(c.negatives)))
    _console.print(table)


def _default_detectors() -> list[str]:
    """The combined detector, or the two rules tiers (with a warning) when the learned tier
    cannot be loaded."""
    try:
        default_registry().get("combined")
    except Exception as exc:  # noqa: BLE001 - the learned tier is optional
        _err.print(f"[yellow]learned tier not used:[/] {exc}")
        return ["vuln_rules", "coup_rules"]
    return ["combined"]


@monitors.command("train")
@click.argument(
    "datasets",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the weights and the calibration (default: the package's own).",
)
@click.option(
    "--units/--no-units",
    default=False,
    show_default=True,
    help="Also search heads with the per-unit term (each action scored, the maximum "
    "taken): better held out by family, several times slower to train.",
)
def train(datasets: tuple[Path, ...], out: Path | None, units: bool) -> None:
    """Train the learned tier's heads and the calibrated combination of tiers on labelled
    DATASETS; report in-sample figures and figures held out by scenario family, by
    organisation, by tool-call format and by all three (nested CV for hyper-parameters)."""
    from custodes.monitors import (
        CALIBRATION_FILE,
        WEIGHTS_FILE,
        Encoder,
        fit_combination,
        rules_scores,
        train_heads,
    )

    examples = [e for d in datasets for e in read_dataset(d) if e.label is not None]
    encoder = Encoder()
    with _counted("{task.description}") as progress:
        task = progress.add_task("encoding", total=len(examples))
        result = train_heads(
            examples,
            encoder=encoder,
            progress=lambda n: progress.update(task, completed=n),
            on_step=lambda s: progress.update(task, description=f"cross-validating: {s}"),
            with_units=units,
        )
        progress.update(task, description="rules tier and combination")
        rules = rules_scores(examples, list(result.heads.categories))
        trained_on = [f"{d.name}:{hashlib.sha256(d.read_bytes()).hexdigest()}" for d in datasets]
        combo = fit_combination(examples, result, rules, trained_on=trained_on)
    folder = out or Path(__file__).resolve().parent.parent / "monitors"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WEIGHTS_FILE).write_text(result.heads.to_json() + "\n", encoding="utf-8")
    (folder / CALIBRATION_FILE).write_text(combo.calibration.to_json() + "\n", encoding="utf-8")
    table = Table(
        "category",
        "figures",
        "TPR@5%",
        "TPR@1%",
        "AUROC",
        "AUPRC",
        title=f"weights and calibration written to {folder}",
    )
    rows: list[tuple[str, dict[str, Any]]] = [("learned, IN-SAMPLE", result.in_sample)]
    rows += [(f"learned, held out by {k}", v) for k, v in result.schemes.items()]
    rows += [
        ("rules tier (untrained)", combo.rules_held_out),
        ("combined, held out by family", combo.held_out),
    ]
    for cat in sorted(result.in_sample):
        for label, metrics in rows:
            m = metrics.get(cat)
            if m is not None:
                table.add_row(
                    cat,
                    label,
                    f"{m.tpr_at_5pct:.3f}",
                    f"{m.tpr_at_1pct:.3f}",
                    f"{m.auroc:.3f}",
                    f"{m.auprc:.3f}",
                )
    _console.print(table)
    _console.print(
        "hyper-parameters chosen: "
        + ", ".join(f"{c} ({cfg.describe()})" for c, cfg in result.chosen.items())
    )


@monitors.command("thresholds")
@click.option("--texts-per-day", type=float, required=True, help="Texts screened per day.")
@click.option(
    "--false-alarms-per-reviewer-day",
    type=float,
    default=5.0,
    show_default=True,
    help="False alarms one reviewer can clear per day.",
)
@click.option("--reviewers", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def thresholds(
    texts_per_day: float, false_alarms_per_reviewer_day: float, reviewers: int, as_json: bool
) -> None:
    """Per-category thresholds of the combined detector for a false-alarm budget per
    reviewer-day (shared equally among categories), with the expected recall at each, from
    the held-out calibration set."""
    from custodes.monitors import load_calibration

    points = load_calibration().budget(
        texts_per_day=texts_per_day,
        false_alarms_per_reviewer_day=false_alarms_per_reviewer_day,
        reviewers=reviewers,
    )
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in points], indent=2))
        return
    table = Table(
        "category",
        "FPR",
        "threshold",
        "expected TPR",
        "false alarms/day",
        title=f"{false_alarms_per_reviewer_day:g} false alarms per reviewer-day x {reviewers} "
        f"reviewer(s), {texts_per_day:g} texts/day",
    )
    for p in points:
        table.add_row(
            p.category,
            f"{p.fpr:.2e}",
            f"{p.threshold:.4f}",
            f"{p.expected_tpr:.3f}",
            f"{p.false_alarms_per_day:.2f}",
        )
    _console.print(table)


@monitors.command("drift")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def drift(paths: tuple[Path, ...], as_json: bool) -> None:
    """Score live transcripts (files or folders, any format `custodes scan` reads) with the
    combined detector and warn where a category's score distribution drifted from the
    calibration set (population stability index > 0.25). Exits 1 on a warning."""
    from custodes.monitors import detect_format, expand_paths, load_calibration, read_records

    det = default_registry().get("combined")
    live: dict[str, list[float]] = {c: [] for c in det.categories}
    with Progress(
        TextColumn("scoring"), BarColumn(), TextColumn("{task.completed} records"), console=_err
    ) as progress:
        task = progress.add_task("score", total=None)
        for f in expand_paths(paths):
            for rec in read_records(f, detect_format(f)):
                if rec.problem is None:
                    for c, v in det.score_text(rec.text).items():  # type: ignore[attr-defined]
                        live[c].append(v)
                    progress.advance(task)
    report = load_calibration().drift(live)
    if as_json:
        click.echo(json.dumps([d.__dict__ for d in report], indent=2))
    else:
        table = Table("category", "live scores", "PSI", "status")
        for d in report:
            table.add_row(d.category, str(d.live), f"{d.psi:.3f}", d.message)
        _console.print(table)
    if any(d.warn for d in report):
        sys.exit(1)


# --- custodes scan ---------------------------------------------------------------------------


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--actor", required=True, help="The principal whose transcripts these are.")
@click.option(
    "--organisation",
    default=None,
    help="The actor's organisation (default: from the constitution).",
)
@click.option(
    "--detector",
    "names",
    multiple=True,
    help="Detector(s) to run (default: vuln_rules and coup_rules; judged with --judge-model).",
)
@click.option(
    "--min-score",
    type=float,
    default=0.5,
    show_default=True,
    help="Lowest detection score that is recorded.",
)
@click.option("--restart", is_flag=True, help="Forget saved progress and scan from the start.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Processes that run the detectors (default: one per CPU core available).",
)
@click.option(
    "--dask",
    "dask_address",
    default=None,
    metavar="ADDRESS",
    help="Run the detectors on a Dask cluster: a scheduler's address (tcp://host:8786), or "
    "local[:N] for a LocalCluster of N worker processes (default: one per core). Paths may "
    "then be fsspec URLs (file://, s3://, gs://) the workers can read.",
)
@click.option(
    "--shard-mb",
    type=click.IntRange(1, 1 << 20),
    default=64,
    show_default=True,
    help="With --dask: the size of the shards large line-oriented files are cut into.",
)
@_judge_options
@pass_state
def scan(
    state: CliState,
    paths: tuple[str, ...],
    actor: str,
    organisation: str | None,
    names: tuple[str, ...],
    min_score: float,
    restart: bool,
    workers: int | None,
    dask_address: str | None,
    shard_mb: int,
    judge_model: str | None,
    judge_url: str | None,
    judge_key_env: str | None,
    judge_band: float,
    judge_mb_per_hour: float,
    judge_calibration: Path | None,
) -> None:
    """Scan transcript files and folders (OpenAI chat JSONL, Claude Code JSONL, Inspect .json /
    .eval logs, plain text); detections go to the log and the review queue. Resumable.

    With --detector judged (or --judge-model NAME, which makes it the default), the model
    tier judges what the rules and learned tiers leave uncertain, through the gateway: each
    worker process asks with its own client and judges an equal share of the hourly cap."""
    from custodes.monitors import is_url

    for p in paths:
        if is_url(p):
            if dask_address is None:
                raise click.BadParameter(
                    f"{p} is a URL: URLs are read by the workers of a Dask scan (add --dask)",
                    param_hint="PATHS",
                )
        elif not Path(p).exists():
            raise click.BadParameter(f"{p} does not exist", param_hint="PATHS")
    if dask_address is not None and workers is not None:
        raise click.BadParameter(
            "--workers is for a local scan; a Dask scan runs on the cluster's workers "
            "(use --dask local:N for N local worker processes)",
            param_hint="--workers",
        )
    chosen = list(
        names or (("judged",) if judge_model is not None else ("vuln_rules", "coup_rules"))
    )
    judge = None
    if "judged" in chosen:
        if dask_address is not None:
            raise click.BadParameter(
                "a Dask scan does not run the judged detector (its workers rebuild the "
                "built-in detectors); run the judge with a local scan (--workers N)",
                param_hint="--detector judged",
            )
        # Settings and key checked before the deployment is opened or any file read.
        judge = _judge_settings(
            state,
            judge_model,
            judge_url,
            judge_key_env,
            judge_band,
            judge_mb_per_hour,
            judge_calibration,
        )
    with _service(state) as service:
        if judge is not None:
            judge.register(service.registry)
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        unknown = [n for n in chosen if n not in service.registry.names()]
        if unknown:
            raise click.BadParameter(
                f"no detector named {unknown[0]!r} (known: {', '.join(service.registry.names())})",
                param_hint="--detector",
            )
        # Worker processes build their own detectors; this process builds them only when it
        # runs them (one worker), not to leave them unused (the learned tier loads a model).
        local = workers == 1 and dask_address is None
        detectors = [service.registry.get(n) for n in chosen] if local else []
        scanner = TranscriptScanner(
            detectors,
            service.queue,
            actor=actor,
            actor_organisation=organisation,
            min_score=min_score,
            workers=1 if dask_address is not None else workers,
            detector_names=chosen,
            judge=judge,
        )
        if dask_address is not None:
            _dask_scan(scanner, paths, dask_address, shard_mb * 1024 * 1024, restart)
            return
        from custodes.monitors import expand_paths

        files = list(expand_paths(Path(p) for p in paths))
        total = 0 if restart else scanner.pending_bytes(files)
        if restart:
            total = sum(f.stat().st_size for f in files)

        started = time.perf_counter()
        with _scan_progress() as (progress, task):
            progress.update(task, total=total)
            summary = scanner.scan(
                files,
                on_bytes=lambda n: progress.advance(task, n),
                on_problem=_skipped,
                restart=restart,
            )
        _scan_report(summary, started)
        if judge is not None:
            _judge_report(judge, detectors, scanner.workers)


def _judge_report(judge: JudgeSettings, detectors: list[Any], workers: int) -> None:
    """What the judge cost in this scan: counted here with one worker; with several, each
    worker counted its own, and the gateway's log holds every call."""
    if workers == 1:
        for det in detectors:
            if isinstance(det, JudgedDetector):
                st = det.stats
                _console.print(
                    f"judge {judge.model!r}: {st.judged_texts} of {st.texts} texts judged "
                    f"({st.judged_bytes / 1e6:.3f} of {st.bytes / 1e6:.3f} MB), {st.calls} "
                    f"calls, {st.prompt_tokens + st.completion_tokens} tokens, "
                    f"{st.judge_seconds:.1f} s; {st.unjudged} left to the combined tier "
                    f"({st.failures} failed calls)"
                )
        return
    _console.print(
        f"judge {judge.model!r}: {workers} workers judged, each up to "
        f"{judge.max_mb_per_hour / workers:g} of the {judge.max_mb_per_hour:g} MB per hour; "
        "the gateway's log holds every judging call (gateway.call/v1 entries of the "
        "monitoring principal)"
    )


def _skipped(p: ScanProblem) -> None:
    """Report a skipped file or record on standard error (the scan goes on)."""
    _err.print(f"[yellow]skipped[/] {p.where}: {p.message}")


@contextmanager
def _scan_progress() -> Iterator[tuple[Progress, Any]]:
    """A progress bar in bytes (with speed and time left) on standard error, and its task;
    the total is set once the pending bytes are known."""
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err,
    ) as progress:
        yield progress, progress.add_task("scan", total=None)


def _scan_report(summary: ScanSummary, started: float) -> None:
    """Print what a scan read and found, and its throughput since ``started``."""
    elapsed = max(time.perf_counter() - started, 1e-9)
    _console.print(
        f"{summary.files} file(s) scanned, {summary.skipped_files} already complete, "
        f"{summary.records} record(s), {summary.bytes / 1e6:.1f} MB at "
        f"{summary.bytes / 1e6 / elapsed:.1f} MB/s; {summary.detections} detection(s); "
        f"{len(summary.problems)} malformed record(s) skipped"
    )


@contextmanager
def _dask_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` on ``address``, or on a LocalCluster for ``local[:N]``.

    Raises:
        click.BadParameter: ``local:N`` with N not in 1..MAX_DASK_WORKERS, or no scheduler
            answers.
    """
    import logging

    import distributed

    # The scheduler's and workers' INFO lines (and the tracebacks of connections closed at
    # shutdown, logged at INFO) would bury the progress bar and the problems the scan reports.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if address == "local" or address.startswith("local:"):
        count = address.partition(":")[2]
        # ASCII digits only (str.isdigit passes "²", on which int() raises), and a bound: each
        # worker is a process holding the detectors.
        if count and (
            not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= MAX_DASK_WORKERS
        ):
            raise click.BadParameter(
                f"expected local or local:N with 1 <= N <= {MAX_DASK_WORKERS}, got {address!r}",
                param_hint="--dask",
            )
        n = (
            int(count)
            if count
            else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        )
        with (
            distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                silence_logs=logging.WARNING,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = distributed.Client(address, timeout="30s")
    except OSError as exc:
        raise click.BadParameter(
            f"no Dask scheduler answered at {address}: {exc}", param_hint="--dask"
        ) from exc
    with client:
        yield client


def _dask_scan(
    scanner: TranscriptScanner,
    paths: tuple[str, ...],
    address: str,
    shard_bytes: int,
    restart: bool,
) -> None:
    """``custodes scan --dask``: the same scan, its files cut into shards of about
    ``shard_bytes`` scored on a Dask cluster, while this process logs what they find."""
    from custodes.monitors import DaskScan, scan_sources

    sources = scan_sources(list(paths))
    with _dask_client(address) as client:
        _err.print(f"Dask scheduler {client.scheduler.address}; dashboard {client.dashboard_link}")
        started = time.perf_counter()
        runner = DaskScan(scanner, client, shard_bytes=shard_bytes)
        with _scan_progress() as (progress, task):
            progress.update(task, total=runner.pending_bytes(sources, restart))
            summary = runner.scan(
                sources,
                on_bytes=lambda n: progress.advance(task, n),
                on_problem=_skipped,
                restart=restart,
            )
        _scan_report(summary, started)


# --- custodes review -------------------------------------------------------------------------


@click.group()
def review() -> None:
    """The review queue: detections assigned to reviewers of other organisations."""


def _row(d: StoredDetection, now: datetime) -> list[str]:
    """One detection as a row of ``review list`` (its age in days and hours at ``now``)."""
    age = d.age(now)
    return [
        d.id,
        d.category,
        f"{d.score:.2f}",
        d.actor,
        d.location,
        d.status,
        f"{age.days}d{age.seconds // 3600}h",
        ", ".join(d.reviewers) or "(none)",
    ]


@review.command("list")
@click.option(
    "--as", "viewer", default=None, help="Show what this principal sees (default: every detection)."
)
@click.option(
    "--status",
    type=click.Choice(["open", "dismissed", "linked", "all"]),
    default="open",
    show_default=True,
)
@click.option("--category", default=None)
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def review_list(
    state: CliState,
    viewer: str | None,
    status: str,
    category: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Detections, oldest first, with their age."""
    with _service(state) as service:
        rows = service.queue.list(
            viewer=viewer,
            status=None if status == "all" else status,  # type: ignore[arg-type]
            category=category,
            limit=limit,
        )
        now = service.queue.clock.now()
    if as_json:
        click.echo(json.dumps([d.to_json(now) for d in rows], indent=2))
        return
    table = Table("id", "category", "score", "actor", "where", "status", "age", "reviewers")
    for d in rows:
        table.add_row(*_row(d, now))
    _console.print(keep_whole(table, "id"))


@review.command("show")
@click.argument("detection_id")
@click.option("--as", "viewer", default=None, help="Check that this principal may see it.")
@pass_state
def review_show(state: CliState, detection_id: str, viewer: str | None) -> None:
    """One detection as JSON."""
    with _service(state) as service:
        d = service.queue.show(detection_id, viewer=viewer)
        click.echo(json.dumps(d.to_json(service.queue.clock.now()), indent=2))


@review.command("resolve")
@click.argument("detection_id")
@click.option("--as", "reviewer", required=True, help="The reviewer resolving it.")
@click.option("--dismiss", "reason", default=None, help="Dismiss, with this reason.")
@click.option(
    "--finding",
    "finding_id",
    default=None,
    help="Link to this registered finding (e.g. CUSTODES-2026-0001).",
)
@pass_state
def review_resolve(
    state: CliState, detection_id: str, reviewer: str, reason: str | None, finding_id: str | None
) -> None:
    """Dismiss a detection with a reason, or link it to a registered finding."""
    with _service(state) as service:
        d = service.queue.resolve(
            detection_id, reviewer=reviewer, reason=reason, finding_id=finding_id
        )
    _console.print(
        f"{d.id}: {d.status} by {d.resolved_by} at "
        f"{(d.resolved_at or datetime.now(UTC)).isoformat()}"
    )
