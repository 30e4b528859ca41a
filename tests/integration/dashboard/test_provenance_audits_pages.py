"""The provenance and audit report pages on a real server: a lineage registered over HTTP
(four inputs, a training run approved by two organisations, its weights) drawn as a graph and
checked against the log; audit reports logged by an auditor, each signature checked, a forged
one and one signed by another key shown as alarms; bad input answered with a page, never a 500."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785

from custodes.audits import REPORT, SignedReport, log_report, report_entry, report_message
from custodes.authority import SigningKey, new_request, sign_approval, sign_request
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    RunInput,
    RunOutput,
    TrainingPlan,
    build_run_statement,
    hash_path,
    sign_envelope,
)
from tests.support.server import ServerProcess
from tests.unit.provenance.conftest import write_weights

ROOT = Path(__file__).resolve().parents[3]


def _key(principal: str) -> SigningKey:
    return SigningKey.from_file(ROOT / "examples" / "keys" / f"{principal.split('@')[0]}.key")


@dataclass(frozen=True)
class Lineage:
    inputs: dict[str, str]  # role -> digest
    weights: str
    run: str
    grant: str


def _post(server: ServerProcess, key: str, path: str, body: object) -> httpx.Response:
    return httpx.post(
        server.url(path), json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


@pytest.fixture(scope="module")
def lineage(
    server: ServerProcess, api_key: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Lineage:
    tmp = tmp_path_factory.mktemp("lineage")
    data = tmp / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(json.dumps({"text": "<b>hello</b>"}) + "\n")
    base = hash_path(write_weights(tmp / "base", b"base"))
    bodies = {
        "dataset": {
            "kind": "dataset",
            "name": "corpus <x>",
            "manifest": hash_path(data).to_document(),
        },
        "code": {"kind": "code", "name": "trainer", "digest": "sha256:" + "d" * 64},
        "config": {"kind": "config", "name": "hparams", "digest": "sha256:" + "e" * 64},
        "base-weights": {"kind": "weights", "name": "base", "manifest": base.to_document()},
    }
    digests = {}
    for role, body in bodies.items():
        made = _post(server, api_key("dave@lab"), "/provenance/artifacts", body)
        assert made.status_code == 201, made.text
        digests[role] = made.json()["digest"]
    plan = TrainingPlan(
        tuple(RunInput(role, d, role) for role, d in digests.items()),  # type: ignore[arg-type]
        {"epochs": 1},
    )
    version = httpx.get(server.url("/constitution"), timeout=30).json()["version"]
    req = new_request(
        "escrow-read",
        constitution_version=int(version),
        requester="dave@lab",
        created=datetime.now(UTC),
        capability="training-write",
        purpose="fine-tune on the reviewed corpus",
        duration_seconds=3600,
        resource=plan.resource,
    )
    made = httpx.post(
        server.url("/authority/requests"),
        json={"request": req, "signature": sign_request(req, _key("dave@lab"))},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    record = made.json()
    for approver in ("bob@lab", "dana@asi"):
        _, sig = sign_approval(record["request"], _key(approver))
        approved = httpx.post(
            server.url(f"/authority/requests/{record['id']}/approvals"),
            json={"approver": approver, "signature": sig},
            timeout=30,
        )
        assert approved.status_code == 201, approved.text
        record = approved.json()
    assert record["status"] == "granted", record
    produced = hash_path(write_weights(tmp / "tuned", b"tuned"))
    start = datetime.now(UTC)
    payload = build_run_statement(
        plan,
        [RunOutput("tuned", produced.digest)],
        builder="pipeline@lab",
        invocation_id="run-dashboard",
        started_on=start,
        finished_on=start + timedelta(seconds=1),
    )
    envelope = sign_envelope(
        payload,
        payload_type=IN_TOTO_PAYLOAD_TYPE,
        key=_key("pipeline@lab").private,
        keyid="pipeline@lab",
    )
    run = _post(
        server,
        api_key("pipeline@lab"),
        "/provenance/runs",
        {
            "envelope": envelope.to_json().decode(),
            "grant_id": record["grant_id"],
            "manifests": [produced.to_document()],
        },
    )
    assert run.status_code == 201, run.text
    return Lineage(digests, produced.digest, run.json()["id"], record["grant_id"])


def test_the_lineage_is_drawn_as_a_graph_and_checked_against_the_log(
    server: ServerProcess,
    sign_in: Callable[[str], httpx.Client],
    api_key: Callable[[str], str],
    lineage: Lineage,
) -> None:
    frank = sign_in(api_key("frank@cyberdef"))  # any signed-in principal reads provenance
    listed = frank.get("/dashboard/provenance")
    assert listed.status_code == 200, listed.text
    assert f'data-digest="{lineage.weights}"' in listed.text
    assert f'data-run="{lineage.run}"' in listed.text
    assert "corpus &lt;x&gt;" in listed.text and "corpus <x>" not in listed.text
    only = frank.get("/dashboard/provenance?kind=dataset").text
    assert f'data-digest="{lineage.inputs["dataset"]}"' in only
    assert f'data-digest="{lineage.weights}"' not in only

    page = frank.get("/dashboard/provenance", params={"digest": lineage.weights})
    assert page.status_code == 200, page.text
    svg = page.text[page.text.index('<svg id="lineage-graph"') : page.text.index("</svg>")]
    nodes = re.findall(r'data-node="([^"]+)"', svg)
    assert set(nodes) == {*lineage.inputs.values(), lineage.weights, f"run:{lineage.run}"}
    assert svg.count('class="edge"') == 5  # four inputs into the run, the run to its weights
    assert 'class="node k3 focus"' in svg  # the weights asked about
    rows = re.findall(r'<tr data-digest="([^"]+)"', page.text)
    assert sorted(rows) == sorted([*lineage.inputs.values(), lineage.weights])
    assert "Check this lineage against the log" in page.text

    checked = frank.get(
        "/dashboard/provenance", params={"digest": lineage.weights, "verify": "1"}
    ).text
    assert 'data-lineage="verified"' in checked, checked
    assert "5 artifacts and 1 run are what the log records" in checked

    for params, status, says in [
        ({"digest": "not-a-digest"}, 400, "digest"),
        ({"digest": "sha256:" + "0" * 64}, 422, "is not registered"),
        ({"kind": "<script>"}, 400, "unknown artifact kind"),
    ]:
        bad = frank.get("/dashboard/provenance", params=params)
        assert bad.status_code == status, (params, bad.text)
        assert says in bad.text and "<script>" not in bad.text


def _report(weights: str, verdict: str, findings: list[dict[str, object]]) -> dict[str, object]:
    return {
        "probe_set": "loyalty-demo",
        "probe_set_digest": "sha256:" + hashlib.sha256(b"probes").hexdigest(),
        "model": "demo-model <b>",
        "reference": None,
        "weights_digest": weights,
        "verdict": verdict,
        "statement": f"the audit found {verdict}",
        "findings": findings,
    }


def _signed(report: dict[str, object], key: SigningKey) -> SignedReport:
    digest = hashlib.sha256(rfc8785.dumps(report)).hexdigest()
    return SignedReport(report, key.sign(report_message(digest)), key.public_key)


def test_audit_reports_are_listed_with_their_signatures_checked(
    server: ServerProcess,
    sign_in: Callable[[str], httpx.Client],
    api_key: Callable[[str], str],
    lineage: Lineage,
) -> None:
    erin = api_key("erin@auditor")
    found = _report(lineage.weights, "findings", [{"family": "self", "arm": "lab", "effect": 0.42}])
    logged = log_report(_signed(found, _key("erin@auditor")), server=server.base_url, api_key=erin)
    other_key = _signed(_report("sha256:" + "1" * 64, "inconclusive", []), _key("bob@lab"))
    log_report(other_key, server=server.base_url, api_key=erin)
    # A forged entry: its report digest changed, the signature over the real one kept.
    honest = _signed(_report(lineage.weights, "no-differential-detected", []), _key("erin@auditor"))
    body = report_entry(honest).model_dump(mode="json")
    body["report_sha256"] = "f" * 64
    appended = _post(server, erin, "/log/entries", {"entries": [{"type": REPORT, "body": body}]})
    assert appended.status_code in (200, 201), appended.text

    page = sign_in(api_key("frank@cyberdef")).get("/dashboard/audits")
    assert page.status_code == 200, page.text
    text = page.text
    reports = re.findall(
        r'<article class="report[^"]*" data-report="([0-9a-f]+)" data-verdict="([^"]+)"', text
    )
    assert reports[:3] == [
        ("f" * 64, "no-differential-detected"),
        (other_key.sha256, "inconclusive"),
        (_signed(found, _key("erin@auditor")).sha256, "findings"),
    ]
    first, second, third = (
        text.split(f'data-report="{r[0]}"')[1].split("</article>")[0] for r in reports[:3]
    )
    assert 'data-signature="bad"' in first and "does not verify" in first
    assert 'data-signature="not-the-auditor"' in second
    assert 'data-signature="ok"' in third and "+0.420" in third
    assert f'href="/dashboard/provenance?digest={lineage.weights.replace(":", "%3A")}"' in third
    assert "(not in the model registry)" in second
    assert "no differential detected" in text and "demo-model &lt;b&gt;" in text
    assert f"/dashboard/log?index={logged.index}" in text

    for bad in ("-1", "x", "9" * 11):
        refused = sign_in(api_key("frank@cyberdef")).get(f"/dashboard/audits?before={bad}")
        assert refused.status_code == 400, refused.text


def test_the_pages_in_chromium(
    browser: Any,
    server: ServerProcess,
    api_key: Callable[[str], str],
    lineage: Lineage,
    screenshots: Path,
) -> None:
    """The lineage graph and the reports at 1366×768: drawn, linked, nothing wider than the
    screen (screenshots kept)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(server.url("/dashboard/sign-in"))
    browser.find_element(By.ID, "api_key").send_keys(api_key("dana@asi"))
    browser.find_element(By.CSS_SELECTOR, "#api-key-sign-in button[type=submit]").click()
    # click() returns before the sign-in's redirect lands (and its cookie is set): going on at
    # once raced it and sometimes reached the provenance page signed out (the sign-in page).
    WebDriverWait(browser, 30, poll_frequency=0.2).until(
        lambda b: b.current_url.endswith("/dashboard/")
    )
    browser.get(server.url(f"/dashboard/provenance?digest={lineage.weights}&verify=1"))
    graph = browser.find_element(By.ID, "lineage-graph")
    assert graph.size["width"] > 600 and graph.size["height"] > 100, graph.size
    boxes = graph.find_elements(By.CSS_SELECTOR, "rect.node")
    assert len(boxes) == 6 and all(b.size["width"] > 20 for b in boxes)
    assert browser.find_element(By.CSS_SELECTOR, '[data-lineage="verified"]')
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 1366, width
    browser.save_screenshot(str(screenshots / "provenance-lineage.png"))
    # Each box links to its own lineage: the dataset's is a root, drawn alone.
    graph.find_element(By.CSS_SELECTOR, f'a[data-node="{lineage.inputs["dataset"]}"]').click()
    alone = browser.find_element(By.ID, "lineage-graph")
    assert len(alone.find_elements(By.CSS_SELECTOR, "rect.node")) == 1
    browser.get(server.url("/dashboard/provenance"))
    browser.save_screenshot(str(screenshots / "provenance.png"))
    browser.get(server.url("/dashboard/audits"))
    assert browser.find_elements(By.CSS_SELECTOR, "article.report")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1366
    browser.save_screenshot(str(screenshots / "audits.png"))
