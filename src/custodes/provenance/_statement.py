"""Training runs as in-toto Statements (v1) with a SLSA Provenance v1 predicate.

The pipeline states what it built: the produced weights are the statement's ``subject``
(digests of their model-signing manifests); the predicate's ``buildDefinition`` names the inputs
as ``resolvedDependencies`` (base weights, datasets, code, configuration, each by digest with
its role in ``annotations.role``) and the approved plan in ``externalParameters``. The run is
approved before it starts: approvers sign a request whose resource is the digest of the
``buildDefinition`` (RFC 8785 canonical JSON), so the statement can only describe the build
they approved.

Built and checked with the in-toto attestation library (``in_toto_attestation.v1.statement``
and the SLSA provenance v1 protobuf), so the JSON is the framework's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import orjson
import rfc8785
from google.protobuf import json_format
from google.protobuf.message import Error as ProtobufError
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement as intoto
from in_toto_attestation.v1 import statement_pb2

from custodes.bounds import check_json_bounds
from custodes.errors import InputError
from custodes.log import canonical_json, format_time, parse_time
from custodes.provenance._digests import hex_of, parse_digest

__all__ = [
    "BUILD_TYPE",
    "INPUT_ROLES",
    "SLSA_PROVENANCE_V1",
    "InputRole",
    "RunInput",
    "RunOutput",
    "RunStatement",
    "TrainingPlan",
    "build_run_statement",
    "builder_uri",
    "definition_digest",
    "parse_run_statement",
    "run_resource",
]

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://custodes.dev/provenance/training-run/v1"
InputRole = Literal["base-weights", "dataset", "code", "config"]
INPUT_ROLES: tuple[str, ...] = get_args(InputRole)
_MAX_INPUTS = 256
_MAX_OUTPUTS = 16


@dataclass(frozen=True)
class RunInput:
    """An input of a run: a registered artifact's digest and the role it plays."""

    role: InputRole
    digest: str
    name: str = ""


@dataclass(frozen=True)
class RunOutput:
    """Weights a run produced: a name and the digest of their model-signing manifest."""

    name: str
    digest: str


@dataclass(frozen=True)
class TrainingPlan:
    """What approvers approve before a run starts: inputs and parameters (SLSA
    ``buildDefinition``). ``resource`` is what the authority request names."""

    inputs: tuple[RunInput, ...]
    parameters: Mapping[str, Any]
    build_type: str = BUILD_TYPE

    def build_definition(self) -> dict[str, Any]:
        """The SLSA v1 ``buildDefinition`` of this plan."""
        return {
            "buildType": self.build_type,
            "externalParameters": dict(self.parameters),
            "resolvedDependencies": [
                {
                    "name": i.name or i.role,
                    "digest": {"sha256": hex_of(i.digest)},
                    "annotations": {"role": i.role},
                }
                for i in self.inputs
            ],
        }

    @property
    def digest(self) -> str:
        return definition_digest(self.build_definition())

    @property
    def resource(self) -> str:
        """The authority resource a run approval is bound to: ``training-run:<digest>``."""
        return run_resource(self.digest)


def definition_digest(definition: Mapping[str, Any]) -> str:
    """``sha256:`` of the RFC 8785 canonical JSON of a ``buildDefinition``."""
    try:
        return "sha256:" + hashlib.sha256(canonical_json(dict(definition))).hexdigest()
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise InputError(f"the build definition has no canonical JSON: {exc}") from exc


def run_resource(plan_digest: str) -> str:
    return f"training-run:{plan_digest}"


@dataclass(frozen=True)
class RunStatement:
    """A checked training-run statement."""

    outputs: tuple[RunOutput, ...]
    inputs: tuple[RunInput, ...]
    plan_digest: str
    builder: str
    invocation_id: str
    started_on: datetime
    finished_on: datetime


def builder_uri(principal: str) -> str:
    """The SLSA ``builder.id`` of a pipeline workload: a URN naming its principal."""
    return f"urn:custodes:principal:{principal}"


def build_run_statement(
    plan: TrainingPlan,
    outputs: Sequence[RunOutput],
    *,
    builder: str,
    invocation_id: str,
    started_on: datetime,
    finished_on: datetime,
) -> bytes:
    """The statement's JSON (the DSSE payload) for a run of ``plan`` by principal ``builder``."""
    subjects = [
        intoto.ResourceDescriptor(name=o.name, digest={"sha256": hex_of(o.digest)}).pb
        for o in outputs
    ]
    predicate = {
        "buildDefinition": plan.build_definition(),
        "runDetails": {
            "builder": {"id": builder_uri(builder)},
            "metadata": {
                "invocationId": invocation_id,
                "startedOn": format_time(started_on),
                "finishedOn": format_time(finished_on),
            },
        },
    }
    st = intoto.Statement(subjects, SLSA_PROVENANCE_V1, predicate)
    st.validate()
    text: str = json_format.MessageToJson(st.pb, indent=None)
    return text.encode("utf-8")


def parse_run_statement(
    payload: bytes, *, where: str = "statement", check_schema: bool = True
) -> RunStatement:
    """Check a DSSE payload as a training-run statement and read it.

    ``check_schema=False`` skips the in-toto and SLSA protobuf checks (a third of the time):
    for statements read back from the registry, which passed them at registration and whose
    envelope digest is in the log.

    Raises:
        InputError: not JSON, not an in-toto v1 Statement, not a SLSA provenance v1
            predicate of a custodes training run, or fields out of their bounds.
    """
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the payload is not JSON: {exc}", where=where) from exc
    check_json_bounds(doc, where=where)
    if check_schema:
        _check_schema(doc, where=where)
    elif not isinstance(doc, dict) or doc.get("predicateType") != SLSA_PROVENANCE_V1:
        raise InputError("not a SLSA provenance v1 statement", where=where)
    predicate = doc["predicate"]
    definition = predicate.get("buildDefinition")
    if not isinstance(definition, dict) or definition.get("buildType") != BUILD_TYPE:
        raise InputError(
            "not a custodes training run",
            where=f"{where}.predicate.buildDefinition.buildType",
            expected=BUILD_TYPE,
        )
    inputs = _inputs(definition.get("resolvedDependencies", []), where=where)
    outputs = _outputs(doc["subject"], where=where)
    run_details = predicate.get("runDetails") or {}
    builder = str((run_details.get("builder") or {}).get("id", ""))
    if not builder.startswith("urn:custodes:principal:"):
        raise InputError(
            "the builder is not a custodes principal",
            where=f"{where}.predicate.runDetails.builder.id",
            expected="urn:custodes:principal:<principal id>",
            actual=builder[:200],
        )
    metadata = run_details.get("metadata") or {}
    invocation = metadata.get("invocationId")
    if not isinstance(invocation, str) or not 0 < len(invocation) <= 256:
        raise InputError(
            "a run names its invocationId (at most 256 characters)",
            where=f"{where}.predicate.runDetails.metadata.invocationId",
        )
    started = parse_time(
        str(metadata.get("startedOn", "")), where=f"{where}.runDetails.metadata.startedOn"
    )
    finished = parse_time(
        str(metadata.get("finishedOn", "")), where=f"{where}.runDetails.metadata.finishedOn"
    )
    if finished < started:
        raise InputError("the run finished before it started", where=f"{where}.runDetails")
    return RunStatement(
        outputs=outputs,
        inputs=inputs,
        plan_digest=definition_digest(definition),
        builder=builder.removeprefix("urn:custodes:principal:"),
        invocation_id=invocation,
        started_on=started,
        finished_on=finished,
    )


def _check_schema(doc: Any, *, where: str) -> None:
    try:
        pb = json_format.ParseDict(doc, statement_pb2.Statement())
        intoto.Statement.copy_from_pb(pb).validate()
    except (ProtobufError, json_format.Error, ValueError, TypeError) as exc:
        raise InputError(f"not an in-toto v1 Statement: {exc}", where=where) from exc
    if pb.predicate_type != SLSA_PROVENANCE_V1:
        raise InputError(
            "the statement's predicate is not SLSA provenance v1",
            where=f"{where}.predicateType",
            expected=SLSA_PROVENANCE_V1,
            actual=pb.predicate_type[:200],
        )
    try:
        json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
    except (ProtobufError, json_format.Error, ValueError, TypeError) as exc:
        raise InputError(f"not a SLSA provenance v1 predicate: {exc}", where=where) from exc


def _inputs(deps: object, *, where: str) -> tuple[RunInput, ...]:
    at = f"{where}.predicate.buildDefinition.resolvedDependencies"
    if not isinstance(deps, list) or not 0 < len(deps) <= _MAX_INPUTS:
        raise InputError(
            "a run names its inputs", where=at, expected=f"1 to {_MAX_INPUTS} dependencies"
        )
    out: list[RunInput] = []
    for i, d in enumerate(deps):
        role = ((d.get("annotations") or {}) if isinstance(d, dict) else {}).get("role")
        if role not in INPUT_ROLES:
            raise InputError(
                "an input names its role",
                where=f"{at}[{i}].annotations.role",
                expected=" or ".join(INPUT_ROLES),
                actual=repr(role)[:50],
            )
        digest = parse_digest((d.get("digest") or {}).get("sha256"), where=f"{at}[{i}].digest")
        out.append(RunInput(role, digest, str(d.get("name", ""))[:256]))
    if len({i.digest for i in out}) != len(out):
        raise InputError("an input is listed twice", where=at)
    return tuple(out)


def _outputs(subjects: list[dict[str, Any]], *, where: str) -> tuple[RunOutput, ...]:
    if len(subjects) > _MAX_OUTPUTS:
        raise InputError(
            "too many subjects", where=f"{where}.subject", expected=f"at most {_MAX_OUTPUTS}"
        )
    out = []
    for i, s in enumerate(subjects):
        name = s.get("name", "")
        if not isinstance(name, str) or len(name) > 256:
            raise InputError("a subject's name is at most 256 chars", where=f"{where}.subject[{i}]")
        digest = parse_digest(
            (s.get("digest") or {}).get("sha256"), where=f"{where}.subject[{i}].digest.sha256"
        )
        out.append(RunOutput(name, digest))
    if len({o.digest for o in out}) != len(out):
        raise InputError("a subject is listed twice", where=f"{where}.subject")
    return tuple(out)
