"""Capability evaluations as in-toto Statements (v1), signed by whoever ran them.

An evaluation says: the weights with this digest (the statement's one ``subject``) scored this
on that evaluation (cyber-offence, weapons-uplift, a loyalty audit, ...), run by this principal,
finished then. The predicate is custodes' own (``EVALUATION_PREDICATE``: the in-toto framework
leaves predicates to their producers; no standard one carries a capability score), inside the
framework's Statement, in a DSSE envelope signed by the evaluator's key (``keyid``: the
principal id), as run statements are. ``details`` carries what the evaluation itself reports
(a suite version, a loyalty audit's sentence and findings) as a bounded JSON object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Error as ProtobufError
from in_toto_attestation.v1 import statement as intoto
from in_toto_attestation.v1 import statement_pb2

from custodes.bounds import check_json_bounds
from custodes.errors import InputError
from custodes.log import format_time, parse_time
from custodes.provenance._digests import hex_of, parse_digest

__all__ = [
    "EVALUATION_PREDICATE",
    "EvaluationStatement",
    "build_evaluation_statement",
    "parse_evaluation_statement",
]

EVALUATION_PREDICATE = "https://custodes.dev/provenance/evaluation/v1"
_MAX_SCORE = 1e9
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@:/-")


@dataclass(frozen=True)
class EvaluationStatement:
    """A checked evaluation statement."""

    weights: str
    evaluation: str
    score: float
    evaluator: str
    finished_on: datetime
    details: Mapping[str, Any] = field(default_factory=dict)


def build_evaluation_statement(
    weights: str,
    *,
    evaluation: str,
    score: float,
    evaluator: str,
    finished_on: datetime,
    details: Mapping[str, Any] | None = None,
) -> bytes:
    """The statement's JSON (the DSSE payload) that ``evaluator`` scored ``weights``.

    Raises:
        InputError: a malformed digest, evaluation id or score.
    """
    st = EvaluationStatement(
        parse_digest(weights, where="weights"),
        _evaluation_id(evaluation, where="evaluation"),
        _score(score, where="score"),
        evaluator,
        finished_on,
        dict(details or {}),
    )
    subject = intoto.ResourceDescriptor(name="weights", digest={"sha256": hex_of(st.weights)}).pb
    predicate = {
        "evaluation": st.evaluation,
        "score": st.score,
        "evaluator": f"urn:custodes:principal:{evaluator}",
        "finishedOn": format_time(finished_on),
        "details": dict(st.details),
    }
    check_json_bounds(predicate, where="details")
    statement = intoto.Statement([subject], EVALUATION_PREDICATE, predicate)
    statement.validate()
    text: str = json_format.MessageToJson(statement.pb, indent=None)
    return text.encode("utf-8")


def parse_evaluation_statement(payload: bytes, *, where: str = "statement") -> EvaluationStatement:
    """Check a DSSE payload as an evaluation statement and read it.

    Raises:
        InputError: not JSON, not an in-toto v1 Statement of one subject with the evaluation
            predicate, or a field out of its bounds (an id, a score that is not a finite number
            within ±1e9, a time).
    """
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the payload is not JSON: {exc}", where=where) from exc
    check_json_bounds(doc, where=where)
    try:
        pb = json_format.ParseDict(doc, statement_pb2.Statement())
        intoto.Statement.copy_from_pb(pb).validate()
    except (ProtobufError, json_format.Error, ValueError, TypeError) as exc:
        raise InputError(f"not an in-toto v1 Statement: {exc}", where=where) from exc
    if pb.predicate_type != EVALUATION_PREDICATE:
        raise InputError(
            "the statement is not a capability evaluation",
            where=f"{where}.predicateType",
            expected=EVALUATION_PREDICATE,
            actual=pb.predicate_type[:200],
        )
    subjects = doc["subject"]
    if len(subjects) != 1:
        raise InputError(
            "an evaluation is of one set of weights", where=f"{where}.subject", expected="1"
        )
    weights = parse_digest(
        (subjects[0].get("digest") or {}).get("sha256"), where=f"{where}.subject[0].digest.sha256"
    )
    predicate = doc["predicate"]
    at = f"{where}.predicate"
    evaluator = str(predicate.get("evaluator", ""))
    if not evaluator.startswith("urn:custodes:principal:") or len(evaluator) > 300:
        raise InputError(
            "the evaluator is not a custodes principal",
            where=f"{at}.evaluator",
            expected="urn:custodes:principal:<principal id>",
            actual=evaluator[:200],
        )
    details = predicate.get("details", {})
    if not isinstance(details, dict):
        raise InputError("details is a JSON object", where=f"{at}.details")
    return EvaluationStatement(
        weights=weights,
        evaluation=_evaluation_id(predicate.get("evaluation"), where=f"{at}.evaluation"),
        score=_score(predicate.get("score"), where=f"{at}.score"),
        evaluator=evaluator.removeprefix("urn:custodes:principal:"),
        finished_on=parse_time(str(predicate.get("finishedOn", "")), where=f"{at}.finishedOn"),
        details=details,
    )


def _evaluation_id(value: object, *, where: str) -> str:
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 128
        or not value[0].isalnum()
        or set(value) - _ID_CHARS
    ):
        raise InputError(
            "an evaluation id",
            where=where,
            expected="an id of provenance.evaluations (letters, digits, . _ @ : / -)",
            actual=repr(value)[:80],
        )
    return value


def _score(value: object, *, where: str) -> float:
    # bool is an int: true is not a score.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("a score is a number", where=where, actual=repr(value)[:80])
    score = float(value)
    if not math.isfinite(score) or abs(score) > _MAX_SCORE:
        raise InputError(
            "a score is a finite number", where=where, expected="within ±1e9", actual=str(value)
        )
    return score
