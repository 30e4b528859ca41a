"""Capability evaluations, promotion to serving, and the serving verdict.

Weights serve in a tier of the constitution's ``provenance.tiers`` only once promoted to it.
A promotion is a request of its own: a grant of ``provenance.promotion.capability`` bound to
``promotion:<tier>:<weights digest>`` (k-of-n from m organisations under the serving rule, the
promotion capability's access rule), spent by the one promotion it approves; the weights'
whole lineage must verify against the log, and every evaluation the tier requires must be
registered for them, signed by an evaluator, with the highest score under the tier's threshold.

An evaluation registered later that puts the weights at or above a tier's threshold is a
**threshold crossing**: a ``provenance.threshold_crossed/v1`` entry, written in the same batch
as the evaluation, tells the organisations of ``provenance.notify``; the verdict for that tier
turns, so the gateway stops serving the model at its next check. The highest score counts:
a later, lower score does not undo a crossing (fail closed: an evaluator cannot launder a
model by evaluating it again).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.clock import Clock
from custodes.constitution import Constitution, ServedTier
from custodes.errors import Error, InputError, NotFoundError, ProvenanceError
from custodes.log import Entry, LogWriter
from custodes.provenance import _entries
from custodes.provenance._approval import approving_grant
from custodes.provenance._digests import parse_digest
from custodes.provenance._dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    parsed_envelope,
    verified_signer,
)
from custodes.provenance._evaluation import parse_evaluation_statement
from custodes.provenance._in_force import ConstitutionHistory
from custodes.provenance._lineage import LineageReport
from custodes.provenance._model import Artifact, Evaluation, Promotion, RunApprovals
from custodes.provenance._tables import provenance_evaluations, provenance_promotions

__all__ = ["Promotions", "promotion_resource", "serving_record_problems"]


def promotion_resource(capability: str, weights: str) -> str:
    """The authority resource a promotion approval is bound to."""
    return f"promotion:{capability}:{weights}"


class _Lineage(Protocol):
    """What promotion asks of the registry's lineage half."""

    def artifact(self, digest: str) -> Artifact: ...

    def verify(self, digest: str) -> LineageReport: ...


Refuse = Callable[[str, str, str, Error], None]


class Promotions:
    """Evaluations and promotions, over the registry's database and log.

    Args:
        engine: the migrated database.
        log: where each registration (and refusal) is recorded first.
        clock: the one clock.
        approvals: the authority: the constitution and grants.
        lineage: the registry (artifacts, lineage verification).
        refuse: logs a refusal (``action, principal, subject, error``).
        lock: the registry's lock (registrations are serialised).
        skew: how far in the future an evaluation may say it finished.
    """

    def __init__(
        self,
        engine: Engine,
        log: LogWriter,
        *,
        clock: Clock,
        approvals: RunApprovals,
        lineage: _Lineage,
        refuse: Refuse,
        lock: threading.RLock,
        skew: Any,
    ) -> None:
        self._engine = engine
        self._log = log
        self._clock = clock
        self._approvals = approvals
        self._lineage = lineage
        self._refuse = refuse
        self._lock = lock
        self._skew = skew

    def _weights(self, digest: str, *, hint: str | None = None) -> None:
        """Check that ``digest`` is registered, as weights: only weights are evaluated or
        promoted.

        Raises:
            ProvenanceError: nothing is registered under it, or something other than weights.
        """
        try:
            artifact = self._lineage.artifact(digest)
        except NotFoundError as exc:
            raise ProvenanceError(f"no weights {digest} are registered", hint=hint) from exc
        if artifact.kind != "weights":
            raise ProvenanceError(f"{digest} is registered as {artifact.kind}, not weights")

    # -- evaluations ---------------------------------------------------------

    def register_evaluation(self, principal: str, envelope: bytes) -> Evaluation:
        """Register a capability evaluation from its DSSE-signed statement.

        Raises:
            InputError: the envelope or statement is malformed.
            TooLarge: the envelope is over its limits.
            ProvenanceError: not signed by an evaluator of the constitution, signed by another
                than the statement's evaluator, an unknown evaluation, weights not registered,
                a finish time in the future, or registered already (the refusal is logged).
            LogWriteError: it could not be logged (nothing is registered).
        """
        parsed = Envelope.from_json(envelope)
        statement = parse_evaluation_statement(parsed.payload)
        sha = hashlib.sha256(envelope).hexdigest()
        eval_id = sha[:32]
        with self._lock:
            c = self._approvals.constitution
            rules = c.provenance
            try:
                if not rules.evaluator_roles:
                    raise ProvenanceError(
                        "the constitution names no evaluators, so no evaluation counts",
                        hint="add provenance.evaluators to the constitution",
                    )
                signer = parsed.verify(
                    rules.signers(c.principals, rules.evaluator_roles),
                    payload_type=IN_TOTO_PAYLOAD_TYPE,
                )
                if signer != statement.evaluator:
                    raise ProvenanceError(
                        f"the statement names evaluator {statement.evaluator!r} but is signed "
                        f"by {signer!r}",
                        hint="an evaluator signs only the evaluations they ran",
                    )
                if statement.evaluation not in rules.evaluations:
                    raise ProvenanceError(
                        f"unknown evaluation {statement.evaluation!r}",
                        hint="one of provenance.evaluations: " + ", ".join(rules.evaluations),
                    )
                if statement.finished_on > self._clock.now() + self._skew:
                    raise ProvenanceError("the evaluation says it finished in the future")
                self._weights(
                    statement.weights, hint="register the weights (or their training run) first"
                )
                with self._engine.connect() as conn:
                    if conn.execute(
                        sa.select(provenance_evaluations.c.id).where(
                            provenance_evaluations.c.envelope_sha256 == sha
                        )
                    ).first():
                        raise ProvenanceError(f"evaluation {eval_id} is registered already")
            except ProvenanceError as exc:
                self._refuse("register-evaluation", principal, statement.weights, exc)
                raise
            promoted = {p.capability for p in self.promotions(statement.weights)}
            crossed = [
                _entries.CrossedTier(
                    capability=t.capability, below=below, promoted=t.capability in promoted
                )
                for t, below in _limits(rules.tiers, statement.evaluation)
                if statement.score >= below
            ]
            now = self._clock.now()
            body = _entries.EvaluationBody(
                evaluation_id=eval_id,
                weights=statement.weights,
                evaluation=statement.evaluation,
                score=statement.score,
                evaluator=signer,
                envelope_sha256=sha,
            )
            entries = [Entry.create(_entries.EVALUATION, time=now, principal=principal, body=body)]
            if crossed:
                notice = _entries.ThresholdCrossedBody(
                    weights=statement.weights,
                    evaluation_id=eval_id,
                    evaluation=statement.evaluation,
                    score=statement.score,
                    tiers=crossed,
                    notify=_entries.NotifyBody(
                        organisations=list(rules.notify.organisations),
                        kinds=list(rules.notify.kinds),
                        roles=list(rules.notify.roles),
                    ),
                )
                entries.append(
                    Entry.create(
                        _entries.THRESHOLD_CROSSED, time=now, principal="custodes", body=notice
                    )
                )
            appended = self._log.append_batch(entries)
            with self._engine.begin() as conn:
                conn.execute(
                    provenance_evaluations.insert().values(
                        id=eval_id,
                        weights=statement.weights,
                        evaluation=statement.evaluation,
                        score=statement.score,
                        evaluator=signer,
                        envelope=envelope,
                        envelope_sha256=sha,
                        registered_by=principal,
                        registered_at=now,
                        log_index=appended[0].index,
                    )
                )
        return self.evaluation(eval_id)

    def evaluation(self, evaluation_id: str) -> Evaluation:
        """The evaluation ``evaluation_id``.

        Raises:
            NotFoundError: there is none.
        """
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(provenance_evaluations).where(
                    provenance_evaluations.c.id == evaluation_id
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no evaluation {evaluation_id!r}", where="evaluation_id")
        return _evaluation_from_row(row)

    def evaluations(self, weights: str) -> list[Evaluation]:
        """The evaluations registered for ``weights``, oldest first."""
        d = parse_digest(weights)
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(provenance_evaluations)
                .where(provenance_evaluations.c.weights == d)
                .order_by(provenance_evaluations.c.log_index)
            ).all()
        return [_evaluation_from_row(r) for r in rows]

    # -- promotions ----------------------------------------------------------

    def promote(self, principal: str, weights: str, *, capability: str, grant_id: str) -> Promotion:
        """Promote ``weights`` to serve in the tier ``capability``.

        Raises:
            InputError: a malformed digest.
            ProvenanceError: the tier does not serve only promoted weights, the weights are
                not registered, their lineage does not verify, an evaluation the tier requires
                is missing or at or above its threshold, or the grant does not approve this
                promotion (another capability or resource, break-glass, revoked, not in force,
                spent by another promotion): the refusal is logged.
            LogWriteError: it could not be logged (nothing is promoted).
        """
        digest = parse_digest(weights, where="weights")
        with self._lock:
            try:
                c = self._approvals.constitution
                tier, requester, evaluations, report = self._check_promotion(
                    c, digest, capability, grant_id
                )
            except ProvenanceError as exc:
                self._refuse("promote", principal, digest, exc)
                raise
            promotion_id = hashlib.sha256(f"{grant_id}\n{digest}".encode()).hexdigest()[:32]
            now = self._clock.now()
            body = _entries.PromotionBody(
                promotion_id=promotion_id,
                weights=digest,
                capability=tier.capability,
                grant_id=grant_id,
                requester=requester,
                evaluations=list(evaluations),
                checkpoint_size=report.checkpoint_size,
            )
            [appended] = self._log.append_batch(
                [Entry.create(_entries.PROMOTION, time=now, principal=principal, body=body)]
            )
            with self._engine.begin() as conn:
                conn.execute(
                    provenance_promotions.insert().values(
                        id=promotion_id,
                        weights=digest,
                        capability=tier.capability,
                        grant_id=grant_id,
                        requester=requester,
                        registered_by=principal,
                        evaluations=orjson.dumps(list(evaluations)).decode(),
                        checkpoint_size=report.checkpoint_size,
                        registered_at=now,
                        log_index=appended.index,
                    )
                )
        return self.promotions(digest, capability=tier.capability)[-1]

    def _check_promotion(
        self, c: Constitution, digest: str, capability: str, grant_id: str
    ) -> tuple[ServedTier, str, tuple[str, ...], LineageReport]:
        rules = c.provenance
        tier = rules.tiers_by_capability.get(capability)
        if tier is None or rules.promotion_capability is None:
            raise ProvenanceError(
                f"{capability!r} is not a tier that serves only promoted weights",
                hint="the tiers under provenance.tiers: "
                + (", ".join(t.capability for t in rules.tiers) or "(none)"),
            )
        self._weights(digest)
        with self._engine.connect() as conn:
            spent = conn.execute(
                sa.select(provenance_promotions.c.id).where(
                    provenance_promotions.c.grant_id == grant_id
                )
            ).first()
        if spent is not None:
            raise ProvenanceError(
                f"grant {grant_id} was spent by promotion {spent.id}: each promotion needs "
                "its own approval"
            )
        problems = tier_problems(tier, self.evaluations(digest))
        if problems:
            raise ProvenanceError(
                f"{digest} may not be promoted to {capability!r}: " + "; ".join(problems),
                hint="register the evaluations the tier requires (provenance.tiers)",
            )
        grant = approving_grant(
            self._approvals,
            grant_id,
            what="promotion",
            capability=rules.promotion_capability,
            resource=promotion_resource(capability, digest),
            at=self._clock.now(),
            bound_to="this promotion",
        )
        report = self._lineage.verify(digest)
        if not report.ok:
            raise ProvenanceError(
                f"the lineage of {digest} does not verify: " + "; ".join(report.problems[:5])
            )
        counted = tuple(
            e.id
            for e in self.evaluations(digest)
            if e.evaluation in {lim.evaluation for lim in tier.evaluations}
        )
        return tier, grant.principal, counted, report

    def promotions(self, weights: str, *, capability: str | None = None) -> list[Promotion]:
        """The promotions of ``weights`` (to ``capability`` only, if given), oldest first."""
        d = parse_digest(weights)
        query = (
            sa.select(provenance_promotions)
            .where(provenance_promotions.c.weights == d)
            .order_by(provenance_promotions.c.log_index)
        )
        if capability is not None:
            query = query.where(provenance_promotions.c.capability == capability)
        with self._engine.connect() as conn:
            return [_promotion_from_row(r) for r in conn.execute(query)]


def _limits(tiers: Sequence[ServedTier], evaluation: str) -> list[tuple[ServedTier, float]]:
    """The tiers with a threshold on ``evaluation``, and the threshold."""
    return [
        (t, lim.below)
        for t in tiers
        for lim in t.evaluations
        if lim.evaluation == evaluation and lim.below is not None
    ]


def tier_problems(tier: ServedTier, evaluations: Sequence[Evaluation]) -> list[str]:
    """Why weights with ``evaluations`` may not serve in ``tier`` (empty: they may): a required
    evaluation missing, or the highest score at or above the tier's threshold."""
    best: dict[str, Evaluation] = {}
    for e in evaluations:
        if e.evaluation not in best or e.score > best[e.evaluation].score:
            best[e.evaluation] = e
    out = []
    for lim in tier.evaluations:
        top = best.get(lim.evaluation)
        if top is None:
            out.append(f"no {lim.evaluation} evaluation is registered")
        elif lim.below is not None and top.score >= lim.below:
            out.append(
                f"{lim.evaluation} scored {top.score:g} (evaluation {top.id} by {top.evaluator}), "
                f"at or above the tier's threshold {lim.below:g}"
            )
    return out


def serving_record_problems(
    history: ConstitutionHistory,
    evaluations: Sequence[Evaluation],
    promotions: Sequence[Promotion],
    entries: Mapping[int, bytes],
    grant_problems: Mapping[str, str | None],
    grants: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Check stored evaluations and promotions against their log entries: each envelope's
    signature under the evaluator keys of the constitution in force when it was registered,
    each row equal to its entry, each promotion's grant bound to it, of that version's
    promotion capability, and backed by approvals (the entry auditor's verdict)."""
    problems: list[str] = []
    for e in evaluations:
        body = _body(entries, e.log_index, _entries.EVALUATION)
        want = {
            "evaluation_id": e.id,
            "weights": e.weights,
            "evaluation": e.evaluation,
            "score": e.score,
            "evaluator": e.evaluator,
            "envelope_sha256": e.envelope_sha256,
        }
        if body is None or {k: body.get(k) for k in want} != want:
            problems.append(f"evaluation {e.id}: the stored row differs from its log entry")
            continue
        if hashlib.sha256(e.envelope).hexdigest() != e.envelope_sha256:
            problems.append(f"evaluation {e.id}: the stored envelope is not the one logged")
            continue
        c = history.at(e.log_index)
        if isinstance(c, str):
            problems.append(f"evaluation {e.id}: {c}")
            continue
        keys = c.provenance.signers(c.principals, c.provenance.evaluator_roles)
        try:
            env = parsed_envelope(e.envelope)
            st = parse_evaluation_statement(env.payload)
            signer = verified_signer(e.envelope, keys, payload_type=IN_TOTO_PAYLOAD_TYPE)
        except (InputError, ProvenanceError) as exc:
            problems.append(
                f"evaluation {e.id}: {exc.message} (evaluator keys of constitution version "
                f"{c.version}, in force when it was registered)"
            )
            continue
        if (signer, st.weights, st.evaluation, st.score) != (
            e.evaluator,
            e.weights,
            e.evaluation,
            e.score,
        ):
            problems.append(f"evaluation {e.id}: the envelope does not state the row")
    for p in promotions:
        body = _body(entries, p.log_index, _entries.PROMOTION)
        want_p = {
            "promotion_id": p.id,
            "weights": p.weights,
            "capability": p.capability,
            "grant_id": p.grant_id,
            "requester": p.requester,
            "evaluations": list(p.evaluations),
            "checkpoint_size": p.checkpoint_size,
        }
        if body is None or {k: body.get(k) for k in want_p} != want_p:
            problems.append(f"promotion {p.id}: the stored row differs from its log entry")
            continue
        problem = grant_problems.get(p.grant_id, "missing")
        if problem == "missing":
            problems.append(f"promotion {p.id}: grant {p.grant_id} has no entry in the log")
        elif problem is not None:
            problems.append(f"promotion {p.id}: grant {p.grant_id}: {problem}")
        c = history.at(p.log_index)
        if isinstance(c, str):
            problems.append(f"promotion {p.id}: {c}")
            continue
        grant = grants.get(p.grant_id)
        resource = promotion_resource(p.capability, p.weights)
        if grant is not None and (
            grant.get("resource") != resource
            or grant.get("capability") != c.provenance.promotion_capability
        ):
            problems.append(
                f"promotion {p.id}: grant {p.grant_id} is not a "
                f"{c.provenance.promotion_capability} grant bound to {resource}"
            )
    return problems


def _body(entries: Mapping[int, bytes], index: int, type_: str) -> dict[str, Any] | None:
    data = entries.get(index)
    if data is None:
        return None
    doc = orjson.loads(data)
    if doc.get("type") != type_:
        return None
    body: dict[str, Any] = doc["body"]
    return body


def _evaluation_from_row(row: Any) -> Evaluation:
    return Evaluation(
        id=row.id,
        weights=row.weights,
        evaluation=row.evaluation,
        score=row.score,
        evaluator=row.evaluator,
        envelope=bytes(row.envelope),
        envelope_sha256=row.envelope_sha256,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        log_index=row.log_index,
    )


def _promotion_from_row(row: Any) -> Promotion:
    try:
        evaluations = tuple(str(x) for x in orjson.loads(row.evaluations))
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ProvenanceError(
            f"the stored promotion {row.id} no longer parses: it was changed after registration"
        ) from exc
    return Promotion(
        id=row.id,
        weights=row.weights,
        capability=row.capability,
        grant_id=row.grant_id,
        requester=row.requester,
        registered_by=row.registered_by,
        evaluations=evaluations,
        checkpoint_size=row.checkpoint_size,
        registered_at=row.registered_at,
        log_index=row.log_index,
    )
