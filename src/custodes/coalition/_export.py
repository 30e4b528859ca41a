"""Exports for graph tools: GraphML and BloodHound OpenGraph JSON.

One graph in both: players, organisations, roles, rules and goals as nodes; ``MemberOf``
(player → organisation), ``HasRole`` (player → role), ``CanRequest`` / ``CanApprove``
(role → rule), ``Reaches`` (rule → goal), ``Enables`` (goal → rule, a prerequisite) and
``Grants`` (rule → role) as edges. Rules carry their quorum (k, m, kinds) as properties, since
"needs several things at once" is what a plain path graph cannot express; players carry the
goals whose minimum coalition they are in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from custodes.coalition._analysis import Analysis

__all__ = ["to_graphml", "to_opengraph"]

_GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"  # GraphML 1.0 (graphml.graphdrawing.org)
# A rule whose requester or approver roles are empty admits anyone: one shared node stands
# for "anyone" so the edge is still drawn.
_ANYONE = "role:*"
_SOURCE_KIND = "Custodes"


@dataclass
class _Graph:
    """Nodes (id -> kind and properties) and edges (start, end, kind), in insertion order."""

    nodes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    def node(self, nid: str, kind: str, **props: Any) -> None:
        """Add a node; the first definition of an id wins."""
        self.nodes.setdefault(nid, (kind, props))

    def edge(self, start: str, end: str, kind: str) -> None:
        """Add an edge (duplicates are kept: each stands for one rule's use)."""
        self.edges.append((start, end, kind))


def _graph(analysis: Analysis) -> _Graph:
    """The one graph both exports serialise (see the module docstring), in a stable order
    (the game's, and sorted where sets have none) so that exports diff cleanly."""
    game = analysis.game
    g = _Graph()
    in_min: dict[int, list[str]] = {}
    for r in analysis.goals:
        for i in r.cheapest.coalition:
            in_min.setdefault(i, []).append(r.goal.id)
    for org, kind in sorted(game.organisation_kinds.items()):
        g.node(f"org:{org}", "Organisation", name=org, organisation_kind=kind)
    for i, p in enumerate(game.players):
        g.node(
            f"player:{p.id}",
            "Player",
            name=p.id,
            organisation=p.organisation,
            cost=float(p.cost),
            incorruptible=p.incorruptible,
            min_coalition_for=sorted(in_min.get(i, [])),
        )
        g.edge(f"player:{p.id}", f"org:{p.organisation}", "MemberOf")
        for role in sorted(p.roles):
            g.node(f"role:{role}", "Role", name=role)
            g.edge(f"player:{p.id}", f"role:{role}", "HasRole")
    for goal in game.goals:
        report = next((r for r in analysis.goals if r.goal.id == goal.id), None)
        g.node(
            f"goal:{goal.id}",
            "Goal",
            name=goal.id,
            label=goal.label,
            protected=goal.protected,
            min_people=report.min_people if report else None,
            min_organisations=report.min_organisations if report else None,
        )
    for rule in game.rules:
        g.node(
            f"rule:{rule.id}",
            "Rule",
            name=rule.id,
            rule_kind=rule.kind,
            label=rule.label,
            k=rule.k,
            m=rule.m,
            kinds=[f"{k}>={v}" for k, v in sorted(rule.kinds.items())],
            requester_counts=rule.requester_counts,
        )
        for roles, kind in (
            (rule.requester_roles, "CanRequest"),
            (rule.approver_roles, "CanApprove"),
        ):
            if kind == "CanApprove" and not rule.needs_approvers:
                continue
            for nid in [f"role:{r}" for r in sorted(roles)] or [_ANYONE]:
                g.node(nid, "Role", name=nid[5:] if nid != _ANYONE else "anyone")
                g.edge(nid, f"rule:{rule.id}", kind)
        g.edge(f"rule:{rule.id}", f"goal:{rule.goal}", "Reaches")
        for pre in sorted(rule.prerequisites):
            g.edge(f"goal:{pre}", f"rule:{rule.id}", "Enables")
        for role in sorted(rule.grants):
            g.node(f"role:{role}", "Role", name=role)
            g.edge(f"rule:{rule.id}", f"role:{role}", "Grants")
    return g


def _graphml_value(value: Any) -> tuple[str, str]:
    """A property as GraphML's ``attr.type`` and text (GraphML has no list type: lists are
    comma-joined strings)."""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        return "long", str(value)
    if isinstance(value, float):
        return "double", repr(value)
    if isinstance(value, list):
        return "string", ",".join(str(v) for v in value)
    return "string", str(value)


def to_graphml(analysis: Analysis) -> str:
    """The analysis as a GraphML 1.0 document (directed; typed ``data`` keys)."""
    g = _graph(analysis)
    ET.register_namespace("", _GRAPHML_NS)
    root = ET.Element(f"{{{_GRAPHML_NS}}}graphml")
    keys: dict[tuple[str, str], str] = {}

    def key(domain: str, name: str, value: Any) -> str:
        if (domain, name) not in keys:
            kid = f"{domain[0]}{len(keys)}"
            keys[(domain, name)] = kid
            ET.SubElement(
                root,
                f"{{{_GRAPHML_NS}}}key",
                {
                    "id": kid,
                    "for": domain,
                    "attr.name": name,
                    "attr.type": _graphml_value(value)[0],
                },
            )
        return keys[(domain, name)]

    # Keys must come before the graph element: collect them first.
    node_rows: list[tuple[str, list[tuple[str, str]]]] = []
    for nid, (kind, props) in g.nodes.items():
        row = [(key("node", "kind", kind), kind)]
        for name, value in sorted(props.items()):
            if value is None:
                continue
            row.append((key("node", name, value), _graphml_value(value)[1]))
        node_rows.append((nid, row))
    edge_key = key("edge", "kind", "")
    graph = ET.SubElement(
        root,
        f"{{{_GRAPHML_NS}}}graph",
        {"id": analysis.game.name or "custodes", "edgedefault": "directed"},
    )
    for nid, row in node_rows:
        node = ET.SubElement(graph, f"{{{_GRAPHML_NS}}}node", {"id": nid})
        for kid, text in row:
            ET.SubElement(node, f"{{{_GRAPHML_NS}}}data", {"key": kid}).text = text
    for n, (start, end, kind) in enumerate(g.edges):
        edge = ET.SubElement(
            graph, f"{{{_GRAPHML_NS}}}edge", {"id": f"e{n}", "source": start, "target": end}
        )
        ET.SubElement(edge, f"{{{_GRAPHML_NS}}}data", {"key": edge_key}).text = kind
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _opengraph_props(props: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    # OpenGraph properties are primitives or arrays of primitives; null is not allowed.
    for name, value in sorted(props.items()):
        if value is not None:
            yield name, value


def to_opengraph(analysis: Analysis) -> str:
    """The analysis as BloodHound OpenGraph JSON (``metadata.source_kind`` = ``Custodes``)."""
    g = _graph(analysis)
    nodes = [
        {
            "id": nid,
            "kinds": [f"Custodes{kind}", _SOURCE_KIND],
            "properties": {"displayname": props.get("name", nid), **dict(_opengraph_props(props))},
        }
        for nid, (kind, props) in g.nodes.items()
    ]
    edges = [
        {
            "start": {"match_by": "id", "value": s},
            "end": {"match_by": "id", "value": e},
            "kind": f"Custodes{kind}",
        }
        for s, e, kind in g.edges
    ]
    doc = {"metadata": {"source_kind": _SOURCE_KIND}, "graph": {"nodes": nodes, "edges": edges}}
    return json.dumps(doc, indent=2, sort_keys=False)
