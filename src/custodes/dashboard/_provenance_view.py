"""What the provenance page shows: the registered artifacts and runs, and for one digest its
lineage drawn as a graph, listed as a table, and (on request) checked against the log.

Read through :class:`custodes.provenance.ModelRegistry`'s own methods (``artifacts``, ``runs``,
``lineage``, ``verify``), as ``GET /provenance/...`` does. Checking a lineage reads the log's
entries up to its checkpoint, so it runs only when the overseer asks (``?verify=1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.dashboard._lineage_graph import LineageGraph, lineage_graph
from custodes.errors import InputError
from custodes.provenance import (
    ARTIFACT_KINDS,
    Artifact,
    LineageNode,
    LineageReport,
    ModelRegistry,
    Run,
    parse_digest,
)

__all__ = ["LineageRow", "ProvenanceView", "provenance_view"]

_LISTED = 100


@dataclass(frozen=True)
class LineageRow:
    """One artifact of the lineage, as the table under the picture lists it."""

    artifact: Artifact
    run: Run | None
    inputs: tuple[tuple[str, str], ...]  # (role, digest) of its run's inputs


@dataclass(frozen=True)
class ProvenanceView:
    """The page: every registered artifact and run (newest first, at most 100 each), or the
    lineage of ``digest`` with its graph, its rows and, when asked, the log's verdict."""

    artifacts: tuple[Artifact, ...]
    runs: tuple[Run, ...]
    kind: str | None
    digest: str | None = None
    graph: LineageGraph | None = None
    rows: tuple[LineageRow, ...] = ()
    report: LineageReport | None = None


def provenance_view(
    registry: ModelRegistry, *, digest: str | None, kind: str | None, verify: bool
) -> ProvenanceView:
    """The provenance page's content.

    Args:
        registry: the model registry.
        digest: the artifact whose lineage to show (``sha256:<hex>``), or None for the lists.
        kind: only artifacts of this kind in the list.
        verify: also check the lineage against the log (reads the log up to its checkpoint).

    Raises:
        InputError: the digest is malformed or the kind unknown.
        LineageError: the digest is not registered, or its lineage has a cycle or a gap.
    """
    if kind is not None and kind not in ARTIFACT_KINDS:
        raise InputError(
            "unknown artifact kind",
            where="kind",
            expected=", ".join(ARTIFACT_KINDS),
            actual=kind[:40],
        )
    if digest is None:
        return ProvenanceView(
            artifacts=tuple(registry.artifacts(kind=kind, limit=_LISTED)),
            runs=tuple(registry.runs(limit=_LISTED)),
            kind=kind,
        )
    digest = parse_digest(digest)
    node = registry.lineage(digest)
    return ProvenanceView(
        artifacts=(),
        runs=(),
        kind=kind,
        digest=digest,
        graph=lineage_graph(node),
        rows=tuple(_rows(node)),
        report=registry.verify(digest) if verify else None,
    )


def _rows(node: LineageNode) -> list[LineageRow]:
    return [
        LineageRow(n.artifact, n.run, tuple((c.role, c.artifact.digest) for c in n.inputs))
        for n in node.walk()
    ]
