"""Rich tables for people: a summary of every goal, then one detail table per goal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from custodes.coalition._analysis import Analysis, GoalReport
from custodes.coalition._delta import GoalDelta

__all__ = ["render_analysis", "render_delta"]

_TOP_POWER = 8


def _status(r: GoalReport) -> str:
    """``OPTIMAL`` when all three optima are proven; else which is not, with its gap."""
    open_ = [
        (name, s)
        for name, s in (
            ("people", r.people),
            ("cost", r.cheapest),
            ("orgs", r.fewest_organisations),
        )
        if s.status == "FEASIBLE"
    ]
    if not open_:
        return r.cheapest.status
    return "; ".join(
        f"{name} FEASIBLE" + (f" (gap {s.gap:.1%})" if s.gap is not None else "")
        for name, s in open_
    )


def _summary(analysis: Analysis) -> Table:
    """One row per goal: the three minima, single points of failure, veto players, status."""
    t = Table(title=f"Coalition analysis: {analysis.game.name or 'game'}", title_justify="left")
    for col in (
        "goal",
        "min people",
        "min cost",
        "min orgs",
        "single points of failure",
        "veto players",
        "status",
    ):
        t.add_column(col, overflow="fold")
    floor = analysis.game.floor
    for r in analysis.goals:
        name = Text(r.goal.label or r.goal.id, style="bold" if r.goal.protected else "")
        if not r.reachable:
            t.add_row(name, "-", "-", "-", "", "", "unreachable")
            continue
        orgs = Text(str(r.min_organisations))
        if r.below_floor:
            orgs = Text(f"{r.min_organisations} < floor {floor}", style="bold red")
        spof = Text(
            ", ".join(r.single_points_of_failure), style="red" if r.single_points_of_failure else ""
        )
        t.add_row(
            name,
            str(r.min_people),
            f"{r.cheapest.value:g}" if r.cheapest.value is not None else "-",
            orgs,
            spof,
            ", ".join(r.veto_players),
            _status(r),
        )
    return t


def _detail(analysis: Analysis, r: GoalReport) -> Table:
    """One reachable goal in full: each optimum's coalition and how it gets there."""
    t = Table(title=f"{r.goal.label or r.goal.id}", title_justify="left", show_header=False)
    t.add_column("what", style="dim")
    t.add_column("value", overflow="fold")
    s = r.cheapest
    people = r.people
    if people.coalition != s.coalition:
        t.add_row(
            "fewest people",
            f"{r.min_people}: {', '.join(analysis.ids(people.coalition))}",
        )
    t.add_row(
        "cheapest coalition" if people.coalition != s.coalition else "minimum coalition",
        ", ".join(analysis.ids(s.coalition)),
    )
    t.add_row("organisations", ", ".join(analysis.organisations(s.coalition)))
    for f in s.derivation:
        appr = ", ".join(analysis.ids(f.approvers))
        t.add_row(
            f"rule {f.rule}",
            f"requested by {analysis.game.players[f.requester].id}; "
            + (f"approved by {appr}" if appr else "no approval needed"),
        )
    fo = r.fewest_organisations
    t.add_row(
        "fewest organisations",
        f"{r.min_organisations}: {', '.join(analysis.organisations(fo.coalition))} "
        f"({', '.join(analysis.ids(fo.coalition))})",
    )
    if r.minimal_winning_computed:
        mwc = "; ".join("{" + ", ".join(c) + "}" for c in r.minimal_winning[:10])
        more = len(r.minimal_winning) - 10
        if more > 0:
            mwc += f"; … {more} more"
        if r.minimal_winning_truncated:
            mwc += " (list cut)"
        t.add_row(f"minimal winning (≤ {r.max_size})", mwc or "none this small")
    p = r.power
    if p.method != "none":
        top = sorted(
            ((i, v) for i, v in p.shapley.items() if v > 0 or p.banzhaf.get(i)),
            key=lambda kv: -kv[1],
        )[:_TOP_POWER]
        method = (
            "exact"
            if p.method == "exact"
            else f"sampled, {p.samples} draws, 95% CI ± {p.shapley_error:.3f} SS"
        )
        t.add_row(
            f"power ({method}, {r.key_players} key players)",
            ", ".join(
                f"{analysis.game.players[i].id} SS {v:.3f} / Bz {p.banzhaf.get(i, 0.0):.3f}"
                for i, v in top
            ),
        )
    t.add_row(
        "solver",
        f"{s.status}, {s.classes} classes, {s.rules} rules, "
        f"{(s.seconds + people.seconds + fo.seconds) * 1000:.1f} ms (three optima)",
    )
    return t


def _exactness(analysis: Analysis) -> Text:
    """What is proven and what is not (cut lists, sampled indices): a reader must not take an
    unproven minimum for a guarantee."""
    proven = sum(r.proven for r in analysis.goals)
    extras = []
    if any(r.minimal_winning_computed for r in analysis.goals):
        extras.append("minimal winning coalitions: exact up to the size shown (or cut)")
    methods = {r.power.method for r in analysis.goals} - {"none"}
    if methods:
        extras.append(
            "power indices: "
            + ("exact" if methods == {"exact"} else "exact where shown, else sampled (95% CI)")
        )
    if not extras:
        extras.append(
            "power indices and minimal winning coalitions: not computed (--power, "
            "--minimal-winning)"
        )
    return Text(
        f"Exact: min people, min cost and min orgs are proven optimal for {proven} of "
        f"{len(analysis.goals)} goals (the status says which are not, with the gap); single "
        "points of failure and veto players are exact; " + "; ".join(extras) + ". "
        f"{analysis.seconds:.2f} s.",
        style="dim",
    )


def render_analysis(analysis: Analysis) -> RenderableType:
    """Everything a person should read, as one rich renderable."""
    parts: list[RenderableType] = [_summary(analysis), _exactness(analysis)]
    parts += [_detail(analysis, r) for r in analysis.goals if r.reachable]
    findings = analysis.findings()
    if findings:
        parts.append(Text("Findings", style="bold"))
        parts += [Text(f"  • {f}", style="red") for f in findings]
    else:
        parts.append(Text("No findings.", style="green"))
    return Group(*parts)


def render_delta(deltas: Sequence[GoalDelta]) -> RenderableType:
    """The amendment delta as a table; weaker goals in red."""
    t = Table(title="Amendment delta (old → new)", title_justify="left")
    for col in ("goal", "people", "cost", "orgs", "single points of failure", "veto players"):
        t.add_column(col, overflow="fold")

    def arrow(a: float | None, b: float | None) -> str:
        """``3 → 2``, or the one value when unchanged (``-``: unreachable)."""
        fa = "-" if a is None else f"{a:g}"
        fb = "-" if b is None else f"{b:g}"
        return fa if fa == fb else f"{fa} → {fb}"

    for d in deltas:
        style = "bold red" if d.below_floor else "red" if d.weaker else ""
        spof = " ".join([*(f"+{x}" for x in d.spof_added), *(f"-{x}" for x in d.spof_removed)])
        veto = " ".join([*(f"+{x}" for x in d.veto_added), *(f"-{x}" for x in d.veto_removed)])
        t.add_row(
            Text(d.label or d.goal, style=style),
            arrow(d.old_people, d.new_people),
            arrow(d.old_cost, d.new_cost),
            arrow(d.old_organisations, d.new_organisations),
            spof,
            veto,
        )
    return t
