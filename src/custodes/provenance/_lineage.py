"""Lineage: every weights digest traced back to registered roots, and checked against the log.

A lineage is a tree (shared inputs appear once in full and then as repeats): an artifact, the
run that produced it (none for a root) and that run's inputs, recursively. It is read from the
registry's tables in three queries and walked in memory, so a long lineage costs no more round
trips than a short one. A run whose row is missing, an input that is not registered, or a
chain that comes back to itself is refused with the path that shows it.

:func:`verify_lineage` checks every node offline against the log: the entry at the node's
index records exactly this artifact or run (digest, kind, manifest digest; envelope digest,
plan, inputs and outputs, signer, grant), and the log's entries hash to its newest
checkpoint (RFC 9162 §2.1.1); each stored manifest hashes to its digest; each stored
envelope's DSSE signature verifies under a pipeline key of the constitution in force when the
run was registered (``_in_force``: a key rotated since does not fail it, one not in force then
does); each run's grant entry is in the log, of that version's training capability and bound to
the run's plan, and the entry auditor (``custodes.entry_audit``) finds its approvals signed and
meeting their quorum.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from custodes.errors import ProvenanceError
from custodes.log import SignedCheckpoint, canonical_json, leaf_hash, tree_hash
from custodes.provenance import _entries
from custodes.provenance._dsse import IN_TOTO_PAYLOAD_TYPE, verified_signer
from custodes.provenance._in_force import ConstitutionHistory
from custodes.provenance._model import Artifact, Run
from custodes.provenance._statement import run_resource

__all__ = [
    "LineageError",
    "LineageLog",
    "LineageNode",
    "LineageReport",
    "build_lineage",
    "grant_bodies",
    "verify_lineage",
]

# Runs from which a lineage's signatures are verified on several threads.
_PREFETCH_MIN = 64


class LineageError(ProvenanceError):
    """A lineage has a cycle or a missing link; ``path`` is the chain of digests to it."""

    code = "broken_lineage"

    def __init__(self, message: str, *, path: Sequence[str]) -> None:
        super().__init__(message, hint="lineage: " + " <- ".join(path) if path else None)
        self.path = tuple(path)


@dataclass(frozen=True)
class LineageNode:
    """An artifact, the run that produced it (None for a root) and the run's inputs.

    ``repeat`` marks an artifact already shown earlier in the tree (its inputs are there).
    """

    artifact: Artifact
    run: Run | None = None
    role: str = ""
    inputs: tuple[LineageNode, ...] = ()
    repeat: bool = False

    def walk(self) -> list[LineageNode]:
        """Every node once, depth first (repeats left out)."""
        out: list[LineageNode] = []
        stack = [self]
        while stack:
            node = stack.pop()
            if node.repeat:
                continue
            out.append(node)
            stack.extend(reversed(node.inputs))
        return out

    @property
    def roots(self) -> list[Artifact]:
        return [n.artifact for n in self.walk() if n.run is None]


def build_lineage(
    digest: str,
    artifacts: Mapping[str, Artifact],
    runs: Mapping[str, Run],
) -> LineageNode:
    """The lineage of ``digest`` over loaded artifacts and runs (iterative: no recursion limit).

    Raises:
        LineageError: a missing artifact or run, or a cycle.
    """
    if digest not in artifacts:
        raise LineageError(f"{digest} is not registered", path=[digest])
    done: dict[str, LineageNode] = {}
    shown: set[str] = set()
    on_path: list[str] = []
    # Post-order with an explicit stack: (digest, role, expanded?).
    stack: list[tuple[str, str, bool]] = [(digest, "", False)]
    while stack:
        d, role, expanded = stack.pop()
        art = artifacts.get(d)
        if art is None:
            raise LineageError(
                f"{d} is an input of {on_path[-1] if on_path else 'the run'} but is not registered",
                path=[*on_path, d],
            )
        if expanded:
            on_path.pop()
            run = runs[art.run_id] if art.run_id else None
            kids = []
            for i in run.statement.inputs if run else ():
                node = done[i.digest]
                kids.append(
                    LineageNode(node.artifact, role=i.role, repeat=True)
                    if i.digest in shown
                    else LineageNode(node.artifact, node.run, i.role, node.inputs)
                )
                shown.add(i.digest)
            done[d] = LineageNode(art, run, role, tuple(kids))
            continue
        if d in on_path:
            raise LineageError(f"the lineage of {d} comes back to itself", path=[*on_path, d])
        if d in done:
            continue
        run = None
        if art.run_id is not None:
            run = runs.get(art.run_id)
            if run is None:
                raise LineageError(
                    f"{d} was produced by run {art.run_id}, which is not registered",
                    path=[*on_path, d],
                )
        on_path.append(d)
        stack.append((d, role, True))
        for i in reversed(run.statement.inputs if run else ()):
            if i.digest in on_path:
                raise LineageError(
                    f"the lineage of {i.digest} comes back to itself", path=[*on_path, i.digest]
                )
            stack.append((i.digest, i.role, False))
    root = done[digest]
    return root


class LineageLog(Protocol):
    """What verification reads from the log: its entries and its newest checkpoint."""

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def latest_checkpoint(self, *, fresh: bool = True) -> SignedCheckpoint: ...


@dataclass(frozen=True)
class LineageReport:
    """What :func:`verify_lineage` checked and what it found wrong (empty: all verified)."""

    digest: str
    artifacts: int
    runs: int
    checkpoint_size: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_lineage(
    lineage: LineageNode,
    log: LineageLog,
    history: ConstitutionHistory,
    *,
    grant_problems: Mapping[str, str | None],
    entries: Mapping[int, bytes],
    checkpoint: SignedCheckpoint | None = None,
) -> LineageReport:
    """Check ``lineage`` against the log (see the module docstring).

    Args:
        lineage: the tree to check.
        log: the log whose newest checkpoint the entries must be included in.
        history: the constitution in force at each index of the log: a run is checked
            against the version in force when it was registered (its pipeline keys, its
            training capability; none named: no run is approved).
        grant_problems: by grant id, the grant entry's index problem from the entry auditor
            (None: its approvals check out); a grant missing here has no entry in the log.
        entries: the log's entries by index (the caller reads them once).
        checkpoint: the checkpoint ``entries`` were read up to (default: the log's newest,
            read now; give it when the log is being written to, or a newer checkpoint than
            the entries read would be reported as a mismatch).
    """
    grants = grant_bodies(entries)
    problems: list[str] = []
    if checkpoint is None:
        checkpoint = log.latest_checkpoint()
    size, root = checkpoint.checkpoint.size, checkpoint.checkpoint.root_hash
    # Every entry of the checkpoint is at hand, so the tree hash over all of them (RFC 9162
    # §2.1.1) proves each one included at once: stronger than one inclusion proof per node
    # (the proofs come from the same store), and O(n) hashing instead of O(n log n) reads.
    if sorted(entries) != list(range(size)) or (
        tree_hash([leaf_hash(entries[i]) for i in range(size)]) != root
    ):
        problems.append(
            f"the log's entries do not hash to its checkpoint of size {size}: "
            "run custodes log verify"
        )
    nodes = lineage.walk()
    in_force = {n.run.id: _in_force(n.run, history) for n in nodes if n.run is not None}
    _prefetch_signatures(
        [(n.run.envelope, in_force[n.run.id][1]) for n in nodes if n.run is not None]
    )
    runs = 0
    for node in nodes:
        a = node.artifact
        body = _entry(a.log_index, entries, log, size, root, _entries.ARTIFACT, problems, a.digest)
        if body is not None:
            want = {
                "digest": a.digest,
                "kind": a.kind,
                "name": a.name,
                "files": a.files,
                "manifest_sha256": a.manifest_sha256,
                "git_commit": a.git_commit,
                "run_id": a.run_id,
            }
            got = {k: body.get(k) for k in want}
            if got != want:
                diff = sorted(k for k in want if got[k] != want[k])
                problems.append(f"{a.digest}: the stored artifact differs from its entry in {diff}")
        if a.manifest is not None:
            sha = hashlib.sha256(canonical_json(a.manifest.to_document())).hexdigest()
            if sha != a.manifest_sha256 or a.manifest.digest != a.digest:
                problems.append(f"{a.digest}: the stored manifest does not hash to its digest")
        run = node.run
        if run is None:
            continue
        runs += 1
        training_capability, keys, under, missing = in_force[run.id]
        if missing is not None:
            problems.append(f"run {run.id}: {missing}")
        _check_run(run, entries, log, size, root, keys, under, problems)
        grant_problem = grant_problems.get(run.grant_id, "missing")
        if grant_problem == "missing":
            problems.append(f"run {run.id}: grant {run.grant_id} has no entry in the log")
        elif grant_problem is not None:
            problems.append(f"run {run.id}: grant {run.grant_id}: {grant_problem}")
        resource = run_resource(run.statement.plan_digest)
        grant_body = grants.get(run.grant_id)
        if grant_body is not None and (
            training_capability is None
            or grant_body.get("resource") != resource
            or grant_body.get("capability") != training_capability
        ):
            problems.append(
                f"run {run.id}: grant {run.grant_id} is not a {training_capability} grant "
                f"bound to {resource}"
            )
    return LineageReport(lineage.artifact.digest, len(nodes), runs, size, tuple(problems))


def _in_force(
    run: Run, history: ConstitutionHistory
) -> tuple[str | None, Mapping[str, bytes], str, str | None]:
    """Under the version in force when ``run`` was registered: its training capability, its
    pipeline keys, how to name it, and why there is none (None when there is)."""
    c = history.at(run.log_index)
    if isinstance(c, str):
        return None, {}, "no constitution", c
    rules = c.provenance
    under = f"constitution version {c.version}, in force when it was registered"
    return rules.training_capability, rules.signers(c.principals, rules.pipeline_roles), under, None


def _prefetch_signatures(pairs: Sequence[tuple[bytes, Mapping[str, bytes]]]) -> None:
    """Verify the envelopes' signatures on a few threads ahead of the checks that read them
    (``verified_signer`` remembers each). Ed25519 verification releases the interpreter, so a
    long lineage's first verification spreads over the cores; a short one is not worth the
    threads. Failures are left for the checks to report, in order."""
    workers = min(4, os.cpu_count() or 1)
    if workers < 2 or len(pairs) < _PREFETCH_MIN:
        return

    def one(pair: tuple[bytes, Mapping[str, bytes]]) -> None:
        with contextlib.suppress(Exception):  # reported by the checks that follow
            verified_signer(pair[0], pair[1], payload_type=IN_TOTO_PAYLOAD_TYPE)

    with ThreadPoolExecutor(workers, thread_name_prefix="verify-signatures") as pool:
        list(pool.map(one, pairs, chunksize=32))


def grant_bodies(entries: Mapping[int, bytes]) -> dict[str, Mapping[str, Any]]:
    """The bodies of the log's ``authority.grant/v1`` entries, by grant id."""
    out: dict[str, Mapping[str, Any]] = {}
    for data in entries.values():
        if b'"authority.grant/v1"' in data:
            doc = orjson.loads(data)
            if doc.get("type") == "authority.grant/v1":
                out[doc["body"]["id"]] = doc["body"]
    return out


def _entry(
    index: int,
    entries: Mapping[int, bytes],
    log: LineageLog,
    size: int,
    root: bytes,
    type_: str,
    problems: list[str],
    what: str,
) -> dict[str, Any] | None:
    data = entries.get(index)
    if data is None or index >= size:
        problems.append(f"{what}: its entry {index} is not in the log's checkpoint of {size}")
        return None
    doc = orjson.loads(data)
    if doc.get("type") != type_:
        problems.append(f"{what}: entry {index} is a {doc.get('type')}, not a {type_}")
        return None
    body: dict[str, Any] = doc["body"]
    return body


def _check_run(
    run: Run,
    entries: Mapping[int, bytes],
    log: LineageLog,
    size: int,
    root: bytes,
    keys: Mapping[str, bytes],
    under: str,
    problems: list[str],
) -> None:
    what = f"run {run.id}"
    if hashlib.sha256(run.envelope).hexdigest() != run.envelope_sha256:
        problems.append(f"{what}: the stored envelope does not hash to the digest logged")
    try:
        signer = verified_signer(run.envelope, keys, payload_type=IN_TOTO_PAYLOAD_TYPE)
        if signer != run.statement.builder:
            problems.append(
                f"{what}: signed by {signer}, but names builder {run.statement.builder}"
            )
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{what}: {getattr(exc, 'message', exc)} (pipeline keys of {under})")
    body = _entry(run.log_index, entries, log, size, root, _entries.RUN, problems, what)
    if body is None:
        return
    st = run.statement
    want = {
        "run_id": run.id,
        "envelope_sha256": run.envelope_sha256,
        "plan_digest": st.plan_digest,
        "builder": st.builder,
        "grant_id": run.grant_id,
        "inputs": [{"role": i.role, "digest": i.digest} for i in st.inputs],
        "outputs": [{"name": o.name, "digest": o.digest} for o in st.outputs],
    }
    diff = sorted(k for k in want if body.get(k) != want[k])
    if diff:
        problems.append(f"{what}: the stored run differs from its entry in {diff}")
