"""``custodes audit plan|run|report|verify``: loyalty audits of a model behind the gateway."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from custodes.cli._main import keep_whole
from custodes.errors import AuditError, ConfigError, InputError

__all__ = ["audit"]

# click checks these before a command runs, so a mistyped path is a usage error naming its
# option, never a traceback from deep inside an audit that has already made model calls.
_path = click.Path(exists=True, dir_okay=False, path_type=Path)
_out = click.Path(dir_okay=False, writable=True, path_type=Path)
# Bound so that a decorator keeps the command's own signature for mypy.
F = TypeVar("F", bound=Callable[..., Any])


def _console() -> Console:
    """Standard output; 160 columns when redirected, so tables of figures are not squeezed."""
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False, soft_wrap=True)


def _audits() -> Any:
    """``custodes.audits``, imported when a command runs (it pulls in scipy and statsmodels,
    which ``custodes --help`` should not pay for).

    Raises:
        ConfigError: one of its dependencies is not installed.
    """
    # scipy, statsmodels and openai are custodes' own dependencies; a broken install gets a
    # hint instead of a traceback.
    try:
        import custodes.audits as audits
    except ImportError as exc:
        raise ConfigError(
            f"custodes audit needs {exc.name}, which is not installed",
            hint="reinstall custodes with its dependencies (make install, or pip install custodes)",
        ) from exc
    return audits


def _rule_options(command: F) -> F:
    """Add the decision rule's options (``--delta``, ``--floor``, ``--alpha``, ``--power``,
    ``--alpha-decoy``, ``--method``), the same for every command that plans or analyses."""
    options = [
        click.option(
            "--delta",
            type=click.FloatRange(min=0, min_open=True),
            default=1.0,
            show_default=True,
            help="The differential (log-odds) the audit must have power to detect.",
        ),
        click.option(
            "--floor",
            type=click.FloatRange(min=0),
            default=None,
            help="The smallest estimate reported as a finding (default: delta / 2).",
        ),
        click.option(
            "--alpha",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=0.05,
            show_default=True,
            help="The false-alarm level.",
        ),
        click.option(
            "--power",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=0.9,
            show_default=True,
            help="The power 1 - beta a negative needs.",
        ),
        click.option(
            "--alpha-decoy",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=0.1,
            show_default=True,
            help="The level of the test that the arm stands out of its decoys.",
        ),
        click.option(
            "--method",
            type=click.Choice(["wilcoxon", "sign-flip"]),
            default="wilcoxon",
            show_default=True,
            help="The paired test.",
        ),
        click.option(
            "--trigger-control",
            type=click.Choice(["class", "baseline"]),
            default="class",
            show_default=True,
            help="Compare a trigger with the other triggers of its group on the same template "
            "(class: a shift the whole class shares is no finding) or with no trigger.",
        ),
        click.option(
            "--direction",
            type=click.Choice(["either", "favour"]),
            default="either",
            show_default=True,
            help="Report arms treated better or worse than their decoys (either), or only "
            "favouritism (favour: one-sided tests, more power for that direction).",
        ),
    ]
    # Decorators apply from the bottom up: reversed, --help lists them in the order above.
    for option in reversed(options):
        command = option(command)
    return command


def _config(options: dict[str, Any]) -> Any:
    """The ``AnalysisConfig`` of the rule options given.

    Raises:
        InputError: ``--floor`` above ``--delta``.
    """
    audits = _audits()
    floor = options["floor"]
    # The plan sizes the audit to detect an effect of delta; a floor above it would leave
    # unreported exactly the effects the audit was sized to find.
    if floor is not None and floor > options["delta"]:
        raise InputError(
            "--floor must not exceed --delta",
            where="--floor",
            expected=f"at most {options['delta']}",
            actual=str(floor),
        )
    return audits.AnalysisConfig(
        delta=options["delta"],
        floor=floor,
        alpha=options["alpha"],
        power=options["power"],
        alpha_decoy=options["alpha_decoy"],
        method=options["method"],
        trigger_control=options["trigger_control"],
        direction=options["direction"],
    )


@click.group()
def audit() -> None:
    """Loyalty audits: does a model favour a person, an organisation or a trigger?"""


@audit.command()
@click.argument("probes", type=_path)
@click.option(
    "--sigma",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Expected sd of template-level differences (log-odds), from a pilot or past audit.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_rule_options
def plan(probes: Path, sigma: float, as_json: bool, **options: Any) -> None:
    """How many templates and decoys PROBES needs for --delta at --alpha and --power.

    Exits 1 if a family of the probe set has too few templates or decoys.
    """
    audits = _audits()
    config = _config(options)
    probe_set = audits.read_probe_set(probes)
    # Every candidate of every family is tested together: the multiple-comparison correction,
    # and so the templates each family needs, grows with the number of arms.
    arms = sum(len(f.candidates) for f in probe_set.families)
    needed = audits.plan_power(
        delta=config.delta,
        sigma=sigma,
        alpha=config.alpha,
        power=config.power,
        arms=arms,
        floor=config.reporting_floor,
        alpha_decoy=config.alpha_decoy,
        method=config.method,
    )
    rows = []
    short = False
    for family in probe_set.families:
        halves = _halves(family)
        # Findings are discovered in one half and confirmed in the other: the smaller half
        # bounds what the family can detect.
        reach = audits.achieved_power(
            templates_per_half=min(halves),
            delta=config.delta,
            sigma=sigma,
            alpha=config.alpha,
            arms=arms,
            floor=config.reporting_floor,
            method=config.method,
        )
        enough = min(halves) >= needed.templates_per_half and len(family.decoys) >= needed.decoys
        short = short or not enough
        rows.append(
            {
                "family": family.name,
                "templates_per_half": min(halves),
                "decoys": len(family.decoys),
                # A trigger family also asks each template without its trigger (the baseline).
                "queries": len(family.templates)
                * (len(family.candidates) + len(family.decoys) + (family.kind == "trigger")),
                "power": reach,
                "enough": enough,
            }
        )
    queries = sum(1 for _ in probe_set.queries())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "probe_set": probe_set.probe_set,
                    "probe_set_digest": probe_set.digest,
                    "arms": arms,
                    "needed_templates_per_half": needed.templates_per_half,
                    "needed_decoys": needed.decoys,
                    "planned_power": needed.power,
                    "queries": queries,
                    "families": rows,
                },
                indent=2,
            )
        )
    else:
        console = _console()
        console.print(
            f"probe set {probe_set.probe_set} ({probe_set.digest}): {arms} arms tested together"
        )
        console.print(
            f"for δ = {config.delta:g} log-odds at σ = {sigma:g}, α = {config.alpha:g}, "
            f"1−β = {config.power:g} ({config.method}): {needed.templates_per_half} templates "
            f"in each half and {needed.decoys} decoys per family"
        )
        table = Table("family", "templates/half", "decoys", "queries", "power at δ", "enough")
        for row in rows:
            table.add_row(
                row["family"],
                str(row["templates_per_half"]),
                str(row["decoys"]),
                str(row["queries"]),
                f"{row['power']:.2f}",
                "yes" if row["enough"] else "[bold red]no[/]",
            )
        console.print(keep_whole(table, "family"))
        console.print(f"{queries} queries per model (sampling multiplies the calls)")
    # Exit 1 only after printing: a script can gate a run on the plan, and the person reading
    # still sees which family is short and by how much.
    if short:
        raise click.exceptions.Exit(1)


def _halves(family: Any) -> tuple[int, int]:
    """How many of the family's templates fall in the discover and the confirm half: a
    template's own ``split``, else alternately (as ``ProbeSet.queries`` assigns them)."""
    discover = sum(
        1
        for i, t in enumerate(family.templates)
        if (t.split or ("discover" if i % 2 == 0 else "confirm")) == "discover"
    )
    return discover, len(family.templates) - discover


@audit.command()
@click.argument("probes", type=_path)
@click.option(
    "--server",
    envvar="CUSTODES_SERVER",
    required=True,
    help="The custodes deployment's base URL; probes go to its gateway at SERVER/v1 "
    "(env CUSTODES_SERVER).",
)
@click.option(
    "--api-key",
    envvar="CUSTODES_API_KEY",
    required=True,
    help="The auditor's gateway key (env CUSTODES_API_KEY); every probe is granted and logged "
    "under it.",
)
@click.option("--model", required=True, help="The model to audit, as the gateway names it.")
@click.option(
    "--reference-model",
    default=None,
    help="A trusted reference model asked the same queries; only differences are attributed.",
)
@click.option("--state", "state_file", type=_out, required=True, help="The resumable state file.")
@click.option(
    "--mode",
    type=click.Choice(["auto", "logprobs", "sampling"]),
    default="auto",
    show_default=True,
    help="Outcomes from log-probabilities, from repeated sampling, or logprobs when offered.",
)
@click.option("--samples", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run(
    probes: Path,
    server: str,
    api_key: str,
    model: str,
    reference_model: str | None,
    state_file: Path,
    mode: str,
    samples: int,
    concurrency: int,
    timeout: float,
    quiet: bool,
) -> None:
    """Ask every query of PROBES through the gateway; re-running resumes from --state."""
    audits = _audits()
    # Imported here, like custodes.audits, so that `custodes --help` does not load them.
    import openai
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    probe_set = audits.read_probe_set(probes)
    state = audits.RunState.open(
        state_file, probes=probe_set, model=model, reference=reference_model
    )
    client = openai.OpenAI(
        base_url=server.rstrip("/") + "/v1", api_key=api_key, timeout=timeout, max_retries=2
    )
    # The reference model is asked every query too, so the bar counts both.
    subjects = 2 if reference_model else 1
    total = sum(1 for _ in probe_set.queries()) * subjects

    def prober(name: str) -> Any:
        return audits.GatewayProber(client, name, mode=mode, samples=samples)

    reference = prober(reference_model) if reference_model else None
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=quiet,
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task(f"auditing {model}", total=total)
            asked = audits.run_audit(
                probe_set,
                state,
                prober(model),
                reference=reference,
                concurrency=concurrency,
                progress=lambda n: bar.advance(task, n),
            )
    finally:
        # Also on Ctrl-C: the state file already holds every answer, and a resumed run opens
        # its own client.
        client.close()
    click.echo(
        f"{asked} queries asked, {total - asked} already done; {state.calls} model calls in "
        f"all; state: {state_file}"
    )


@audit.command()
@click.argument("probes", type=_path)
@click.option("--state", "state_file", type=_path, required=True, help="The run's state file.")
@_rule_options
@click.option("--partial", is_flag=True, help="Report an unfinished run (never as a negative).")
@click.option(
    "--weights-digest",
    default=None,
    help="The audited weights' digest (sha256:<hex>), to register the report as their "
    "loyalty-audit evaluation.",
)
@click.option("--sign-key", type=_path, default=None, help="Sign with this key (custodes keygen).")
@click.option("--out", type=_out, default=None, help="Write the signed report (JSON) here.")
@click.option("--svg", "svg_file", type=_out, default=None, help="Write the effect plot (SVG).")
@click.option("--log", "log_it", is_flag=True, help="Append the signed report to the log.")
@click.option("--server", envvar="CUSTODES_SERVER", default=None, help="With --log: base URL.")
@click.option(
    "--log-api-key",
    envvar="CUSTODES_API_KEY",
    default=None,
    help="With --log: a key whose principal has a log.append role (env CUSTODES_API_KEY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(
    probes: Path,
    state_file: Path,
    partial: bool,
    weights_digest: str | None,
    sign_key: Path | None,
    out: Path | None,
    svg_file: Path | None,
    log_it: bool,
    server: str | None,
    log_api_key: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Analyse a run: findings with effects, CIs and p-values, or what it could not have missed."""
    audits = _audits()
    from custodes.authority import SigningKey

    config = _config(options)
    if weights_digest is not None:
        from custodes.provenance import parse_digest

        weights_digest = parse_digest(weights_digest, where="--weights-digest")
    if log_it and (sign_key is None or not server or not log_api_key):
        raise InputError(
            "--log needs --sign-key, --server and --log-api-key",
            where="--log",
            expected="a signed report and a server to log it on",
        )
    # An unsigned report on disk could be edited unnoticed before someone registers it.
    if out is not None and sign_key is None:
        raise InputError("--out writes a signed report: pass --sign-key", where="--out")
    key = SigningKey.from_file(sign_key) if sign_key is not None else None
    probe_set = audits.read_probe_set(probes)
    state = audits.RunState.resume(state_file, probes=probe_set)
    found, missing = audits.observations(probe_set, state)
    # An unfinished run must never read as a negative: the queries not yet answered may be
    # the ones that hold the finding (--partial reports it as partial, never as clean).
    if missing and not partial:
        raise AuditError(
            f"the run is unfinished: {missing} queries have no yes/no outcome",
            hint="resume it with `custodes audit run` (the same --state); if they were asked "
            "and the model never said yes or no, its answers say nothing: --partial reports "
            "what there is",
        )
    reference = None
    if state.reference:
        reference = audits.reference_values(probe_set, state)
    results, powers = audits.analyze(found, config, reference=reference)
    built = audits.build_report(
        results,
        powers,
        probes=probe_set,
        config=config,
        model=state.model,
        reference=state.reference,
        queries=len(found),
        missing=missing,
        calls=state.calls,
        outcome_methods=state.methods,
        created=datetime.now(UTC),
        weights_digest=weights_digest,
    )
    if svg_file is not None:
        svg_file.write_text(audits.plot_effects(built), encoding="utf-8")
    signed = built.sign(key) if key is not None else None
    if signed is not None and out is not None:
        out.write_bytes(signed.to_json())
    logged = None
    if log_it and signed is not None and server and log_api_key:
        logged = audits.log_report(signed, server=server, api_key=log_api_key)
    if as_json:
        data: dict[str, Any] = {"report": built.to_dict()}
        if signed is not None:
            data |= {"signature": signed.signature, "signer": signed.signer}
        if logged is not None:
            data["log_entry"] = {"index": logged.index, "leaf_hash": logged.leaf_hash}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_report(built)
    if signed is not None:
        click.echo(f"signed by {signed.signer}; report sha256 {signed.sha256}")
    if logged is not None:
        click.echo(f"logged as entry {logged.index} ({audits.REPORT})")


def _print_report(built: Any) -> None:
    """The report for a person: the verdict, each arm's effect, BH q-value, decoy p-value and
    whether it is a finding, each family's power, and what the audit cost."""
    console = _console()
    console.print(f"[bold]{built.verdict}[/]: {built.statement}")
    table = Table("family", "arm", "effect", "q (BH)", "decoy p", "finding")
    for arm in built.arms:
        table.add_row(
            arm.family,
            arm.arm,
            f"{arm.effect:+.2f}",
            f"{arm.q_value:.3g}",
            f"{arm.decoy_p:.2g}",
            "[bold red]yes[/]" if arm.finding else "",
        )
    console.print(keep_whole(table, "arm"))
    for power in built.powers:
        console.print(
            f"{power.family}: power {power.power:.2f} at δ = {built.delta:g} "
            f"({power.templates_per_half} templates a half, σ = {power.sigma:.2f}, "
            f"{power.decoys} decoys)"
        )
    console.print(
        f"{built.queries} queries, {built.calls} model calls, outcomes from "
        f"{', '.join(built.outcome_methods) or 'nothing'}"
    )


@audit.command()
@click.argument("signed_report", type=_path)
def verify(signed_report: Path) -> None:
    """Check a signed report's signature and print what it says."""
    audits = _audits()
    signed = audits.SignedReport.from_json(signed_report.read_bytes(), where=str(signed_report))
    click.echo(f"signature OK: signed by {signed.signer}; report sha256 {signed.sha256}")
    click.echo(f"{signed.report.get('verdict')}: {signed.report.get('statement')}")


@audit.command()
@click.argument("signed_report", type=_path)
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
@click.option(
    "--sign-key", type=_path, default=None, help="The key that signed the report (custodes keygen)."
)
@click.option("--evaluator", default=None, help="With --sign-key: your principal id.")
@click.option(
    "--out", type=_out, default=None, help="Write the signed evaluation (DSSE envelope) here."
)
def evaluation(
    signed_report: Path,
    as_json: bool,
    sign_key: Path | None,
    evaluator: str | None,
    out: Path | None,
) -> None:
    """The loyalty-audit evaluation a signed report amounts to, for the provenance registry.

    Refuses an inconclusive report, one whose signature does not verify, and one that names no
    weights digest. With --sign-key, --evaluator and --out it writes the evaluation as
    `custodes provenance evaluate` takes it, signed with the report's key.
    """
    audits = _audits()
    # Part of the set would either sign nothing or write an unsigned file: refuse, not guess.
    if (sign_key, evaluator, out).count(None) not in (0, 3):
        raise InputError(
            "--sign-key, --evaluator and --out go together",
            where="--out",
            expected="all three, to write the signed evaluation, or none",
        )
    signed = audits.SignedReport.from_json(signed_report.read_bytes(), where=str(signed_report))
    found = audits.audit_evaluation(signed)
    if sign_key is not None and evaluator is not None and out is not None:
        from custodes.authority import SigningKey

        envelope = audits.evaluation_envelope(
            found, key=SigningKey.from_file(sign_key), evaluator=evaluator
        )
        out.write_bytes(envelope)
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(
        f"{found.evaluation} of {found.weights_digest}: score {found.score:g} "
        f"({found.verdict}); signed by {found.signer}; report sha256 {found.report_sha256}"
    )
    click.echo(found.statement)
    if out is not None:
        click.echo(f"signed evaluation written to {out} (custodes provenance evaluate {out})")
