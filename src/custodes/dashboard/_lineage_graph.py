"""A lineage laid out as a graph for the provenance page: artifacts and the runs that made them
as boxes in columns (roots on the left, the weights asked about on the right), an arrow from
each input to its run and from each run to what it produced.

Pure layout over :class:`custodes.provenance.LineageNode`: coordinates and labels only; the
template draws them as inline SVG (autoescaped, no script), so nothing here writes markup.
Columns are the longest path from a root (Kahn's algorithm over the lineage's DAG: a shared
input is one box however many runs use it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from custodes.provenance import Artifact, LineageNode, Run

__all__ = ["GraphEdge", "GraphNode", "LineageGraph", "lineage_graph"]

MAX_DRAWN = 300  # boxes drawn; the table under the picture lists every artifact
_COL = 250  # px from one column to the next
_ROW = 62  # px between rows
_BOX_W, _BOX_H = 214, 46
_RUN_W, _RUN_H = 190, 36
_PAD = 12
_KINDS = ("dataset", "code", "config", "weights")


@dataclass(frozen=True)
class GraphNode:
    """A box: an artifact (``kind`` one of the artifact kinds) or a run (``kind`` "run")."""

    key: str  # the artifact's digest, or "run:<id>"
    kind: str
    label: str
    detail: str
    x: int
    y: int
    width: int
    height: int
    href: str | None  # the artifact's own lineage page; None for a run
    colour: int  # index of the page's category colour classes (c0..c7)
    focus: bool = False  # the artifact the page is about


@dataclass(frozen=True)
class GraphEdge:
    """An arrow; ``label`` is the input's role (``dataset``, ``base-weights``...) or ""."""

    path: str
    label: str


@dataclass(frozen=True)
class LineageGraph:
    """The laid-out picture: its size, boxes and arrows; ``hidden`` boxes did not fit."""

    width: int
    height: int
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    hidden: int


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def lineage_graph(
    root: LineageNode, *, href: str = "/dashboard/provenance?digest="
) -> LineageGraph:
    """Lay out the lineage under ``root`` (see the module docstring)."""
    artifacts: dict[str, Artifact] = {}
    runs: dict[str, Run] = {}
    order: list[str] = []  # first appearance, depth first: the row order within a column
    edges: dict[tuple[str, str], str] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        digest = node.artifact.digest
        if digest not in artifacts:
            artifacts[digest] = node.artifact
            order.append(digest)
        if node.repeat or node.run is None:
            continue
        run_key = f"run:{node.run.id}"
        if run_key not in runs:
            runs[run_key] = node.run
            order.append(run_key)
        edges[(run_key, digest)] = ""
        for child in node.inputs:
            edges[(child.artifact.digest, run_key)] = child.role
        stack.extend(reversed(node.inputs))
    keys = set(artifacts) | set(runs)
    incoming: dict[str, int] = {k: 0 for k in keys}
    outgoing: dict[str, list[str]] = {k: [] for k in keys}
    for source, target in edges:
        incoming[target] += 1
        outgoing[source].append(target)
    column = {k: 0 for k in keys}
    ready = deque(k for k in order if incoming[k] == 0)
    while ready:
        k = ready.popleft()
        for target in outgoing[k]:
            column[target] = max(column[target], column[k] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    drawn = order[:MAX_DRAWN]
    rows: dict[int, int] = {}
    placed: dict[str, GraphNode] = {}
    position = {k: i for i, k in enumerate(order)}
    for k in sorted(drawn, key=lambda k: (column[k], position[k])):
        col = column[k]
        row = rows.get(col, 0)
        rows[col] = row + 1
        x = _PAD + col * _COL
        if k in runs:
            run = runs[k]
            placed[k] = GraphNode(
                key=k,
                kind="run",
                label=_short(f"run {run.id}", 18),
                detail=_short(f"by {run.requester}", 24),
                x=x,
                y=_PAD + row * _ROW + (_BOX_H - _RUN_H) // 2,
                width=_RUN_W,
                height=_RUN_H,
                href=None,
                colour=7,
            )
        else:
            a = artifacts[k]
            placed[k] = GraphNode(
                key=k,
                kind=a.kind,
                label=_short(f"{a.kind} · {a.name}", 26),
                detail=_short(a.digest, 29),
                x=x,
                y=_PAD + row * _ROW,
                width=_BOX_W,
                height=_BOX_H,
                href=href + a.digest,
                colour=_KINDS.index(a.kind) if a.kind in _KINDS else 4,
                focus=k == root.artifact.digest,
            )
    arrows = []
    for (source, target), role in edges.items():
        s, t = placed.get(source), placed.get(target)
        if s is None or t is None:
            continue
        x1, y1 = s.x + s.width, s.y + s.height // 2
        x2, y2 = t.x, t.y + t.height // 2
        bend = max(20, (x2 - x1) // 2)
        arrows.append(
            GraphEdge(f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 6},{y2}", role)
        )
    width = max((n.x + n.width for n in placed.values()), default=0) + _PAD
    height = max((n.y + n.height for n in placed.values()), default=0) + _PAD
    return LineageGraph(
        width, height, tuple(placed.values()), tuple(arrows), len(order) - len(drawn)
    )
