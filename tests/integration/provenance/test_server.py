"""``/provenance`` on a real server (uvicorn in its own process, the demo constitution): a
dataset, code, config and base weights registered over HTTP, a training run approved by two
organisations through ``/authority``, registered from the pipeline's signed envelope, its
lineage read as JSON and SVG and verified; and bad input refused with a clear 4xx."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.authority import SigningKey, new_request, sign_approval, sign_request
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_ENVELOPE_BYTES,
    FileManifest,
    RunInput,
    RunOutput,
    TrainingPlan,
    build_evaluation_statement,
    build_run_statement,
    hash_path,
    promotion_resource,
    sign_envelope,
)
from tests.support.demo_api import call, demo_server_with_keys
from tests.support.server import ServerProcess
from tests.unit.provenance.conftest import write_weights

ROOT = Path(__file__).resolve().parents[3]
KEYS = {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}
SVG = "{http://www.w3.org/2000/svg}"


def key(principal: str) -> SigningKey:
    return KEYS[principal.split("@")[0]]


@dataclass
class Deployment:
    srv: ServerProcess
    keys: dict[str, str]
    tmp: Path

    def post(self, path: str, body: Any, *, who: str = "dave@lab") -> httpx.Response:
        return call(self.srv, self.keys[who], "POST", path, body)

    def get(self, path: str, *, who: str = "dave@lab") -> httpx.Response:
        return call(self.srv, self.keys[who], "GET", path)

    def log_types(self, start: int) -> list[str]:
        r = httpx.get(
            self.srv.url("/log/entries"), params={"start": start, "end": start + 1000}, timeout=30
        )
        if r.status_code == 404:
            return []
        assert r.status_code == 200, r.text
        return [e["entry"]["type"] for e in r.json()["entries"]]

    def log_size(self) -> int:
        start = 0
        while True:
            got = len(self.log_types(start))
            if got < 1000:
                return start + got
            start += 1000

    def register_inputs(self, tag: str) -> TrainingPlan:
        """Register a dataset, code, config and base weights; the plan of a run on them."""
        data = self.tmp / f"data-{tag}"
        data.mkdir()
        (data / "train.jsonl").write_text(json.dumps({"text": f"hello {tag}"}) + "\n")
        base = hash_path(write_weights(self.tmp / f"base-{tag}", tag.encode()))
        bodies = {
            "dataset": {
                "kind": "dataset",
                "name": f"corpus-{tag}",
                "manifest": hash_path(data).to_document(),
            },
            "code": {
                "kind": "code",
                "name": "trainer",
                "digest": "sha256:" + (tag.encode().hex() * 64)[:64],
                "git_commit": "0" * 39 + "1",
            },
            "config": {"kind": "config", "name": "hparams", "digest": "sha256:" + "c" * 63 + tag},
            "base": {"kind": "weights", "name": f"base-{tag}", "manifest": base.to_document()},
        }
        digests = {}
        for role, body in bodies.items():
            r = self.post("/provenance/artifacts", body)
            assert r.status_code == 201, r.text
            assert r.json()["kind"] == body["kind"] and r.json()["registered_by"] == "dave@lab"
            digests[role] = r.json()["digest"]
        assert digests["base"] == base.digest
        return TrainingPlan(
            (
                RunInput("base-weights", digests["base"], "base"),
                RunInput("dataset", digests["dataset"], "corpus"),
                RunInput("code", digests["code"], "trainer"),
                RunInput("config", digests["config"], "hparams"),
            ),
            {"epochs": 3},
        )

    def approve(
        self,
        plan: TrainingPlan | None,
        *,
        capability: str = "training-write",
        resource: str | None = None,
        approvers: tuple[str, ...] = ("bob@lab", "dana@asi"),
    ) -> str:
        """dave@lab asks for the run (or ``capability`` on ``resource``); ``approvers``
        approve; the grant's id (empty if not granted)."""
        req = new_request(
            "escrow-read",
            constitution_version=1,
            requester="dave@lab",
            created=datetime.now(UTC),
            capability=capability,
            purpose="fine-tune on the reviewed corpus",
            duration_seconds=3600,
            resource=plan.resource if plan is not None else resource,
        )
        r = httpx.post(
            self.srv.url("/authority/requests"),
            json={"request": req, "signature": sign_request(req, key("dave@lab"))},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        record = r.json()
        for approver in approvers:
            _, sig = sign_approval(record["request"], key(approver))
            r = httpx.post(
                self.srv.url(f"/authority/requests/{record['id']}/approvals"),
                json={"approver": approver, "signature": sig},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            record = r.json()
        if approvers != ("bob@lab", "dana@asi"):
            return str(record.get("grant_id") or "")
        assert record["status"] == "granted", record
        grant: str = record["grant_id"]
        return grant

    def envelope(self, plan: TrainingPlan, produced: FileManifest, *, run: str) -> str:
        # Now: the run starts after its approval (a grant covers the run's start).
        start = datetime.now(UTC)
        payload = build_run_statement(
            plan,
            [RunOutput("tuned", produced.digest)],
            builder="pipeline@lab",
            invocation_id=run,
            started_on=start,
            finished_on=start + timedelta(seconds=1),
        )
        signed = sign_envelope(
            payload,
            payload_type=IN_TOTO_PAYLOAD_TYPE,
            key=key("pipeline@lab").private,
            keyid="pipeline@lab",
        )
        return signed.to_json().decode()


@dataclass
class Trained:
    plan: TrainingPlan
    grant: str
    produced: FileManifest
    envelope: str
    run: dict[str, Any]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("provenance-server")
    data = tmp / "data"
    data.mkdir()
    with demo_server_with_keys(data, ["dave@lab", "pipeline@lab", "erin@auditor"]) as (
        srv,
        keys,
    ):
        yield Deployment(srv, keys, tmp)


@pytest.fixture(scope="module")
def trained(deployment: Deployment) -> Trained:
    """The whole path once: inputs, approval, the signed run and its weights."""
    plan = deployment.register_inputs("a")
    grant = deployment.approve(plan)
    produced = hash_path(write_weights(deployment.tmp / "out-a", b"tuned-a"))
    envelope = deployment.envelope(plan, produced, run="run-a")
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/runs",
        {"envelope": envelope, "grant_id": grant, "manifests": [produced.to_document()]},
        who="pipeline@lab",
    )
    assert r.status_code == 201, r.text
    # One batch: the run and its weights, nothing else.
    assert deployment.log_types(before) == [
        "provenance.run.register/v1",
        "provenance.artifact.register/v1",
    ]
    return Trained(plan, grant, produced, envelope, r.json())


def test_a_run_approved_over_http_has_a_lineage_that_verifies(
    deployment: Deployment, trained: Trained
) -> None:
    run = trained.run
    assert run["grant_id"] == trained.grant and run["requester"] == "dave@lab"
    assert run["builder"] == "pipeline@lab" and run["plan_digest"] == trained.plan.digest
    assert run["outputs"] == [{"name": "tuned", "digest": trained.produced.digest}]
    assert deployment.get(f"/provenance/runs/{run['id']}").json() == run

    weights = deployment.get(f"/provenance/artifacts/{trained.produced.digest}")
    assert weights.status_code == 200, weights.text
    assert weights.json()["run_id"] == run["id"] and weights.json()["files"] == 4

    lineage = deployment.get(f"/provenance/lineage/{trained.produced.digest}")
    assert lineage.status_code == 200, lineage.text
    body = lineage.json()
    assert body["digest"] == trained.produced.digest
    assert len(body["nodes"]) == 5
    assert body["nodes"][0]["artifact"]["digest"] == trained.produced.digest
    assert sorted(body["roots"]) == sorted(i.digest for i in trained.plan.inputs)
    by_digest = {n["artifact"]["digest"]: n for n in body["nodes"]}
    assert {i["digest"] for i in body["nodes"][0]["inputs"]} == set(body["roots"])
    assert all(by_digest[d]["run"] is None and by_digest[d]["inputs"] == [] for d in body["roots"])

    picture = deployment.get(f"/provenance/lineage/{trained.produced.digest}/picture.svg")
    assert picture.status_code == 200
    assert picture.headers["content-type"].startswith("image/svg+xml")
    svg = ET.fromstring(picture.content)
    assert svg.tag == f"{SVG}svg"
    texts = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert "corpus-a" in texts and "base-a" in texts

    verified = deployment.post(f"/provenance/verify/{trained.produced.digest}", None)
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True, verified.json()
    assert verified.json()["artifacts"] == 5 and verified.json()["runs"] == 1
    assert verified.json()["problems"] == []


def test_no_key_is_401(deployment: Deployment, trained: Trained) -> None:
    d = trained.produced.digest
    for method, path in [
        ("GET", f"/provenance/artifacts/{d}"),
        ("GET", f"/provenance/lineage/{d}"),
        ("GET", f"/provenance/lineage/{d}/picture.svg"),
        ("POST", f"/provenance/verify/{d}"),
        ("POST", "/provenance/runs"),
        ("POST", "/provenance/artifacts"),
        ("POST", "/provenance/evaluations"),
        ("POST", "/provenance/promotions"),
        ("GET", f"/provenance/weights/{d}/evaluations"),
        ("GET", f"/provenance/weights/{d}/promotions"),
        ("GET", f"/provenance/weights/{d}/serving/tuned"),
    ]:
        r = call(deployment.srv, None, method, path, {} if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)
        r = call(deployment.srv, "cus_not-a-key", method, path, {} if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha512:" + "a" * 64,
        "sha256:" + "a" * 64 + "0",
        "md5:x",
    ],
)
def test_a_bad_digest_in_the_path_is_422(deployment: Deployment, digest: str) -> None:
    for path in (f"/provenance/artifacts/{digest}", f"/provenance/lineage/{digest}"):
        r = deployment.get(path)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["where"] == "path.digest"
    assert deployment.post(f"/provenance/verify/{digest}", None).status_code == 422


def test_unknown_digests_and_runs_are_404(deployment: Deployment) -> None:
    r = deployment.get("/provenance/artifacts/sha256:" + "9" * 64)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert deployment.get("/provenance/runs/" + "9" * 32).status_code == 404
    r = deployment.get("/provenance/lineage/sha256:" + "9" * 64)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "broken_lineage"
    assert r.json()["error"]["message"] == "sha256:" + "9" * 64 + " is not registered"


def test_an_unknown_field_is_422_and_logs_nothing(deployment: Deployment) -> None:
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/artifacts",
        {"kind": "config", "name": "x", "digest": "sha256:" + "e" * 64, "approved": True},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["where"] == "body.approved"
    r = deployment.post("/provenance/runs", {"envelope": "{}", "grant_id": "g", "extra": 1})
    assert r.status_code == 422, r.text
    r = deployment.post(
        "/provenance/artifacts", {"kind": "model", "name": "x", "digest": "sha256:" + "e" * 64}
    )
    assert r.status_code == 422 and r.json()["error"]["where"] == "body.kind"
    assert deployment.log_size() == before


def test_a_duplicate_artifact_is_409(deployment: Deployment, trained: Trained) -> None:
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/artifacts",
        {"kind": "weights", "name": "again", "manifest": trained.produced.to_document()},
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "duplicate_artifact"
    assert trained.produced.digest in r.json()["error"]["message"]
    assert "provenance.artifact.register/v1" not in deployment.log_types(before)


def test_a_spent_grant_is_refused_and_the_refusal_logged(
    deployment: Deployment, trained: Trained
) -> None:
    other = hash_path(write_weights(deployment.tmp / "out-spent", b"tuned-spent"))
    envelope = deployment.envelope(trained.plan, other, run="run-again")
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/runs", {"envelope": envelope, "grant_id": trained.grant}, who="pipeline@lab"
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "provenance_refused"
    assert f"grant {trained.grant} was spent by run {trained.run['id']}" in error["message"]
    assert deployment.log_types(before) == ["provenance.refused/v1"]
    assert deployment.get(f"/provenance/artifacts/{other.digest}").status_code == 404


def test_a_resubmitted_envelope_is_refused(deployment: Deployment, trained: Trained) -> None:
    r = deployment.post(
        "/provenance/runs",
        {"envelope": trained.envelope, "grant_id": trained.grant},
        who="pipeline@lab",
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "provenance_refused"


def test_a_run_signed_by_someone_else_is_refused(deployment: Deployment) -> None:
    plan = deployment.register_inputs("b")
    grant = deployment.approve(plan)
    produced = hash_path(write_weights(deployment.tmp / "out-b", b"tuned-b"))
    doc = json.loads(deployment.envelope(plan, produced, run="run-b"))
    forged = sign_envelope(
        base64.b64decode(doc["payload"]),
        payload_type=IN_TOTO_PAYLOAD_TYPE,
        key=key("dave@lab").private,
        keyid="pipeline@lab",
    ).to_json()
    before = deployment.log_size()
    r = deployment.post("/provenance/runs", {"envelope": forged.decode(), "grant_id": grant})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "provenance_refused"
    assert deployment.log_types(before) == ["provenance.refused/v1"]
    # The grant is not spent by the refusal: the genuine envelope still registers.
    genuine = deployment.envelope(plan, produced, run="run-b")
    r = deployment.post("/provenance/runs", {"envelope": genuine, "grant_id": grant})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("envelope", "status", "where"),
    [
        ("not json at all", 400, "envelope"),
        ("[]", 400, "envelope"),
        (
            '{"payload": "!!", "payloadType": "application/vnd.in-toto+json", "signatures": []}',
            400,
            "envelope.payload",
        ),
        ('{"payloadType": "application/vnd.in-toto+json", "signatures": []}', 400, "envelope"),
        ('{"payload": "", "payloadType": "x", "signatures": []}', 400, "envelope.signatures"),
        ('{"a":' * 100 + "1" + "}" * 100, 413, "envelope"),
    ],
)
def test_a_garbage_envelope_is_refused_before_anything_is_logged(
    deployment: Deployment, trained: Trained, envelope: str, status: int, where: str
) -> None:
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/runs", {"envelope": envelope, "grant_id": trained.grant}, who="pipeline@lab"
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == ("invalid_input" if status == 400 else "too_large")
    assert error["where"].startswith(where), error
    assert deployment.log_size() == before


def test_a_manifest_path_with_dotdot_is_400(deployment: Deployment, trained: Trained) -> None:
    doc = trained.produced.to_document()
    doc["resources"][0]["name"] = "../../etc/passwd"
    for path, body in [
        ("/provenance/artifacts", {"kind": "weights", "name": "evil", "manifest": doc}),
        (
            "/provenance/runs",
            {"envelope": trained.envelope, "grant_id": trained.grant, "manifests": [doc]},
        ),
    ]:
        r = deployment.post(path, body, who="pipeline@lab")
        assert r.status_code == 400, r.text
        assert ".." in r.json()["error"]["message"] + str(r.json()["error"].get("expected"))
        assert "resources[0]" in r.json()["error"]["where"]


def test_an_envelope_over_1_mib_is_422(deployment: Deployment, trained: Trained) -> None:
    huge = json.dumps({"payload": "A" * MAX_ENVELOPE_BYTES, "payloadType": "x", "signatures": []})
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/runs", {"envelope": huge, "grant_id": trained.grant}, who="pipeline@lab"
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["where"] == "body.envelope"
    assert deployment.log_size() == before


def _evaluation(weights: str, evaluation: str, score: float, *, signer: str, evaluator: str) -> str:
    payload = build_evaluation_statement(
        weights,
        evaluation=evaluation,
        score=score,
        evaluator=evaluator,
        finished_on=datetime.now(UTC),
        details={"suite": "test"},
    )
    return (
        sign_envelope(
            payload, payload_type=IN_TOTO_PAYLOAD_TYPE, key=key(signer).private, keyid=evaluator
        )
        .to_json()
        .decode()
    )


def test_weights_are_evaluated_promoted_and_crossed_over_http(
    deployment: Deployment, trained: Trained
) -> None:
    d = trained.produced.digest
    serving = f"/provenance/weights/{d}/serving/tuned"
    verdict = deployment.get(serving).json()
    assert verdict["approved"] is False and verdict["reasons"] == [
        f"{d} is not promoted to 'tuned'"
    ]
    # An evaluation signed by someone the constitution does not let evaluate: refused, logged.
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/evaluations",
        {"envelope": _evaluation(d, "cyber-offence", 0.0, signer="dave@lab", evaluator="dave@lab")},
        who="erin@auditor",
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "provenance_refused", r.text
    assert "none of whom may sign it" in r.json()["error"]["message"]
    assert deployment.log_types(before) == ["provenance.refused/v1"]
    for garbage in ({"envelope": "{}"}, {"envelope": "x" * 10, "more": 1}):
        r = deployment.post("/provenance/evaluations", garbage, who="erin@auditor")
        assert r.status_code in (400, 422), r.text
    # The promotion needs the tier's evaluations first.
    grant = deployment.approve(
        None, capability="weights-promotion", resource=promotion_resource("tuned", d)
    )
    body = {"weights": d, "capability": "tuned", "grant_id": grant}
    r = deployment.post("/provenance/promotions", body)
    assert r.status_code == 422, r.text
    assert "no cyber-offence evaluation is registered" in r.json()["error"]["message"]
    for evaluation, score in (("cyber-offence", 0.1), ("weapons-uplift", 0.0)):
        r = deployment.post(
            "/provenance/evaluations",
            {
                "envelope": _evaluation(
                    d, evaluation, score, signer="erin", evaluator="erin@auditor"
                )
            },
            who="erin@auditor",
        )
        assert r.status_code == 201, r.text
        assert r.json()["evaluator"] == "erin@auditor" and r.json()["score"] == score
    assert [
        e["evaluation"] for e in deployment.get(f"/provenance/weights/{d}/evaluations").json()
    ] == [
        "cyber-offence",
        "weapons-uplift",
    ]
    # One approval (the lab's) is not the serving rule's quorum: nothing granted to spend.
    lone = deployment.approve(
        None,
        capability="weights-promotion",
        resource=promotion_resource("tuned", d),
        approvers=("bob@lab",),
    )
    assert lone == ""
    before = deployment.log_size()
    r = deployment.post("/provenance/promotions", body)
    assert r.status_code == 201, r.text
    assert r.json()["capability"] == "tuned" and r.json()["requester"] == "dave@lab"
    assert deployment.log_types(before) == ["provenance.promotion/v1"]
    assert deployment.get(f"/provenance/weights/{d}/promotions").json()[0]["id"] == r.json()["id"]
    r = deployment.post("/provenance/promotions", body)
    assert r.status_code == 422 and "was spent by promotion" in r.json()["error"]["message"]
    assert deployment.get(serving).json()["approved"] is True
    verified = deployment.post(f"/provenance/verify/{d}", None).json()
    assert verified["ok"] is True, verified
    # An overseer's evaluation crosses the tier's threshold: the notice is in the same batch.
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/evaluations",
        {"envelope": _evaluation(d, "cyber-offence", 0.5, signer="dana", evaluator="dana@asi")},
        who="erin@auditor",
    )
    assert r.status_code == 201, r.text
    assert deployment.log_types(before) == [
        "provenance.evaluation.register/v1",
        "provenance.threshold_crossed/v1",
    ]
    verdict = deployment.get(serving).json()
    assert verdict["approved"] is False
    assert "cyber-offence scored 0.5" in verdict["reasons"][0]
    r = deployment.get(f"/provenance/weights/{d}/serving/nowhere!")
    assert r.status_code == 422
