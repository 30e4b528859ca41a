"""Exports validated against the official OSV, CSAF 2.0 and CVE 5.1.1 schemas in data/schemas,
and CSAF 2.1 (for CVSS v4.0) with the `csaf` package's validator (schema and mandatory tests)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource

from custodes.clock import FrozenClock
from custodes.custody import CustodyRegistry, export_finding
from custodes.errors import InputError
from tests.unit.custody.conftest import FINDING


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def osv(data_dir: Path) -> Draft202012Validator:
    return Draft202012Validator(load(data_dir / "schemas/osv/schema.json"))


@pytest.fixture(scope="module")
def csaf(data_dir: Path) -> Draft202012Validator:
    # The CSAF schema $refs FIRST's CVSS schemas by URL; register the local copies under
    # exactly those URLs (data/schemas/README.md), so nothing is fetched.
    first = data_dir / "schemas/csaf/referenced_schema/first"
    registry: Registry = Registry().with_resources(
        (f"https://www.first.org/cvss/{name}", Resource.from_contents(load(first / name)))
        for name in ("cvss-v2.0.json", "cvss-v3.0.json", "cvss-v3.1.json")
    )
    return Draft202012Validator(
        load(data_dir / "schemas/csaf/csaf_json_schema.json"), registry=registry
    )


@pytest.fixture(scope="module")
def cve_schema(data_dir: Path) -> dict[str, Any]:
    return load(data_dir / "schemas/cve/CVE_JSON_bundled_5.1.1.json")  # type: ignore[no-any-return]


def cna_validator(schema: dict[str, Any]) -> Draft7Validator:
    return Draft7Validator(
        {"$ref": "#/definitions/cnaPublishedContainer", "definitions": schema["definitions"]}
    )


def errors(v: Any, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def test_official_fixtures_pass_the_same_validators(
    data_dir: Path, osv: Any, csaf: Any, cve_schema: dict[str, Any]
) -> None:
    fixtures = data_dir / "schemas/fixtures"
    for p in sorted((fixtures / "osv/valid").glob("*.json")):
        assert errors(osv, load(p)) == [], p.name
    assert errors(osv, load(fixtures / "osv/invalid/nointroduced-CVE-2023-41045.json"))
    for p in sorted((fixtures / "csaf").glob("*.json")):
        assert errors(csaf, load(p)) == [], p.name
    record = load(fixtures / "cve/valid/full-record-basic-example.json")
    assert errors(Draft7Validator(cve_schema), record) == []
    assert errors(cna_validator(cve_schema), record["containers"]["cna"]) == []


@pytest.fixture
def findings(registry: CustodyRegistry, clock: FrozenClock) -> list[Any]:
    v31 = registry.register(FINDING, b"d", principal="alice@lab")
    v40 = registry.register(
        {
            **FINDING,
            "cvss": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "versions": ["3.0", "<= 3.2"],
            "references": ["https://example.com/bug/1"],
            "cwe": "CWE-1333",
        },
        b"d",
        principal="alice@lab",
    )
    registry.notify_vendor(v31.id, principal="alice@lab")
    clock.advance(timedelta(days=10))
    registry.record_event(v31.id, "fix-ready", principal="vendor@example", note="Upgrade to 2.4.1.")
    registry.record_event(v31.id, "disclosed", principal="alice@lab")
    return [registry.get(v31.id), registry.get(v40.id)]


@pytest.mark.parametrize("fmt", ["osv", "csaf", "cve"])
def test_exports_validate(
    fmt: str,
    findings: list[Any],
    registry: CustodyRegistry,
    clock: FrozenClock,
    osv: Any,
    csaf: Any,
    cve_schema: dict[str, Any],
) -> None:
    validator = {"osv": osv, "csaf": csaf, "cve": cna_validator(cve_schema)}[fmt]
    for f in findings:
        doc = export_finding(f, fmt, registry.schedule(f), now=clock.now())
        if fmt == "csaf" and doc["document"]["csaf_version"] == "2.1":
            assert csaf21_problems(doc) == [], f.id
            continue
        assert errors(validator, doc) == [], (f.id, fmt)
        if fmt == "csaf":
            assert csaf20_problems(doc) == [], f.id


def _problems(report: Any) -> list[str]:
    return [
        f"{r.id} {r.title}: {[e.message for e in r.errors]}"
        for r in report.results
        if not r.passed and not r.skipped
    ]


def csaf20_problems(doc: dict[str, Any]) -> list[str]:
    """CSAF 2.0's mandatory tests (§6.1), by a validator we did not write."""
    from csaf.csaf.v20._validator import validate

    return _problems(validate(doc))


def csaf21_problems(doc: dict[str, Any]) -> list[str]:
    """CSAF 2.1's schema and mandatory tests, by a validator we did not write."""
    from csaf.csaf.v21._validator import validate

    report = validate(doc)
    return [] if report.overall_valid else _problems(report) or ["invalid"]


def test_export_contents(findings: list[Any], clock: FrozenClock) -> None:
    disclosed, draft = findings
    osv_doc = export_finding(disclosed, "osv", now=clock.now())
    assert osv_doc["id"] == "x_CUSTODES-2026-0001"
    assert osv_doc["severity"] == [{"type": "CVSS_V3", "score": disclosed.cvss_vector}]
    assert "published" in osv_doc
    assert export_finding(draft, "osv", now=clock.now())["severity"][0]["type"] == "CVSS_V4"
    c = export_finding(disclosed, "csaf", now=clock.now())
    assert c["document"]["tracking"]["status"] == "final"
    assert c["vulnerabilities"][0]["scores"][0]["cvss_v3"]["baseScore"] == 8.8
    assert c["vulnerabilities"][0]["cwe"] == {"id": "CWE-787", "name": "Out-of-bounds Write"}
    # A CVSS v4.0 score is carried by CSAF 2.1 (CSAF 2.0 has no cvss_v4), not dropped.
    c4 = export_finding(draft, "csaf", now=clock.now())
    assert c4["document"]["csaf_version"] == "2.1"
    assert c4["vulnerabilities"][0]["metrics"][0]["content"]["cvss_v4"] == {
        "version": "4.0",
        "vectorString": draft.cvss_vector,
        "baseScore": 9.3,
        "baseSeverity": "CRITICAL",
    }
    # An unlisted CWE is not given a made-up name (CSAF §6.1.11).
    assert "cwe" not in c4["vulnerabilities"][0] and "cwes" not in c4["vulnerabilities"][0]
    assert c4["document"]["tracking"]["status"] == "draft"
    cna = export_finding(draft, "cve", now=clock.now())
    assert cna["metrics"][0]["cvssV4_0"]["baseScore"] == 9.3
    assert cna["affected"][0]["versions"][1]["lessThanOrEqual"] == "3.2"


def test_unknown_format_is_a_clear_error(findings: list[Any], clock: FrozenClock) -> None:
    with pytest.raises(InputError) as err:
        export_finding(findings[0], "stix", now=clock.now())
    assert err.value.where == "format" and "osv" in (err.value.expected or "")
