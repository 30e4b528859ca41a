"""Exports validated against the official OSV, CSAF 2.0 and CVE 5.1.1 schemas in data/schemas."""

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
        assert errors(validator, doc) == [], (f.id, fmt)


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
    # An unlisted CWE is not given a made-up name (CSAF §6.1.11).
    assert "cwe" not in export_finding(draft, "csaf", now=clock.now())["vulnerabilities"][0]
    assert (
        export_finding(draft, "csaf", now=clock.now())["document"]["tracking"]["status"] == "draft"
    )
    cna = export_finding(draft, "cve", now=clock.now())
    assert cna["metrics"][0]["cvssV4_0"]["baseScore"] == 9.3
    assert cna["affected"][0]["versions"][1]["lessThanOrEqual"] == "3.2"


def test_unknown_format_is_a_clear_error(findings: list[Any], clock: FrozenClock) -> None:
    with pytest.raises(InputError) as err:
        export_finding(findings[0], "stix", now=clock.now())
    assert err.value.where == "format" and "osv" in (err.value.expected or "")
