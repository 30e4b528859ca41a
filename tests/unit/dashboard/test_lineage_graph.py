"""The provenance page's lineage layout: a shared input is one box with an arrow to each run
that used it, columns follow the longest path from a root, a long lineage is cut at
MAX_DRAWN boxes and says how many it left out."""

from __future__ import annotations

from datetime import UTC, datetime

from custodes.dashboard._lineage_graph import MAX_DRAWN, lineage_graph
from custodes.provenance import Artifact, LineageNode, Run, RunInput, RunOutput, RunStatement

T = datetime(2026, 1, 1, tzinfo=UTC)


def _artifact(name: str, kind: str = "weights", run: str | None = None) -> Artifact:
    return Artifact(
        digest="sha256:" + name.encode().hex().ljust(64, "0")[:64],
        kind=kind,  # type: ignore[arg-type]
        name=name,
        files=1,
        manifest=None,
        manifest_sha256=None,
        git_commit=None,
        run_id=run,
        registered_by="dave@lab",
        registered_at=T,
        log_index=0,
    )


def _run(run_id: str, inputs: list[tuple[str, Artifact]], out: Artifact) -> Run:
    statement = RunStatement(
        outputs=(RunOutput(out.name, out.digest),),
        inputs=tuple(RunInput(role, a.digest, a.name) for role, a in inputs),  # type: ignore[arg-type]
        plan_digest="0" * 64,
        builder="pipeline@lab",
        invocation_id=run_id,
        started_on=T,
        finished_on=T,
    )
    return Run(run_id, b"", "0" * 64, statement, "grant-" + run_id, "dave@lab", T, 1)


def _generations(n: int) -> tuple[LineageNode, Artifact]:
    """``n`` runs, each on the previous weights and one shared dataset."""
    dataset = _artifact("corpus", "dataset")
    node = LineageNode(_artifact("base0"))
    for g in range(1, n + 1):
        out = _artifact(f"w{g}", run=f"r{g}")
        run = _run(f"r{g}", [("base-weights", node.artifact), ("dataset", dataset)], out)
        data = LineageNode(dataset, role="dataset", repeat=g > 1)
        node = LineageNode(
            out,
            run,
            inputs=(LineageNode(node.artifact, node.run, "base-weights", node.inputs), data),
        )
    return node, dataset


def test_a_shared_input_is_one_box_and_columns_follow_the_longest_path() -> None:
    root, dataset = _generations(2)
    graph = lineage_graph(root)
    boxes = {n.key: n for n in graph.nodes}
    w1, w2, base = (_artifact(n).digest for n in ("w1", "w2", "base0"))
    assert set(boxes) == {dataset.digest, base, w1, w2, "run:r1", "run:r2"}
    assert len(graph.edges) == 6  # two inputs into each run, each run to its weights
    column = sorted({n.x for n in graph.nodes})
    assert [column.index(boxes[k].x) for k in (base, "run:r1", w1, "run:r2", w2)] == [0, 1, 2, 3, 4]
    assert column.index(boxes[dataset.digest].x) == 0
    assert boxes[w2].focus and not boxes[w1].focus and boxes["run:r1"].href is None
    assert boxes[w1].href == "/dashboard/provenance?digest=" + w1
    assert graph.hidden == 0
    assert graph.width >= max(n.x + n.width for n in graph.nodes)
    # No two boxes overlap.
    for a in graph.nodes:
        for b in graph.nodes:
            if a is not b:
                assert (
                    a.x + a.width <= b.x
                    or b.x + b.width <= a.x
                    or a.y + a.height <= b.y
                    or b.y + b.height <= a.y
                ), (a.key, b.key)


def test_a_long_lineage_is_cut_and_says_so() -> None:
    root, _ = _generations(MAX_DRAWN)  # 2n + 2 boxes
    graph = lineage_graph(root)
    assert len(graph.nodes) == MAX_DRAWN
    assert graph.hidden == MAX_DRAWN + 2
    drawn = {n.key for n in graph.nodes}
    assert all(e.path.startswith("M") for e in graph.edges) and len(graph.edges) < 2 * len(drawn)
