"""``custodes usage``: who actually uses each tier (concentration figures), as a table, JSON
or an SVG chart, from the deployment's log; ``--reviews``: where each restricted tier's review
clock stands."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from custodes.cli._main import CliState, pass_state
from custodes.errors import ConfigError, InputError

if TYPE_CHECKING:
    from custodes.usage import ReviewState

__all__ = ["usage"]


def _pct(x: float | None) -> str:
    """A share as a percentage with one decimal, ``-`` when there is none."""
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
@click.option(
    "--reviews",
    is_flag=True,
    help="Show the review clocks of restricted tiers (due, overdue, admitted, last review).",
)
@pass_state
def usage(
    state: CliState,
    capability: str | None,
    window: str | None,
    as_json: bool,
    svg_file: Path | None,
    reviews: bool,
) -> None:
    """Concentration of use per tier and window: top person and organisation shares, HHI,
    distinct users, the coalition of use (docs/usage.md).
    \f
    Raises:
        ConfigError: there is no custodes database in the data folder.
        InputError: the SVG file cannot be written.
    """
    # Imported when the command runs: `custodes --help` should not load the solver.
    from custodes.coalition import CoalitionService
    from custodes.usage import UsageTracker, figures_svg
    from custodes.wiring import build_records, open_core

    settings = state.settings
    database = settings.data_dir / "custodes.db"
    # Refused rather than opened: opening would create an empty database, and its empty
    # figures would read as "nobody used anything".
    if not settings.database_url and not database.exists():
        raise ConfigError(
            f"no custodes database at {database}",
            hint="pass the data folder of your deployment: `custodes --data-dir DIR usage`",
        )
    core = open_core(settings)
    try:
        records = build_records(core)
        tracker = UsageTracker(
            engine=core.engine,
            log=core.log,
            constitution=records.authority,
            clock=core.clock,
            coalitions=CoalitionService(),
        )
        states: list[ReviewState] = tracker.review_states() if reviews else []
        figures = [] if reviews else tracker.figures(capability=capability, window=window)
        could = {} if reviews else tracker.could_open()
        if capability is not None and reviews:
            states = [s for s in states if s.clock.capability == capability]
        if svg_file is not None:
            shares = [tracker.tokens_by_person(f.capability, f.window) for f in figures]
            try:
                svg_file.write_text(figures_svg(figures, shares), encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot write {svg_file}: {exc.strerror}") from exc
        records.custody.close()
    finally:
        core.close()
    if reviews:
        _print_reviews(states, as_json)
        return
    if as_json:
        data = [
            {
                **asdict(f),
                "since": f.since.isoformat(),
                "until": f.until.isoformat(),
                "could_open": could.get(f.capability),
            }
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
        "could open",
    ):
        table.add_column(column)
    for f in figures:
        # Shares by tokens, counts by calls: a tier's cost is its tokens, its users are callers.
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
            "-" if (c := could.get(f.capability)) is None else ", ".join(c) or "nobody",
        )
    # 200 columns when redirected: a table of thirteen columns must not wrap in a log file.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _print_reviews(states: list[ReviewState], as_json: bool) -> None:
    """Each restricted tier's review clock: how often it must be renewed, when it is due,
    whether it is overdue, who is admitted and the last renewal (as JSON, or a table)."""
    from custodes.log import format_time

    if as_json:
        data = [
            {
                "capability": s.clock.capability,
                "every_s": s.clock.every.total_seconds(),
                "says": s.clock.says(),
                "started": format_time(s.started),
                "due": format_time(s.due),
                "overdue": s.overdue,
                "constitution": s.constitution,
                "admitted": list(s.members),
                "last_review": None if s.last is None else s.last.log_index,
            }
            for s in states
        ]
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    table = Table(title="Review clocks of restricted tiers")
    for column in ("tier", "every", "due", "state", "admitted", "last review"):
        table.add_column(column)
    for s in states:
        last = s.last
        table.add_row(
            s.clock.capability,
            f"{s.clock.every.total_seconds() / 86_400:g}d",
            format_time(s.due),
            "OVERDUE" if s.overdue else "running",
            ", ".join(s.members) or "nobody",
            "never"
            if last is None
            else f"{format_time(last.decided_at)} (log #{last.log_index}; "
            f"refused {', '.join(r.organisation for r in last.refused) or 'none'})",
        )
    if not states:
        table.caption = "no review clocks (usage.reviews in the constitution; docs/usage.md)"
    Console(width=None if sys.stdout.isatty() else 200).print(table)
