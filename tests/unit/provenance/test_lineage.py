"""Lineage back to registered roots, and its offline verification against the log."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.entry_audit import EntryAuditor, stored_documents
from custodes.errors import Error
from custodes.log import TransparencyLog
from custodes.provenance import (
    LineageError,
    LineageReport,
    ModelRegistry,
    RunInput,
    _dsse,
    _lineage,
    grant_bodies,
)
from custodes.provenance._lineage import build_lineage
from tests.unit.provenance.conftest import Pipeline


def _generations(pipeline: Pipeline, n: int = 3) -> list[str]:
    inputs = pipeline.register_inputs()
    digests = [inputs.base.digest]
    for g in range(n):
        digests.append(pipeline.train(inputs.plan(base=digests[-1], tag=f"gen{g}"), f"gen{g}"))
    return digests


def _verify(
    registry: ModelRegistry, log: TransparencyLog, engine: Engine, digest: str
) -> LineageReport:
    size = log.latest_checkpoint().checkpoint.size
    entries = dict(log.entries(0, size))
    auditor = EntryAuditor(stored_documents(engine))
    problems = {i: auditor.check(i, d) for i, d in sorted(entries.items())}
    grants = {gid: problems[i] for i, d in entries.items() for gid in grant_bodies({i: d})}
    return registry.verify_lineage(digest, log, grant_problems=grants)


def test_lineage_reaches_the_roots(pipeline: Pipeline, registry: ModelRegistry) -> None:
    digests = _generations(pipeline)
    node = registry.lineage(digests[-1])
    chain = []
    while node.run is not None:
        chain.append(node.artifact.digest)
        [base] = [n for n in node.inputs if n.role == "base-weights"]
        node = base
    assert chain == digests[:0:-1]
    assert node.artifact.digest == digests[0] and node.artifact.root
    # The dataset, code and config are shared by every generation: shown once, then repeated.
    top = registry.lineage(digests[-1])
    assert {a.kind for a in top.roots} == {"weights", "dataset", "code", "config"}
    assert len(top.walk()) == 4 + 3


@pytest.mark.parametrize("threads", [False, True], ids=["in-order", "signatures-on-threads"])
def test_verify_ok_and_every_flipped_attestation_byte_is_caught(
    pipeline: Pipeline,
    registry: ModelRegistry,
    transparency_log: TransparencyLog,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    threads: bool,
) -> None:
    # Signatures this process verified before are forgotten; with threads, even a short
    # lineage's are verified ahead on a pool (as a long one's are), remembered, then checked.
    monkeypatch.setattr(_dsse, "_VERIFIED", {})
    if threads:
        monkeypatch.setattr(_lineage, "_PREFETCH_MIN", 1)
        monkeypatch.setattr(_lineage.os, "cpu_count", lambda: 2)
    digests = _generations(pipeline, 2)
    report = _verify(registry, transparency_log, engine, digests[-1])
    assert report.ok, report.problems
    assert (report.artifacts, report.runs) == (6, 2)
    with engine.connect() as conn:
        stored = {
            r.id: bytes(r.envelope)
            for r in conn.execute(sa.text("SELECT id, envelope FROM provenance_runs"))
        }
    for run_id, envelope in stored.items():
        # Every 13th byte of each stored envelope (a full sweep is in test_registry's refusals).
        for i in range(0, len(envelope), 13):
            changed = bytearray(envelope)
            changed[i] ^= 0x01
            with engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE provenance_runs SET envelope = :e WHERE id = :i"),
                    {"e": bytes(changed), "i": run_id},
                )
            try:
                caught = not _verify(registry, transparency_log, engine, digests[-1]).ok
            except Error:
                caught = True
            assert caught, f"byte {i} of run {run_id}'s envelope changed unnoticed"
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE provenance_runs SET envelope = :e WHERE id = :i"),
                {"e": envelope, "i": run_id},
            )
    assert _verify(registry, transparency_log, engine, digests[-1]).ok


def test_a_changed_manifest_or_row_is_caught(
    pipeline: Pipeline, registry: ModelRegistry, transparency_log: TransparencyLog, engine: Engine
) -> None:
    digests = _generations(pipeline, 1)
    with engine.begin() as conn:
        row = conn.execute(
            sa.text("SELECT manifest FROM provenance_artifacts WHERE digest = :d"),
            {"d": digests[-1]},
        ).one()
        # One file's digest changed by one hex digit (still a well-formed manifest).
        text = row.manifest
        at = text.index('"digest":"') + len('"digest":"')
        flipped = text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]
        conn.execute(
            sa.text("UPDATE provenance_artifacts SET manifest = :m WHERE digest = :d"),
            {"m": flipped, "d": digests[-1]},
        )
    report = _verify(registry, transparency_log, engine, digests[-1])
    assert any("manifest does not hash" in p for p in report.problems)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE provenance_artifacts SET manifest = :m, name = 'renamed' WHERE digest = :d"
            ),
            {"m": text, "d": digests[-1]},
        )
    report = _verify(registry, transparency_log, engine, digests[-1])
    assert any("differs from its entry in ['name']" in p for p in report.problems)


def test_missing_links_and_cycles(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine
) -> None:
    digests = _generations(pipeline, 2)
    artifacts = {a.digest: a for a in registry.artifacts(limit=1000)}
    runs = {r.id: r for r in registry.runs()}
    # A cycle: the first generation's run names the second generation's weights as its base.
    first = runs[artifacts[digests[1]].run_id or ""]
    looped = dataclasses.replace(
        first,
        statement=dataclasses.replace(
            first.statement,
            inputs=(RunInput("base-weights", digests[2], "base"), *first.statement.inputs[1:]),
        ),
    )
    with pytest.raises(LineageError, match="comes back to itself") as info:
        build_lineage(digests[2], artifacts, {**runs, first.id: looped})
    assert info.value.path[0] == digests[2]
    # A missing run, and a missing input.
    without = {k: v for k, v in runs.items() if k != first.id}
    with pytest.raises(LineageError, match="which is not registered"):
        build_lineage(digests[2], artifacts, without)
    fewer = {k: v for k, v in artifacts.items() if k != digests[0]}
    with pytest.raises(LineageError, match="is not registered"):
        build_lineage(digests[2], fewer, runs)
    with pytest.raises(LineageError):
        registry.lineage("sha256:" + "5" * 64)
