"""Run statements: in-toto v1 Statements with a SLSA provenance v1 predicate, read strictly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

from custodes.errors import InputError
from custodes.provenance import (
    SLSA_PROVENANCE_V1,
    RunInput,
    RunOutput,
    TrainingPlan,
    build_run_statement,
    definition_digest,
    parse_run_statement,
)

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
PLAN = TrainingPlan(
    (
        RunInput("dataset", "sha256:" + "a" * 64, "corpus"),
        RunInput("code", "sha256:" + "b" * 64, "trainer"),
    ),
    {"epochs": 3, "lr": 0.0001, "seed": 7},
)


def _statement() -> dict[str, object]:
    payload = build_run_statement(
        PLAN,
        [RunOutput("tuned", "sha256:" + "e" * 64)],
        builder="pipeline@lab",
        invocation_id="run-1",
        started_on=T0,
        finished_on=T0 + timedelta(hours=1),
    )
    doc: dict[str, object] = orjson.loads(payload)
    return doc


def test_round_trip() -> None:
    doc = _statement()
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == SLSA_PROVENANCE_V1
    # The predicate is SLSA provenance v1 as the in-toto library's own protobuf reads it.
    json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
    st = parse_run_statement(orjson.dumps(doc))
    assert st.plan_digest == PLAN.digest
    assert st.inputs == PLAN.inputs
    assert st.outputs == (RunOutput("tuned", "sha256:" + "e" * 64),)
    assert st.builder == "pipeline@lab"
    assert (st.started_on, st.finished_on) == (T0, T0 + timedelta(hours=1))


def test_plan_digest_is_over_the_build_definition() -> None:
    doc = _statement()
    predicate = doc["predicate"]
    assert isinstance(predicate, dict)
    assert definition_digest(predicate["buildDefinition"]) == PLAN.digest
    other = TrainingPlan(PLAN.inputs, {**PLAN.parameters, "epochs": 4})
    assert other.digest != PLAN.digest
    assert PLAN.resource == f"training-run:{PLAN.digest}"


def _mutate(path: list[str], value: object) -> bytes:
    doc = _statement()
    target: object = doc
    for key in path[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]  # type: ignore[index]
    if value is KeyError:
        del target[path[-1]]  # type: ignore[attr-defined]
    else:
        target[path[-1]] = value  # type: ignore[index]
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{", "not JSON"),
        (_mutate(["_type"], "https://in-toto.io/Statement/v0.1"), "in-toto v1"),
        (_mutate(["subject"], []), "in-toto v1"),
        (_mutate(["predicateType"], "https://slsa.dev/provenance/v0.2"), "SLSA provenance v1"),
        (_mutate(["predicate", "buildDefinition", "buildType"], "x"), "custodes training run"),
        (_mutate(["predicate", "surprise"], 1), "SLSA provenance v1 predicate"),
        (_mutate(["subject", "0", "digest", "sha256"], "ab"), "malformed digest"),
        (
            _mutate(["predicate", "buildDefinition", "resolvedDependencies"], []),
            "names its inputs",
        ),
        (
            _mutate(
                ["predicate", "buildDefinition", "resolvedDependencies", "0", "annotations"],
                {"role": "snacks"},
            ),
            "names its role",
        ),
        (
            _mutate(["predicate", "runDetails", "builder", "id"], "https://ci.example/x"),
            "custodes principal",
        ),
        (
            _mutate(["predicate", "runDetails", "metadata", "invocationId"], KeyError),
            "invocationId",
        ),
        (
            _mutate(["predicate", "runDetails", "metadata", "finishedOn"], "2000-01-01T00:00:00Z"),
            "finished before",
        ),
    ],
)
def test_refused(payload: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_run_statement(payload)


def test_duplicate_inputs_refused() -> None:
    twice = TrainingPlan((PLAN.inputs[0], PLAN.inputs[0]), {})
    payload = build_run_statement(
        twice,
        [RunOutput("t", "sha256:" + "e" * 64)],
        builder="p",
        invocation_id="r",
        started_on=T0,
        finished_on=T0,
    )
    with pytest.raises(InputError, match="listed twice"):
        parse_run_statement(payload)
