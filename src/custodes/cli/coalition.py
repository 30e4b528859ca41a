"""``custodes coalition``: who could seize what under a constitution, and what an amendment
changes."""

from __future__ import annotations

import json
import shutil
import subprocess  # noqa: S404 - rsvg-convert, a fixed local program, for --png
import sys
from pathlib import Path

import click
from rich.console import Console

from custodes.cli._main import CliState, pass_state
from custodes.coalition import (
    Analysis,
    CoalitionFloorGuard,
    analyze,
    diff_analyses,
    game_from_constitution,
    render_analysis,
    render_delta,
    to_graphml,
    to_opengraph,
    to_svg,
)
from custodes.constitution import read_constitution
from custodes.errors import ConfigError, InputError, PolicyDenied

__all__ = ["coalition"]

_path = click.Path(exists=True, dir_okay=False, path_type=Path)
_out = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.group()
def coalition() -> None:
    """Coalition analysis: the smallest groups that could reach each capability."""


def _analyze(
    path: Path, max_size: int, time_limit: float, *, power: bool = False, winning: bool = False
) -> Analysis:
    """Read the constitution at ``path`` and analyse it (see :func:`custodes.coalition.analyze`).

    Raises:
        InputError: ``max_size`` is negative.
        ConstitutionError: the constitution is refused.
    """
    if max_size < 0:
        raise InputError(
            "--max-size must not be negative",
            where="--max-size",
            expected="an integer >= 0",
            actual=str(max_size),
        )
    return analyze(
        game_from_constitution(read_constitution(path)),
        max_size=max_size,
        time_limit=time_limit,
        power=power,
        minimal_winning=winning,
    )


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8).

    Raises:
        InputError: the file cannot be written.
    """
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc.strerror}", where=str(path), expected="a writable file path"
        ) from exc


def _png(svg: str, path: Path) -> None:
    """Render ``svg`` to a PNG file with librsvg's ``rsvg-convert`` (custodes draws SVG only;
    rasterising is a well-kept library's job).

    Raises:
        ConfigError: ``rsvg-convert`` is not installed.
        InputError: it could not write ``path``.
    """
    tool = shutil.which("rsvg-convert")
    if tool is None:
        raise ConfigError(
            "--png needs rsvg-convert, which is not installed",
            hint="apt-get install librsvg2-bin, or use --svg",
        )
    done = subprocess.run(  # noqa: S603 (a fixed tool path and our own arguments)
        [tool, "-f", "png", "-o", str(path)],
        input=svg.encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise InputError(
            f"rsvg-convert could not write {path}",
            where=str(path),
            actual=done.stderr.decode(errors="replace").strip(),
        )


def _below(orgs: int | None, floor: int | None) -> bool:
    """Whether ``orgs`` organisations are fewer than the floor (False when either is unknown)."""
    return orgs is not None and floor is not None and orgs < floor


def _console() -> Console:
    # Piped output gets a width that fits the tables instead of rich's default 80 columns.
    return Console(width=None if sys.stdout.isatty() else 160)


@coalition.command("analyze")
@click.argument("constitution", type=_path)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--svg", "svg_file", type=_out, help="Write a picture (SVG).")
@click.option("--png", "png_file", type=_out, help="Write a picture (PNG, needs rsvg-convert).")
@click.option("--graphml", "graphml_file", type=_out, help="Write a GraphML export.")
@click.option(
    "--opengraph", "opengraph_file", type=_out, help="Write a BloodHound OpenGraph JSON export."
)
@click.option(
    "--max-size",
    type=int,
    default=3,
    show_default=True,
    help="With --minimal-winning: list minimal winning coalitions up to this many people.",
)
@click.option(
    "--minimal-winning",
    "winning",
    is_flag=True,
    help="Also list minimal winning coalitions (exact up to --max-size, at most 200 a goal).",
)
@click.option(
    "--power",
    is_flag=True,
    help="Also compute Banzhaf and Shapley-Shubik indices (exact for up to 20 key players, "
    "else sampled with a 95% confidence interval).",
)
@click.option(
    "--goal",
    default=None,
    help="Goal to highlight in the picture (default: the weakest protected goal).",
)
@click.option(
    "--time-limit",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds the solver may spend per goal before reporting its gap.",
)
@pass_state
def analyze_command(
    state: CliState,
    constitution: Path,
    as_json: bool,
    svg_file: Path | None,
    png_file: Path | None,
    graphml_file: Path | None,
    opengraph_file: Path | None,
    max_size: int,
    winning: bool,
    power: bool,
    goal: str | None,
    time_limit: float,
) -> None:
    """Analyse CONSTITUTION: per goal, the fewest people, the least cost and the fewest
    organisations (each proven optimal), single points of failure and veto players; with
    --minimal-winning and --power, minimal winning coalitions and power indices too."""
    del state
    analysis = _analyze(constitution, max_size, time_limit, power=power, winning=winning)
    if goal is not None and goal not in analysis.game.goal_index:
        raise InputError(
            f"no goal {goal!r}",
            where="--goal",
            expected="one of " + ", ".join(g.id for g in analysis.game.goals),
        )
    if svg_file is not None or png_file is not None:
        svg = to_svg(analysis, goal=goal)
        if svg_file is not None:
            _write(svg_file, svg)
        if png_file is not None:
            _png(svg, png_file)
    if graphml_file is not None:
        _write(graphml_file, to_graphml(analysis))
    if opengraph_file is not None:
        _write(opengraph_file, to_opengraph(analysis))
    if as_json:
        click.echo(json.dumps(analysis.to_json(), indent=2))
    else:
        _console().print(render_analysis(analysis))


@coalition.command("diff")
@click.argument("old", type=_path)
@click.argument("new", type=_path)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--max-size",
    type=int,
    default=3,
    show_default=True,
    help="Minimal winning coalitions up to this many people.",
)
@click.option("--time-limit", type=float, default=10.0, show_default=True)
@pass_state
def diff_command(
    state: CliState, old: Path, new: Path, as_json: bool, max_size: int, time_limit: float
) -> None:
    """What amending OLD into NEW does to every goal. Exits 1 when the coalition floor guard
    would refuse the amendment (a protected goal drops below the floor)."""
    del state
    before, after = read_constitution(old), read_constitution(new)
    a = analyze(game_from_constitution(before), max_size=max_size, time_limit=time_limit)
    b = analyze(game_from_constitution(after), max_size=max_size, time_limit=time_limit)
    deltas = diff_analyses(a, b)
    denials = CoalitionFloorGuard(time_limit=time_limit).check(before, after, ())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "goals": [d.to_json() for d in deltas],
                    "refused": bool(denials),
                    "denials": [{"rule": d.rule, "missing": d.missing} for d in denials],
                },
                indent=2,
            )
        )
    else:
        console = _console()
        console.print(render_delta(deltas))
        still = [d for d in deltas if d.protected and _below(d.new_organisations, a.game.floor)]
        if denials:
            pass
        elif still:
            # Not refused (the amendment lowers nothing), but the floor is not held either.
            console.print(
                "[yellow]The amendment does not lower any goal below the floor, but "
                + ", ".join(
                    f"{d.label or d.goal} ({d.new_organisations} organisation(s))" for d in still
                )
                + f" stay{'s' if len(still) == 1 else ''} below the floor of "
                f"{a.game.floor}.[/]"
            )
        else:
            console.print("[green]The coalition floor holds.[/]")
    if denials:
        raise PolicyDenied("the coalition floor guard would refuse this amendment", reasons=denials)
