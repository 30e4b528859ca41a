"""The model registry: artifacts by digest and training runs by signed statement.

Every registration is appended to the log first (invariant 1: no log, no action) and only then
written to the tables. Every check runs before the append, so a refused registration leaves
nothing behind but the entry that says it was refused; a run and the weights it produced are
one batch of entries and one transaction, so a run is never half-registered.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.clock import Clock
from custodes.constitution import Constitution, read_constitution, stored_document
from custodes.errors import (
    ConfigError,
    ConstitutionError,
    Error,
    InputError,
    NotFoundError,
    ProvenanceError,
)
from custodes.log import Entry, LogWriter, canonical_json
from custodes.provenance import _entries
from custodes.provenance._approval import approving_grant
from custodes.provenance._digests import parse_digest
from custodes.provenance._dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, parsed_envelope
from custodes.provenance._in_force import ConstitutionHistory, constitution_history
from custodes.provenance._lineage import (
    LineageLog,
    LineageNode,
    LineageReport,
    build_lineage,
    grant_bodies,
    verify_lineage,
)
from custodes.provenance._manifest import FileManifest
from custodes.provenance._model import (
    ARTIFACT_KINDS,
    Artifact,
    ArtifactKind,
    Evaluation,
    GrantAudit,
    Promotion,
    Run,
    RunApprovals,
    ServingVerdict,
)
from custodes.provenance._promotion import Promotions, serving_record_problems, tier_problems
from custodes.provenance._statement import RunStatement, parse_run_statement, run_resource
from custodes.provenance._tables import (
    provenance_artifacts,
    provenance_run_inputs,
    provenance_runs,
)

__all__ = ["DuplicateArtifactError", "ModelRegistry"]

_log = logging.getLogger(__name__)

# The artifact kind each input role must have: a run cannot pass a dataset off as its code.
_ROLE_KIND: dict[str, str] = {
    "base-weights": "weights",
    "dataset": "dataset",
    "code": "code",
    "config": "config",
}


class DuplicateArtifactError(ProvenanceError):
    """The digest is registered already (an artifact has one registration, one origin)."""

    status = 409
    code = "duplicate_artifact"


class ModelRegistry:
    """Artifacts, training runs and their lineage, over one database and log.

    What a run needs is the constitution's ``provenance:`` section, read when each run is
    registered or verified: grants of ``training.capability`` (k-of-n from m organisations)
    approve it, bound to its build, and a workload with one of ``training.pipeline_roles``
    signs it. A constitution without the section approves no run.

    Args:
        engine: the migrated database.
        log: where every registration (and every refusal) is recorded first.
        clock: the one clock.
        approvals: the authority: the constitution (who may sign runs) and grants.
        max_clock_skew: how far in the future a run may say it started.
        reader: the log read back for :meth:`verify` (the log ``log`` writes to).
        grant_audit: the entry auditor's verdicts on grants, for :meth:`verify`.
    """

    def __init__(
        self,
        engine: Engine,
        log: LogWriter,
        *,
        clock: Clock,
        approvals: RunApprovals,
        max_clock_skew: timedelta = timedelta(minutes=10),
        reader: LineageLog | None = None,
        grant_audit: GrantAudit | None = None,
    ) -> None:
        self._engine = engine
        self._log = log
        self._clock = clock
        self._approvals = approvals
        self._skew = max_clock_skew
        self._reader = reader
        self._grant_audit = grant_audit
        self._versions: dict[str, Constitution] = {}
        # Checks and writes are serialised so two registrations cannot both pass the
        # duplicate checks; the deployment runs one registry per database.
        self._lock = threading.RLock()
        self._promotions = Promotions(
            engine,
            log,
            clock=clock,
            approvals=approvals,
            lineage=self,
            refuse=self._refused,
            lock=self._lock,
            skew=max_clock_skew,
        )

    # -- artifacts -----------------------------------------------------------

    def register_artifact(
        self,
        principal: str,
        kind: str,
        *,
        name: str,
        manifest: FileManifest | None = None,
        digest: str | None = None,
        git_commit: str | None = None,
    ) -> Artifact:
        """Register a root artifact: by its manifest (datasets, weights, source trees) or,
        for a single file or archive (code, configuration), by its SHA-256.

        Raises:
            InputError: an unknown kind or principal, neither or both of manifest and digest,
                a digest where a manifest is required, a malformed name or commit.
            DuplicateArtifactError: the digest is registered already.
            LogWriteError: the registration could not be logged (nothing is registered).
        """
        if kind not in ARTIFACT_KINDS:
            raise InputError(
                f"unknown artifact kind {kind!r}",
                where="kind",
                expected=" or ".join(ARTIFACT_KINDS),
            )
        self._known(principal)
        if not isinstance(name, str) or not 0 < len(name) <= 256:
            raise InputError("a name of 1 to 256 characters", where="name", actual=repr(name)[:50])
        if (manifest is None) == (digest is None):
            raise InputError(
                "register an artifact by its manifest or by its digest",
                where="manifest",
                expected="exactly one of manifest, digest",
            )
        if manifest is None and kind in ("dataset", "weights"):
            raise InputError(
                f"a {kind} is registered by its file manifest, so any file can be checked",
                where="manifest",
                expected="a model-signing manifest (custodes provenance hash PATH)",
            )
        if git_commit is not None:
            if kind != "code" or not _is_commit(git_commit):
                raise InputError(
                    "a git commit names code: 40 or 64 lowercase hex digits",
                    where="git_commit",
                    actual=repr(git_commit)[:80],
                )
        if manifest is not None:
            # Checked as a stored manifest is read back: a manifest built in code (not parsed)
            # must not be logged and stored, then refused on every read.
            manifest = FileManifest.from_document(manifest.to_document(), where="manifest")
            the_digest = manifest.digest
            document = manifest.to_document()
            manifest_sha256 = hashlib.sha256(canonical_json(document)).hexdigest()
            files = len(manifest.files)
        else:
            the_digest = parse_digest(digest)
            document, manifest_sha256, files = None, None, 1
        body = _entries.ArtifactBody(
            digest=the_digest,
            kind=kind,
            name=name,
            files=files,
            manifest_sha256=manifest_sha256,
            git_commit=git_commit,
        )
        with self._lock:
            if self._exists(the_digest):
                raise DuplicateArtifactError(
                    f"{the_digest} is registered already",
                    hint=f"custodes provenance show {the_digest}",
                )
            now = self._clock.now()
            appended = self._log.append(
                Entry.create(_entries.ARTIFACT, time=now, principal=principal, body=body)
            )
            with self._engine.begin() as conn:
                conn.execute(
                    provenance_artifacts.insert().values(
                        _artifact_row(
                            body,
                            document=document,
                            principal=principal,
                            at=now,
                            index=appended.index,
                        )
                    )
                )
        return self.artifact(the_digest)

    def artifact(self, digest: str) -> Artifact:
        """The artifact registered under ``digest``.

        Raises:
            InputError: the digest is malformed.
            NotFoundError: nothing is registered under it.
        """
        d = parse_digest(digest)
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(provenance_artifacts).where(provenance_artifacts.c.digest == d)
            ).first()
        if row is None:
            raise NotFoundError(f"no artifact {d} is registered", where="digest")
        return _artifact_from_row(row)

    def artifacts(self, *, kind: str | None = None, limit: int = 100) -> list[Artifact]:
        """Registered artifacts, newest first."""
        query = (
            sa.select(provenance_artifacts)
            .order_by(provenance_artifacts.c.log_index.desc())
            .limit(max(1, min(limit, 1000)))
        )
        if kind is not None:
            query = query.where(provenance_artifacts.c.kind == kind)
        with self._engine.connect() as conn:
            return [_artifact_from_row(r) for r in conn.execute(query)]

    # -- runs ----------------------------------------------------------------

    def register_run(
        self,
        principal: str,
        envelope: bytes,
        *,
        grant_id: str,
        manifests: Iterable[FileManifest] = (),
    ) -> Run:
        """Register a training run from its DSSE-signed in-toto statement.

        The statement must be signed by the workload key of a principal with the pipeline
        role, name that principal as its builder, use only registered inputs of the right
        kinds, and describe exactly the plan approved by ``grant_id``: a grant of the
        training capability bound to the plan's digest, active when the run started, not
        revoked and not spent by another run. Its outputs become registered weights
        (``manifests``, if given, must match their digests and are kept with them).

        Raises:
            InputError: the envelope or statement is malformed, or the principal unknown.
            TooLarge: the envelope is over its limits.
            ProvenanceError: unsigned or wrongly signed, an input unregistered or of the
                wrong kind, no valid approval, outputs registered already (the refusal is
                logged).
            LogWriteError: the run could not be logged (nothing is registered).
        """
        self._known(principal)
        parsed = Envelope.from_json(envelope)
        statement = parse_run_statement(parsed.payload)
        envelope_sha256 = hashlib.sha256(envelope).hexdigest()
        run_id = envelope_sha256[:32]
        by_digest = {m.digest: m for m in manifests}
        with self._lock:
            try:
                grant_principal = self._check_run(parsed, statement, grant_id, envelope_sha256)
                unmatched = sorted(set(by_digest) - {o.digest for o in statement.outputs})
                if unmatched:
                    raise InputError(
                        f"manifest {unmatched[0]} is not the digest of an output of the run",
                        where="manifests",
                    )
            except ProvenanceError as exc:
                self._refused("register-run", principal, run_id, exc)
                raise
            now = self._clock.now()
            body = _entries.RunBody(
                run_id=run_id,
                envelope_sha256=envelope_sha256,
                plan_digest=statement.plan_digest,
                builder=statement.builder,
                invocation_id=statement.invocation_id,
                grant_id=grant_id,
                requester=grant_principal,
                inputs=[
                    _entries.RunInputBody(role=i.role, digest=i.digest) for i in statement.inputs
                ],
                outputs=[
                    _entries.RunOutputBody(name=o.name, digest=o.digest) for o in statement.outputs
                ],
            )
            outputs = []
            for o in statement.outputs:
                m = by_digest.get(o.digest)
                outputs.append(
                    _entries.ArtifactBody(
                        digest=o.digest,
                        kind="weights",
                        name=o.name or o.digest[:19],
                        files=len(m.files) if m else 0,
                        manifest_sha256=(
                            hashlib.sha256(canonical_json(m.to_document())).hexdigest()
                            if m
                            else None
                        ),
                        run_id=run_id,
                    )
                )
            appended = self._log.append_batch(
                [
                    Entry.create(_entries.RUN, time=now, principal=principal, body=body),
                    *(
                        Entry.create(_entries.ARTIFACT, time=now, principal=principal, body=b)
                        for b in outputs
                    ),
                ]
            )
            with self._engine.begin() as conn:
                conn.execute(
                    provenance_runs.insert().values(
                        id=run_id,
                        envelope=envelope,
                        envelope_sha256=envelope_sha256,
                        plan_digest=statement.plan_digest,
                        builder=statement.builder,
                        invocation_id=statement.invocation_id,
                        grant_id=grant_id,
                        requester=grant_principal,
                        started_on=statement.started_on,
                        finished_on=statement.finished_on,
                        registered_at=now,
                        log_index=appended[0].index,
                    )
                )
                conn.execute(
                    provenance_run_inputs.insert(),
                    [
                        {"run_id": run_id, "digest": i.digest, "role": i.role, "position": n}
                        for n, i in enumerate(statement.inputs)
                    ],
                )
                for b, a in zip(outputs, appended[1:], strict=True):
                    m = by_digest.get(b.digest)
                    conn.execute(
                        provenance_artifacts.insert().values(
                            _artifact_row(
                                b,
                                document=m.to_document() if m else None,
                                principal=principal,
                                at=now,
                                index=a.index,
                            )
                        )
                    )
        return self.run(run_id)

    def _check_run(
        self, envelope: Envelope, statement: RunStatement, grant_id: str, envelope_sha256: str
    ) -> str:
        """Every check of a run, before anything is written; returns the grant's holder."""
        c = self._approvals.constitution
        rules = c.provenance
        if rules.training_capability is None or not rules.pipeline_roles:
            # Fail closed: without the section nobody is named to approve or sign a run.
            raise ProvenanceError(
                "the constitution names no training capability and pipeline roles, so no "
                "training run can be approved",
                hint="add provenance.training to the constitution (docs/provenance.md)",
            )
        training = rules.training_capability
        keys = rules.signers(c.principals, rules.pipeline_roles)
        signer = envelope.verify(keys, payload_type=IN_TOTO_PAYLOAD_TYPE)
        if statement.builder != signer:
            raise ProvenanceError(
                f"the statement names builder {statement.builder!r} but is signed by {signer!r}",
                hint="a pipeline signs only the runs it built",
            )
        if statement.started_on > self._clock.now() + self._skew:
            raise ProvenanceError("the run says it started in the future")
        with self._engine.connect() as conn:
            known = {
                r.digest: r.kind
                for r in conn.execute(
                    sa.select(provenance_artifacts.c.digest, provenance_artifacts.c.kind).where(
                        provenance_artifacts.c.digest.in_(
                            [i.digest for i in statement.inputs]
                            + [o.digest for o in statement.outputs]
                        )
                    )
                )
            }
            spent = conn.execute(
                sa.select(provenance_runs.c.id).where(
                    (provenance_runs.c.grant_id == grant_id)
                    | (provenance_runs.c.envelope_sha256 == envelope_sha256)
                )
            ).first()
        for i in statement.inputs:
            kind = known.get(i.digest)
            if kind is None:
                raise ProvenanceError(
                    f"input {i.digest} ({i.role}) is not registered",
                    hint="register every input before the run is approved",
                )
            if kind != _ROLE_KIND[i.role]:
                raise ProvenanceError(
                    f"input {i.digest} is registered as {kind}, not as {_ROLE_KIND[i.role]} "
                    f"(its role in the run is {i.role})"
                )
        for o in statement.outputs:
            if o.digest in known:
                raise ProvenanceError(
                    f"output {o.digest} is registered already: a run cannot claim weights "
                    "that exist (their lineage would change)"
                )
        if not statement.outputs:
            raise ProvenanceError("a run states the weights it produced")
        if spent is not None:
            raise ProvenanceError(
                f"grant {grant_id} was spent by run {spent.id}: each run needs its own approval"
            )
        grant = approving_grant(
            self._approvals,
            grant_id,
            what="run",
            capability=training,
            resource=run_resource(statement.plan_digest),
            at=statement.started_on,
            bound_to="this run's plan",
            when="when the run started",
        )
        return grant.principal

    def run(self, run_id: str) -> Run:
        """The run ``run_id``.

        Raises:
            NotFoundError: there is no such run.
        """
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(provenance_runs).where(provenance_runs.c.id == run_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}", where="run_id")
        return _run_from_row(row)

    def runs(self, *, limit: int = 100) -> list[Run]:
        """Registered runs, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(provenance_runs)
                .order_by(provenance_runs.c.log_index.desc())
                .limit(max(1, min(limit, 1000)))
            ).all()
        return [_run_from_row(r) for r in rows]

    # -- lineage -------------------------------------------------------------

    def _load(self) -> tuple[dict[str, Artifact], dict[str, Run]]:
        with self._engine.connect() as conn:
            artifacts = {
                r.digest: _artifact_from_row(r)
                for r in conn.execute(sa.select(provenance_artifacts))
            }
            runs = {r.id: _run_from_row(r) for r in conn.execute(sa.select(provenance_runs))}
        return artifacts, runs

    def lineage(self, digest: str) -> LineageNode:
        """The lineage of ``digest`` back to its registered roots.

        Raises:
            InputError: the digest is malformed, or a stored manifest or envelope is.
            LineageError: it is not registered, or its lineage has a cycle or a missing link.
        """
        artifacts, runs = self._load()
        return build_lineage(parse_digest(digest), artifacts, runs)

    def verify_lineage(
        self, digest: str, log: LineageLog, *, grant_problems: Mapping[str, str | None]
    ) -> LineageReport:
        """Check the lineage of ``digest`` offline against ``log`` (see ``verify_lineage``).

        Args:
            digest: the weights (or any artifact) to check.
            log: the log the registry wrote to.
            grant_problems: the entry auditor's finding on each grant entry, by grant id.

        Raises:
            InputError: a stored manifest or envelope no longer parses (it was changed).
            LineageError: the lineage has a cycle or a missing link.
        """
        node = self.lineage(digest)
        checkpoint = log.latest_checkpoint()
        entries = dict(log.entries(0, checkpoint.checkpoint.size))
        return verify_lineage(
            node,
            log,
            self.constitution_history(entries),
            grant_problems=grant_problems,
            entries=entries,
            checkpoint=checkpoint,
        )

    def verify(self, digest: str) -> LineageReport:
        """Check the lineage of ``digest`` offline against the log this registry writes to,
        with the entry auditor's verdict on every run's grant and its approvals.

        Raises:
            ConfigError: the registry was built without a log reader or a grant auditor.
            InputError: the digest is malformed, or a stored manifest or envelope is.
            LineageError: it is not registered, or its lineage has a cycle or a missing link.
        """
        if self._reader is None or self._grant_audit is None:
            # Fail closed: a lineage is never reported verified without the approvals checked.
            raise ConfigError(
                "this registry cannot verify: it has no log reader or grant auditor",
                hint="build it through custodes.wiring",
            )
        node = self.lineage(digest)
        # One checkpoint for the entries and the check: a log written to meanwhile has a
        # newer one by the time the entries are hashed. The newest stored one does if it covers
        # the lineage; signing a fresh one takes the log writer's lock, which a serving
        # deployment's calls are waiting on.
        evaluations = self._promotions.evaluations(node.artifact.digest)
        promotions = self._promotions.promotions(node.artifact.digest)
        last = max(
            [
                max(n.artifact.log_index, -1 if n.run is None else n.run.log_index)
                for n in node.walk()
            ]
            + [e.log_index for e in evaluations]
            + [p.log_index for p in promotions]
        )
        checkpoint = self._reader.latest_checkpoint(fresh=False)
        if checkpoint.checkpoint.size <= last:
            checkpoint = self._reader.latest_checkpoint()
        entries = dict(self._reader.entries(0, checkpoint.checkpoint.size))
        history = self.constitution_history(entries)
        grant_problems = self._grant_audit.grant_problems(entries)
        report = verify_lineage(
            node,
            self._reader,
            history,
            grant_problems=grant_problems,
            entries=entries,
            checkpoint=checkpoint,
        )
        more = serving_record_problems(
            history, evaluations, promotions, entries, grant_problems, grant_bodies(entries)
        )
        if not more:
            return report
        return dataclasses.replace(report, problems=(*report.problems, *more))

    def constitution_history(self, entries: Mapping[int, bytes]) -> ConstitutionHistory:
        """The constitution in force at each index of ``entries`` (the log's, by index): the
        versions their adoption and amendment entries adopted, read from the stored texts and
        checked against the logged digests (see ``custodes.provenance._in_force``)."""
        return constitution_history(entries, self._read_version)

    def _read_version(self, version: int, digest: str) -> Constitution | str:
        try:
            text = stored_document(self._engine, version)
        except NotFoundError:
            return f"no stored text of version {version}"
        key = hashlib.sha256(text.encode()).hexdigest()
        # The texts are immutable once adopted, but a changed one must be seen: cached by
        # the text's own hash, so a changed text is read (and refused) again.
        c = self._versions.get(key)
        if c is None:
            try:
                c = read_constitution(text, name=f"stored version {version}")
            except ConstitutionError as exc:
                return f"the stored text of version {version} is refused ({exc.message})"
            with self._lock:
                if len(self._versions) >= 64:
                    self._versions.clear()
                self._versions[key] = c
        if c.digest != digest or c.version != version:
            return (
                f"the stored text of version {version} has digest {c.digest}, not the logged "
                f"{digest}: the stored text or the entry was changed"
            )
        return c

    def serving_verdict(self, digest: str, capability: str) -> ServingVerdict:
        """May the weights ``digest`` serve in the tier ``capability``? Only if promoted to it
        (:meth:`promote`, under the serving rule), the promotion grant not revoked since, every
        evaluation the tier requires registered and its highest score under the tier's
        threshold (a later evaluation may cross it), and the whole lineage, evaluations and
        promotion verifying against the log (:meth:`verify`).

        A tier outside ``provenance.tiers`` serves no named weights: naming weights asks for
        them to be checked, and only those tiers hold the rules to check them by. Weights not
        promoted yet give a verdict that is not ``lasting`` (the promotion may come any moment;
        that check is two indexed lookups). Slow otherwise (it reads the log): callers cache
        the verdict per digest and tier.

        Raises:
            ConfigError: the registry cannot verify (no log reader or grant auditor).
        """
        at = self._clock.now()

        def refused(*reasons: str, lasting: bool = True) -> ServingVerdict:
            return ServingVerdict(
                digest, False, reasons, at, lasting=lasting, capability=capability
            )

        try:
            artifact = self.artifact(digest)
            if artifact.kind != "weights":
                return refused(f"{digest} is registered as {artifact.kind}")
            tier = self._approvals.constitution.provenance.tiers_by_capability.get(capability)
            if tier is None:
                return refused(
                    f"{capability!r} is not a tier of provenance.tiers, so no weights are "
                    "promoted to it",
                )
            promotions = self._promotions.promotions(artifact.digest, capability=capability)
            if not promotions:
                return refused(
                    f"{digest} is not promoted to {capability!r}"
                    + (
                        f" (it is a root registered by {artifact.registered_by}, trained "
                        "nowhere the registry saw)"
                        if artifact.run_id is None
                        else ""
                    ),
                    lasting=False,
                )
            reasons = []
            live = []
            for p in promotions:
                try:
                    grant = self._approvals.grant(p.grant_id)
                except NotFoundError:
                    reasons.append(f"promotion {p.id}: its grant {p.grant_id} does not exist")
                    continue
                if grant.revoked_at is not None:
                    reasons.append(
                        f"promotion {p.id}: its grant {p.grant_id} was revoked by "
                        f"{grant.revoked_by}"
                    )
                else:
                    live.append(p)
            if live:
                reasons = tier_problems(tier, self._promotions.evaluations(artifact.digest))
            if reasons:
                return refused(*reasons)
            report = self.verify(digest)
        except NotFoundError as exc:
            return refused(exc.message, lasting=False)
        except (InputError, ProvenanceError) as exc:
            return refused(exc.message)
        return ServingVerdict(
            report.digest,
            report.ok,
            report.problems,
            at,
            checkpoint_size=report.checkpoint_size,
            capability=capability,
        )

    # -- evaluations and promotions -----------------------------------------

    def register_evaluation(self, principal: str, envelope: bytes) -> Evaluation:
        """Register a capability evaluation (see :meth:`Promotions.register_evaluation`)."""
        self._known(principal)
        return self._promotions.register_evaluation(principal, envelope)

    def evaluation(self, evaluation_id: str) -> Evaluation:
        """The evaluation ``evaluation_id`` (raises NotFoundError)."""
        return self._promotions.evaluation(evaluation_id)

    def evaluations(self, weights: str) -> list[Evaluation]:
        """The evaluations of ``weights``, oldest first."""
        return self._promotions.evaluations(weights)

    def promote(self, principal: str, weights: str, *, capability: str, grant_id: str) -> Promotion:
        """Promote ``weights`` to serve in ``capability`` (see :meth:`Promotions.promote`)."""
        self._known(principal)
        return self._promotions.promote(
            principal, weights, capability=capability, grant_id=grant_id
        )

    def promotions(self, weights: str, *, capability: str | None = None) -> list[Promotion]:
        """The promotions of ``weights``, oldest first."""
        return self._promotions.promotions(weights, capability=capability)

    # -- helpers -------------------------------------------------------------

    def _known(self, principal: str) -> None:
        if principal not in self._approvals.constitution.principals_by_id:
            raise InputError(
                f"{principal!r} is not a principal of the constitution", where="principal"
            )

    def _exists(self, digest: str) -> bool:
        with self._engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(provenance_artifacts.c.digest).where(
                        provenance_artifacts.c.digest == digest
                    )
                ).first()
                is not None
            )

    def _refused(self, action: str, principal: str, subject: str, exc: Error) -> None:
        body = _entries.RefusedBody(
            action=action, principal=principal, subject=subject, reason=exc.message[:1000]
        )
        try:
            self._log.append(
                Entry.create(
                    _entries.REFUSED, time=self._clock.now(), principal=principal, body=body
                )
            )
        except Error:  # the refusal stands whether or not it could be logged
            _log.exception("could not log a refused %s", action)


def _is_commit(text: str) -> bool:
    return len(text) in (40, 64) and not set(text) - set("0123456789abcdef")


def _artifact_row(
    body: _entries.ArtifactBody,
    *,
    document: Mapping[str, Any] | None,
    principal: str,
    at: datetime,
    index: int,
) -> dict[str, Any]:
    return {
        "digest": body.digest,
        "kind": body.kind,
        "name": body.name,
        "manifest": orjson.dumps(document).decode() if document is not None else None,
        "manifest_sha256": body.manifest_sha256,
        "files": body.files,
        "git_commit": body.git_commit,
        "run_id": body.run_id,
        "registered_by": principal,
        "registered_at": at,
        "log_index": index,
    }


def _artifact_from_row(row: Any) -> Artifact:
    manifest = (
        FileManifest.from_document(orjson.loads(row.manifest), where=f"stored {row.digest}")
        if row.manifest
        else None
    )
    kind: ArtifactKind = row.kind
    return Artifact(
        digest=row.digest,
        kind=kind,
        name=row.name,
        files=row.files,
        manifest=manifest,
        manifest_sha256=row.manifest_sha256,
        git_commit=row.git_commit,
        run_id=row.run_id,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        log_index=row.log_index,
    )


@functools.lru_cache(maxsize=2048)
def _stored_statement(envelope: bytes) -> RunStatement:
    """The statement of a stored envelope. The same bytes parse the same way, so a lineage
    verified again (the gateway's serving check, every interval) parses each run once per
    process; bytes changed in the database miss the cache and are parsed, and checked, anew."""
    return parse_run_statement(parsed_envelope(envelope).payload, check_schema=False)


def _run_from_row(row: Any) -> Run:
    envelope = bytes(row.envelope)
    try:
        statement = _stored_statement(envelope)
    except (InputError, KeyError, TypeError, AttributeError) as exc:
        # It parsed when it was registered: it has been changed in the database since.
        raise ProvenanceError(
            f"the stored envelope of run {row.id} no longer parses ({exc}): it was "
            "changed after registration",
            hint="custodes log verify, and compare the run's entry in the log",
        ) from exc
    return Run(
        id=row.id,
        envelope=envelope,
        envelope_sha256=row.envelope_sha256,
        statement=statement,
        grant_id=row.grant_id,
        requester=row.requester,
        registered_at=row.registered_at,
        log_index=row.log_index,
    )
