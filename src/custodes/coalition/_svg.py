"""A picture of who can reach what through which rules, with one minimum coalition highlighted.

Three columns: players grouped by organisation, rules, goals. A solid line from a player to a
rule means the player may request under it, a dashed one that they may approve; rules point at
the goal they reach; dotted blue lines run from a goal to the rules it enables. The highlighted
goal's minimum coalition, the rules it uses and their edges are drawn in red. Plain SVG 1.1,
written here so nothing needs installing.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from custodes.coalition._analysis import Analysis, GoalReport
from custodes.coalition._game import Rule

__all__ = ["to_svg"]

_ROW = 24
_CHAR = 6.6  # average glyph width of 12px sans-serif, for column widths
_RED = "#c62828"
_GREY = "#9e9e9e"
# Past this many player-to-rule edges a picture is a hairball nobody can read: the
# highlighted coalition's edges are always drawn, the others are left out past the cap.
_MAX_EDGES = 600


def _quorum_text(rule: Rule) -> str:
    """A rule's quorum in a few words: ``2 approvals · 2 orgs · overseer≥1``."""
    if not rule.needs_approvers:
        return "no approval"
    parts = [f"{rule.k} approval{'s' if rule.k != 1 else ''}"]
    if rule.m:
        parts.append(f"{rule.m} orgs")
    parts += [f"{kind}≥{n}" for kind, n in sorted(rule.kinds.items())]
    return " · ".join(parts)


def _pick(analysis: Analysis, goal: str | None) -> GoalReport | None:
    """The goal to highlight: the one named; else the weakest reachable one (below the floor
    first, then protected, then any; fewest organisations, then people), or None.

    Raises:
        KeyError: ``goal`` was not analysed.
    """
    if goal is not None:
        return analysis.report(goal)
    reachable = [r for r in analysis.goals if r.reachable]
    if not reachable:
        return None
    below = [r for r in reachable if r.below_floor]
    protected = [r for r in reachable if r.goal.protected]
    pool = below or protected or reachable
    return min(pool, key=lambda r: (r.min_organisations or 0, r.min_people or 0))


def to_svg(analysis: Analysis, *, goal: str | None = None) -> str:
    """Draw the game of ``analysis``; highlight ``goal``'s minimum coalition (default: the
    weakest protected goal).

    Raises:
        KeyError: ``goal`` was not analysed.
    """
    game = analysis.game
    focus = _pick(analysis, goal)
    coalition = set(focus.cheapest.coalition) if focus else set()
    used_rules = {f.rule for f in focus.cheapest.derivation} if focus else set()
    used_edges: set[tuple[int, str, str]] = set()
    if focus:
        for f in focus.cheapest.derivation:
            used_edges.add((f.requester, f.rule, "req"))
            for a in f.approvers:
                used_edges.add((a, f.rule, "appr"))

    roles_used = set().union(*(r.requester_roles | r.approver_roles for r in game.rules))
    shown = [
        i
        for i, p in enumerate(game.players)
        if not p.incorruptible and (p.roles & roles_used or i in coalition)
    ]
    by_org: dict[str, list[int]] = {}
    for i in shown:
        by_org.setdefault(game.players[i].organisation, []).append(i)

    rows: list[tuple[str, str | int]] = []  # ("org", name) or ("player", index)
    for org in sorted(by_org):
        rows.append(("org", org))
        rows.extend(("player", i) for i in by_org[org])
    goals = list(game.goals)
    order = {g.id: n for n, g in enumerate(goals)}
    rules = sorted(game.rules, key=lambda r: (order[r.goal], r.id))

    def width(texts: list[str], floor: int) -> int:
        return max([floor, *(int(len(t) * _CHAR) + 24 for t in texts)])

    # Synthetic eligibility roles (request:<rule>) are drawn as edges, not listed.
    player_text = {}
    for i in shown:
        listed = sorted(r for r in game.players[i].roles if not r.startswith("request:"))
        player_text[i] = f"{game.players[i].id}  [{', '.join(listed)}]"
    rule_text = {r.id: f"{r.id}  ({_quorum_text(r)})" for r in rules}
    reports = {r.goal.id: r for r in analysis.goals}

    def goal_text(gid: str) -> str:
        r = reports.get(gid)
        g = game.goal_index[gid]
        name = g.label or g.id
        if r is None:
            return name
        if not r.reachable:
            return f"{name}: unreachable"
        return f"{name}: {_people(r.min_people)} / {r.min_organisations} org(s)"

    w1 = width([*player_text.values(), *by_org], 160)
    w2 = width(list(rule_text.values()), 160)
    w3 = width([goal_text(g.id) for g in goals], 160)
    gap = 110
    x1, x2, x3 = 20, 20 + w1 + gap, 20 + w1 + gap + w2 + gap
    top = 70
    height = top + _ROW * max(len(rows), len(rules), len(goals), 1) + 70
    total_width = x3 + w3 + 20

    py: dict[int, float] = {}
    out: list[str] = []
    for n, (kind, value) in enumerate(rows):
        y = top + n * _ROW
        if kind == "org":
            org = str(value)
            out.append(
                f'<text x="{x1}" y="{y + 16}" class="org">{escape(org)} '
                f"({escape(game.organisation_kinds[org])})</text>"
            )
        else:
            i = int(value)
            py[i] = y + _ROW / 2
            hot = i in coalition
            out.append(
                f'<rect x="{x1 + 10}" y="{y + 3}" width="{w1 - 10}" height="{_ROW - 6}" '
                f'rx="4" class="{"player hot" if hot else "player"}"/>'
            )
            out.append(f'<text x="{x1 + 16}" y="{y + 16}">{escape(player_text[i])}</text>')
    ry = {r.id: top + n * _ROW + _ROW / 2 for n, r in enumerate(rules)}
    gy = {g.id: top + n * _ROW + _ROW / 2 for n, g in enumerate(goals)}

    edges: list[str] = []
    for rule in rules:
        for i in shown:
            p = game.players[i]
            for roles, tag in ((rule.requester_roles, "req"), (rule.approver_roles, "appr")):
                if tag == "appr" and not rule.needs_approvers:
                    continue
                if roles and roles.isdisjoint(p.roles):
                    continue
                if not roles and (i, rule.id, tag) not in used_edges:
                    continue  # "anyone" would connect everyone: draw only the used ones
                hot = (i, rule.id, tag) in used_edges
                if not hot and len(edges) > _MAX_EDGES:
                    continue
                edges.append(_curve(x1 + w1, py[i], x2, ry[rule.id], hot, dashed=tag == "appr"))
        edges.append(
            _curve(x2 + w2, ry[rule.id], x3, gy[rule.goal], rule.id in used_rules, dashed=False)
        )
        enablers = set(rule.prerequisites)
        if rule.id in used_rules and focus is not None:
            # Roles granted earlier in the derivation enable this rule too: draw those links.
            wanted = rule.requester_roles | rule.approver_roles
            for f in focus.cheapest.derivation:
                if f.rule == rule.id:
                    break
                if not game.rule_index[f.rule].grants.isdisjoint(wanted):
                    enablers.add(game.rule_index[f.rule].goal)
        for pre in sorted(enablers):
            cls = "enables hot" if rule.id in used_rules else "enables"
            edges.append(
                f'<path d="M{x3} {gy[pre]} C{x3 - gap} {gy[pre]} {x2 + w2 + gap} '
                f'{ry[rule.id]} {x2 + w2} {ry[rule.id]}" class="{cls}"/>'
            )
    for rule in rules:
        hot = rule.id in used_rules
        yr = ry[rule.id] - _ROW / 2
        cls = {
            "break-glass": "rule glass",
            "amendment": "rule amend",
            "membership": "rule amend",
        }.get(rule.kind, "rule")
        out.append(
            f'<rect x="{x2}" y="{yr + 3}" width="{w2}" height="{_ROW - 6}" rx="4" '
            f'class="{cls}{" hot" if hot else ""}"/>'
        )
        text = rule_text[rule.id]
        if rule.grants:
            granted = ", ".join(sorted(rule.grants)) if len(rule.grants) < 4 else "every role"
            text += f"  → grants {granted}"
        out.append(f'<text x="{x2 + 6}" y="{yr + 16}">{escape(text)}</text>')
    for g in goals:
        yg = gy[g.id] - _ROW / 2
        hot = focus is not None and g.id == focus.goal.id
        cls = "goal protected" if g.protected else "goal"
        out.append(
            f'<rect x="{x3}" y="{yg + 3}" width="{w3}" height="{_ROW - 6}" rx="9" '
            f'class="{cls}{" hot" if hot else ""}"/>'
        )
        out.append(f'<text x="{x3 + 8}" y="{yg + 16}">{escape(goal_text(g.id))}</text>')

    title = "Who can reach what"
    if focus is not None:
        orgs = ", ".join(analysis.organisations(focus.cheapest.coalition))
        title += (
            f" — minimum coalition for {focus.goal.label or focus.goal.id}: "
            f"{_people(focus.min_people)} from {orgs} (red)"
        )
    legend_y = height - 30
    legend = (
        f'<text x="{x1}" y="{legend_y}" class="legend">solid: may request · dashed: may '
        "approve · dotted: goal enables rule (prerequisite or granted role) · orange rule: "
        "break-glass · purple rule: amendment · bold goal: protected</text>"
    )
    style = (
        "text{font:12px sans-serif;fill:#212121}"
        ".title{font:bold 15px sans-serif}.org{font:bold 12px sans-serif;fill:#37474f}"
        ".legend{font:11px sans-serif;fill:#616161}"
        f".player{{fill:#eceff1;stroke:{_GREY}}}.rule{{fill:#e3f2fd;stroke:#64b5f6}}"
        ".glass{fill:#fff3e0;stroke:#fb8c00}.amend{fill:#f3e5f5;stroke:#8e24aa}"
        ".goal{fill:#e8f5e9;stroke:#66bb6a}.protected{stroke-width:2.5}"
        f".hot{{stroke:{_RED};stroke-width:2.5}}.player.hot{{fill:#ffcdd2}}"
        f".edge{{fill:none;stroke:{_GREY};stroke-width:1;opacity:.55}}"
        f".edge.hot{{stroke:{_RED};stroke-width:2.5;opacity:1}}.dashed{{stroke-dasharray:5 3}}"
        ".enables{fill:none;stroke:#1e88e5;stroke-dasharray:2 3;opacity:.8}"
        f".enables.hot{{stroke:{_RED};stroke-width:2}}"
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height}" '
            f'viewBox="0 0 {total_width} {height}" font-family="sans-serif">',
            f"<style>{style}</style>",
            f'<rect width="{total_width}" height="{height}" fill="white"/>',
            f'<text x="{x1}" y="30" class="title">{escape(title)}</text>',
            f'<text x="{x1}" y="52" class="legend">{escape(game.name)} · players · rules · goals'
            f"</text>",
            *edges,
            *out,
            legend,
            "</svg>",
            "",
        ]
    )


def _curve(xa: float, ya: float, xb: float, yb: float, hot: bool, *, dashed: bool) -> str:
    """An edge as a horizontal S-shaped cubic Bézier path (``hot``: highlighted in red)."""
    mid = (xa + xb) / 2
    cls = "edge" + (" hot" if hot else "") + (" dashed" if dashed else "")
    return f'<path d="M{xa} {ya} C{mid} {ya} {mid} {yb} {xb} {yb}" class={quoteattr(cls)}/>'


def _people(n: int | None) -> str:
    """``1 person`` / ``3 people``."""
    return f"{n} person" if n == 1 else f"{n} people"
