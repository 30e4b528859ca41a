"""A loyalty audit's report becomes the weights' ``loyalty-audit`` evaluation on a real server.

``custodes audit evaluation REPORT --sign-key K --evaluator ID --out E`` writes the DSSE
envelope; it is posted unchanged to ``POST /provenance/evaluations`` (issue 17's route) of a
uvicorn server on the demo constitution over SQLite, against weights registered there from an
approved training run. The registry checks the evaluator may sign, records it against the
weights and logs it; a report signed by someone who may not evaluate, and an envelope changed
after signing, are refused.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.audits import SignedReport
from custodes.cli import main
from custodes.log import format_time
from tests.integration.provenance.test_server import (  # noqa: F401  (fixtures)
    Deployment,
    Trained,
    deployment,
    key,
    trained,
)
from tests.unit.audits.test_probes_and_reports import _report

ROOT = Path(__file__).resolve().parents[3]
KEYS = ROOT / "examples" / "keys"


def _signed_report(weights: str, signer: str, path: Path) -> SignedReport:
    report = dataclasses.replace(
        _report({0: 2.0}), weights_digest=weights, created=format_time(datetime.now(UTC))
    )
    signed = report.sign(key(signer))
    path.write_bytes(signed.to_json())
    return signed


def _evaluation_file(
    report: Path, signer: str, evaluator: str, out: Path, capsys: pytest.CaptureFixture[str]
) -> bytes:
    args = ["audit", "evaluation", str(report), "--sign-key", str(KEYS / f"{signer}.key")]
    assert main([*args, "--evaluator", evaluator, "--out", str(out)]) == 0
    assert f"signed evaluation written to {out}" in capsys.readouterr().out
    return out.read_bytes()


def test_the_signed_report_is_recorded_as_the_weights_loyalty_audit(
    deployment: Deployment,  # noqa: F811
    trained: Trained,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = trained.produced.digest
    signed = _signed_report(weights, "erin@auditor", tmp_path / "report.json")
    envelope = _evaluation_file(
        tmp_path / "report.json", "erin", "erin@auditor", tmp_path / "evaluation.json", capsys
    )
    before = deployment.log_size()
    r = deployment.post(
        "/provenance/evaluations", {"envelope": envelope.decode()}, who="erin@auditor"
    )
    assert r.status_code == 201, r.text
    recorded = r.json()
    assert (recorded["evaluation"], recorded["weights"], recorded["evaluator"]) == (
        "loyalty-audit",
        weights,
        "erin@auditor",
    )
    assert recorded["score"] == len(signed.report["findings"]) == 1
    assert recorded["registered_by"] == "erin@auditor"
    assert recorded["envelope_sha256"] == hashlib.sha256(envelope).hexdigest()
    assert deployment.log_types(before)[0] == "provenance.evaluation.register/v1"
    listed = deployment.get(f"/provenance/weights/{weights}/evaluations").json()
    assert [e["id"] for e in listed if e["evaluation"] == "loyalty-audit"] == [recorded["id"]]
    # The statement names the report it stands for.
    payload = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    assert payload["predicate"]["details"]["report_sha256"] == signed.sha256


def test_an_audit_by_a_non_evaluator_or_a_changed_envelope_is_refused(
    deployment: Deployment,  # noqa: F811
    trained: Trained,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = trained.produced.digest
    # dave@lab signs a report and its evaluation: the constitution does not let him evaluate.
    _signed_report(weights, "dave@lab", tmp_path / "dave.json")
    by_dave = _evaluation_file(
        tmp_path / "dave.json", "dave", "dave@lab", tmp_path / "dave-evaluation.json", capsys
    )
    before = deployment.log_size()
    r = deployment.post("/provenance/evaluations", {"envelope": by_dave.decode()}, who="dave@lab")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "provenance_refused"
    assert "none of whom may sign it" in r.json()["error"]["message"]
    assert deployment.log_types(before) == ["provenance.refused/v1"]
    # erin's evaluation with its score changed after signing: the signature no longer covers it.
    _signed_report(weights, "erin@auditor", tmp_path / "erin.json")
    envelope = json.loads(
        _evaluation_file(
            tmp_path / "erin.json", "erin", "erin@auditor", tmp_path / "erin-eval.json", capsys
        )
    )
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["score"] = 0
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    count = len(deployment.get(f"/provenance/weights/{weights}/evaluations").json())
    r = deployment.post(
        "/provenance/evaluations", {"envelope": json.dumps(envelope)}, who="erin@auditor"
    )
    assert r.status_code in (400, 422), r.text
    assert len(deployment.get(f"/provenance/weights/{weights}/evaluations").json()) == count
