"""Exports read back by tools we did not write: networkx (GraphML), bhopengraph (OpenGraph),
librsvg (SVG)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import networkx as nx
import pytest
from bhopengraph.OpenGraph import OpenGraph

from custodes.coalition import Analysis, analyze, game_from_constitution
from custodes.coalition._export import to_graphml, to_opengraph
from custodes.coalition._svg import to_svg
from custodes.constitution import read_constitution

DEMO = Path(__file__).parents[3] / "examples" / "constitution.yaml"


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return analyze(game_from_constitution(read_constitution(DEMO)))


def test_graphml_reads_back_with_networkx(analysis: Analysis, tmp_path: Path) -> None:
    path = tmp_path / "demo.graphml"
    path.write_text(to_graphml(analysis))
    g = nx.read_graphml(path)
    assert g.is_directed()
    assert g.nodes["player:carol@lab"]["kind"] == "Player"
    assert "use:weights-export" in g.nodes["player:carol@lab"]["min_coalition_for"]
    assert g.nodes["rule:exploit-details-read"]["k"] == 3
    assert g.nodes["goal:use:weights-export"]["protected"] is True
    assert g.nodes["goal:use:weights-export"]["min_organisations"] == 1
    kinds = {d["kind"] for _, _, d in g.edges(data=True)}
    # A membership change enables the rules' variants after it (a prerequisite edge).
    assert kinds == {"MemberOf", "HasRole", "CanRequest", "CanApprove", "Reaches", "Enables"}
    assert g.has_edge("rule:lab-incident-weights", "goal:use:weights-export")
    # Roles are the authority's decisions: who may break glass under the rule.
    assert g.has_edge("role:break-glass:lab-incident-weights", "rule:lab-incident-weights")
    assert g.has_edge("player:carol@lab", "role:break-glass:lab-incident-weights")


def test_opengraph_validates_with_bhopengraph(analysis: Analysis) -> None:
    text = to_opengraph(analysis)
    graph = OpenGraph()
    assert graph.import_from_json(text)
    valid, errors = graph.validate_graph()
    assert valid, errors
    doc = json.loads(text)
    assert doc["metadata"]["source_kind"] == "Custodes"
    assert graph.get_node_count() == len(doc["graph"]["nodes"])
    assert graph.get_edge_count() == len(doc["graph"]["edges"])
    carol = graph.get_node_by_id("player:carol@lab")
    assert carol is not None and "CustodesPlayer" in carol.kinds


def test_svg_highlights_the_weakest_protected_goal(analysis: Analysis) -> None:
    svg = to_svg(analysis)
    root = ET.fromstring(svg.split("\n", 1)[1])
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "minimum coalition for use weights-export: 1 person from lab" in svg
    hot = [t for t in root.iter("{http://www.w3.org/2000/svg}rect") if "hot" in t.get("class", "")]
    assert len(hot) == 3  # carol, the break-glass rule, the goal
    chosen = to_svg(analysis, goal="use:exploit-details")
    # Two amendment signers may append a standing rule for it (nothing entrenches it).
    assert "read escrowed exploit details (exploit-details): 2 people" in chosen
    with pytest.raises(KeyError):
        to_svg(analysis, goal="no-such-goal")


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="needs librsvg2-bin")
def test_svg_renders_with_librsvg(analysis: Analysis, tmp_path: Path) -> None:
    out = tmp_path / "demo.png"
    subprocess.run(
        ["rsvg-convert", "-f", "png", "-o", str(out)], input=to_svg(analysis).encode(), check=True
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_is_complete(analysis: Analysis) -> None:
    doc = json.loads(json.dumps(analysis.to_json()))
    weights = next(g for g in doc["goals"] if g["goal"] == "use:weights-export")
    assert weights["min_people"] == 1 and weights["min_organisations"] == 1
    assert weights["below_floor"] is True
    assert weights["cheapest"]["status"] == "OPTIMAL"
    assert weights["cheapest"]["rules"] == [
        {"rule": "lab-incident-weights", "requester": "carol@lab", "approvers": []}
    ]
    assert weights["fewest_people"]["status"] == "OPTIMAL" and weights["proven"] is True
    assert weights["power"]["method"] == "none"  # opt-in: analyze(power=True)
    assert weights["minimal_winning"]["computed"] is False
    assert weights["single_points_of_failure"] == ["carol@lab"]
    assert doc["floor"] == 2
    full = analyze(analysis.game, power=True, minimal_winning=True).to_json()
    weights = next(g for g in full["goals"] if g["goal"] == "use:weights-export")
    assert weights["power"]["method"] == "exact" and weights["power"]["shapley_shubik_error"] == 0
    assert ["carol@lab"] in weights["minimal_winning"]["coalitions"]
