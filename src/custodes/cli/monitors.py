"""``custodes monitors eval|train|list``, ``custodes scan PATH...`` and
``custodes review list|show|resolve``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
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
    Example,
    MonitorsService,
    ScanProblem,
    StoredDetection,
    TranscriptScanner,
    compute_metrics,
    default_registry,
    read_dataset,
    start_monitors,
)

__all__ = ["monitors", "review", "scan"]

# Tables of figures are wide: do not squeeze them to 80 columns when output is redirected.
_console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _service(state: CliState) -> Iterator[MonitorsService]:
    from custodes.authority import start_authority
    from custodes.custody._service import build_registry
    from custodes.server import build_context

    ctx = build_context(state.settings)
    try:
        ctx.services["authority"] = start_authority(ctx)
        service = start_monitors(ctx)
        ctx.services["monitors"] = service
        ctx.services["custody"] = build_registry(ctx)
        yield service
    finally:
        ctx.close()


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


def _score_examples(examples: list[Example], names: list[str]) -> list[dict[str, float]]:
    registry = default_registry()
    detectors = [registry.get(n) for n in names]
    out = []
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    ) as progress:
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
            out.append(scores)
            progress.advance(task)
    return out


@monitors.command("eval")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--detector",
    "names",
    multiple=True,
    help="Detector(s) to run (repeatable; default: vuln_rules and coup_rules, plus "
    "learned if its extra and weights are installed).",
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
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def eval_command(
    dataset: Path, names: tuple[str, ...], predictions: Path | None, budget: float, as_json: bool
) -> None:
    """Per category: TPR at 1% and 0.1% FPR, AUROC, AUPRC and the confusion matrix at the
    operating threshold (computed exactly like the data sets' score.py)."""
    examples = list(read_dataset(dataset))
    if not examples:
        raise InputError("the data set is empty", where=str(dataset), expected="labelled rows")
    chosen = list(names) or _default_detectors()
    scores = _score_examples(examples, chosen)
    cats = sorted({c for s in scores for c in s})
    overall = [max(s.values(), default=0.0) for s in scores]
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
        m = compute_metrics(labels, [scores[i][cat] for i in idx], operating_fpr=budget)
        results[cat] = m
    if labelled and 0 < sum(e.label or 0 for e in labelled) < len(labelled) and len(results) > 1:
        results["any"] = compute_metrics(
            [e.label or 0 for e in labelled],
            [overall[i] for i, e in enumerate(examples) if e.label is not None],
            operating_fpr=budget,
        )
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
    if as_json:
        click.echo(json.dumps({c: _metrics_json(m) for c, m in results.items()}, indent=2))
        return
    table = Table(
        "category",
        "n+",
        "n-",
        "TPR@1%",
        "TPR@0.1%",
        "AUROC",
        "AUPRC",
        f"TP/FP/TN/FN @ {budget:g} FPR",
        "threshold",
        title=str(dataset),
    )
    for cat, m in results.items():
        c = m.confusion
        table.add_row(
            cat,
            str(m.positives),
            str(m.negatives),
            f"{m.tpr_at_1pct:.4f}",
            f"{m.tpr_at_01pct:.4f}",
            f"{m.auroc:.4f}",
            f"{m.auprc:.4f}",
            f"{c.tp}/{c.fp}/{c.tn}/{c.fn}",
            f"{m.operating_threshold:.4g}",
        )
    _console.print(table)


def _metrics_json(m: Any) -> dict[str, Any]:
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


def _default_detectors() -> list[str]:
    names = ["vuln_rules", "coup_rules"]
    try:
        default_registry().get("learned")
        names.append("learned")
    except Exception as exc:  # noqa: BLE001 - the learned tier is optional
        _err.print(f"[yellow]learned tier not used:[/] {exc}")
    return names


@monitors.command("train")
@click.argument(
    "datasets",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the weights (default: the package's learned_weights.json).",
)
def train(datasets: tuple[Path, ...], out: Path | None) -> None:
    """Train the learned tier's linear heads on labelled DATASETS and report in-sample and
    group-held-out figures (5 folds by the data set's group / template)."""
    from custodes.monitors._learned import WEIGHTS_FILE, Encoder
    from custodes.monitors._train import train_heads

    examples = [e for d in datasets for e in read_dataset(d) if e.label is not None]
    encoder = Encoder()
    with Progress(
        TextColumn("encoding"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    ) as progress:
        task = progress.add_task("encoding", total=len(examples))
        result = train_heads(
            examples, encoder=encoder, progress=lambda n: progress.update(task, completed=n)
        )
    target = out or Path(__file__).resolve().parent.parent / "monitors" / WEIGHTS_FILE
    target.write_text(result.heads.to_json() + "\n", encoding="utf-8")
    table = Table(
        "category",
        "split",
        "TPR@5%",
        "TPR@1%",
        "AUROC",
        "AUPRC",
        title=f"weights written to {target}",
    )
    for split, metrics in (("in-sample", result.in_sample), ("held-out", result.held_out)):
        for cat, m in metrics.items():
            table.add_row(
                cat,
                split,
                f"{m.tpr_at_5pct:.3f}",
                f"{m.tpr_at_1pct:.3f}",
                f"{m.auroc:.3f}",
                f"{m.auprc:.3f}",
            )
    _console.print(table)


# --- custodes scan ---------------------------------------------------------------------------


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
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
    help="Detector(s) to run (default: vuln_rules and coup_rules).",
)
@click.option(
    "--min-score",
    type=float,
    default=0.5,
    show_default=True,
    help="Lowest detection score that is recorded.",
)
@click.option("--restart", is_flag=True, help="Forget saved progress and scan from the start.")
@pass_state
def scan(
    state: CliState,
    paths: tuple[Path, ...],
    actor: str,
    organisation: str | None,
    names: tuple[str, ...],
    min_score: float,
    restart: bool,
) -> None:
    """Scan transcript files and folders (OpenAI chat JSONL, Claude Code JSONL, Inspect .json /
    .eval logs, plain text); detections go to the log and the review queue. Resumable."""
    with _service(state) as service:
        detectors = [service.registry.get(n) for n in (names or ("vuln_rules", "coup_rules"))]
        scanner = TranscriptScanner(
            detectors,
            service.queue,
            actor=actor,
            actor_organisation=organisation,
            min_score=min_score,
        )
        from custodes.monitors._scan import expand_paths

        files = list(expand_paths(paths))
        total = 0 if restart else scanner.pending_bytes(files)
        if restart:
            total = sum(f.stat().st_size for f in files)

        def problem(p: ScanProblem) -> None:
            _err.print(f"[yellow]skipped[/] {p.where}: {p.message}")

        started = time.perf_counter()
        with Progress(
            TextColumn("scanning"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=_err,
        ) as progress:
            task = progress.add_task("scan", total=total)
            summary = scanner.scan(
                files,
                on_bytes=lambda n: progress.advance(task, n),
                on_problem=problem,
                restart=restart,
            )
        elapsed = max(time.perf_counter() - started, 1e-9)
        _console.print(
            f"{summary.files} file(s) scanned, {summary.skipped_files} already complete, "
            f"{summary.records} record(s), {summary.bytes / 1e6:.1f} MB at "
            f"{summary.bytes / 1e6 / elapsed:.1f} MB/s; {summary.detections} detection(s); "
            f"{len(summary.problems)} malformed record(s) skipped"
        )


# --- custodes review -------------------------------------------------------------------------


@click.group()
def review() -> None:
    """The review queue: detections assigned to reviewers of other organisations."""


def _row(d: StoredDetection, now: datetime) -> list[str]:
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
