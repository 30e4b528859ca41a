"""``custodes usage``: who actually uses each tier (concentration figures), as a table, JSON
or an SVG chart, from the deployment's log."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from custodes.cli._main import CliState, pass_state
from custodes.errors import ConfigError, InputError

__all__ = ["usage"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


@click.command()
@click.option("--capability", default=None, help="Only this tier.")
@click.option("--window", default=None, help="Only this window: day, week or 90d.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--svg",
    "svg_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a chart of the shares of tokens by person (SVG).",
)
@pass_state
def usage(
    state: CliState,
    capability: str | None,
    window: str | None,
    as_json: bool,
    svg_file: Path | None,
) -> None:
    """Concentration of use per tier and window: top person and organisation shares, HHI,
    distinct users, the coalition of use (docs/usage.md)."""
    from custodes.usage import UsageTracker, figures_svg
    from custodes.wiring import build_records, open_core

    settings = state.settings
    database = settings.data_dir / "custodes.db"
    if not settings.database_url and not database.exists():
        raise ConfigError(
            f"no custodes database at {database}",
            hint="pass the data folder of your deployment: `custodes --data-dir DIR usage`",
        )
    core = open_core(settings)
    try:
        records = build_records(core)
        tracker = UsageTracker(
            engine=core.engine, log=core.log, constitution=records.authority, clock=core.clock
        )
        figures = tracker.figures(capability=capability, window=window)
        if svg_file is not None:
            shares = [tracker.tokens_by_person(f.capability, f.window) for f in figures]
            try:
                svg_file.write_text(figures_svg(figures, shares), encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot write {svg_file}: {exc.strerror}") from exc
        records.custody.close()
    finally:
        core.close()
    if as_json:
        data = [
            {**asdict(f), "since": f.since.isoformat(), "until": f.until.isoformat()}
            for f in figures
        ]
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=list))
        return
    table = Table(title="Concentration of use (persons at the end of each chain)")
    for column in (
        "tier",
        "window",
        "calls",
        "tokens",
        "persons",
        "top person",
        "share",
        "HHI",
        "orgs",
        "top org",
        "share",
        "coalition of use",
    ):
        table.add_column(column)
    for f in figures:
        p, o = f.persons_tokens, f.organisations_tokens
        table.add_row(
            f.capability,
            f.window,
            f"{f.calls:,}",
            f"{f.tokens:,}",
            str(f.persons_calls.distinct),
            p.top or "no use",
            _pct(p.top_share),
            "-" if p.hhi is None else f"{p.hhi:,.0f}",
            str(f.organisations_calls.distinct),
            o.top or "-",
            _pct(o.top_share),
            ", ".join(p.coalition) or "-",
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
