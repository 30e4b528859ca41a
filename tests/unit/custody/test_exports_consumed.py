"""Exports as the tools that consume them read them: every probe version is affected in the OSV
record (evaluated as the OSV schema's "Evaluation" section says) and in the CVE record
(evaluated as CVE's "Product and Version Encodings" says) exactly when PEP 440 says it meets
the finding's versions, with PyPI's ordering from `packaging` (pip's own implementation); the
purl is parsed back with packageurl-python, the CSAF document with the `csaf` validator."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from packageurl import PackageURL
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from custodes.custody import Finding, export_finding
from custodes.errors import InputError

NOW = datetime(2026, 12, 7, tzinfo=UTC)
BASE = Finding(
    id="CUSTODES-2026-0007",
    title="Heap overflow in the decoder",
    description="A crafted file overflows a heap buffer.",
    vendor="Example Corp",
    product="exampleimg",
    versions=("< 2.4.1",),
    cwe="CWE-787",
    cvss_version="4.0",
    cvss_vector="CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    cvss_score=9.3,
    severity="Critical",
    finder="alice@lab",
    model="m",
    session="s",
    evidence="",
    fingerprint="",
    policy="project-zero",
    detection_id=None,
    references=(),
    commitment="0" * 64,
    rm_state="received",
    em_state="none",
    flags=(),
    registered_at=NOW,
    registered_by="alice@lab",
    log_index=1,
    revealed_at=None,
    events=(),
    purl="pkg:pypi/exampleimg",
)
PROBES = [
    "0.1",
    "1.0",
    "1.2",
    "1.2.1",
    "1.9.9",
    "2.0",
    "2.0.0",
    "2.3.0",
    "2.4.0",
    "2.4.1",
    "2.4.2",
    "2.5",
    "2.5.0",
    "3.0",
    "3.2",
    "3.2.1",
    "10.0",
]
SPECS = [
    ("< 2.4.1",),
    (">= 2.0, < 2.5",),
    ("<= 1.2",),
    ("2.4.0",),
    ("2.3.0", "< 1.0", ">= 3.0, <= 3.2"),
    (">= 2.5",),
    ("*",),
]


def pep440(texts: tuple[str, ...], v: str) -> bool:
    """The oracle: does ``v`` meet any of the finding's version texts (PEP 440)?"""
    for t in texts:
        spec = "" if t == "*" else t.replace(" ", "")
        if spec and spec[0].isalnum():
            spec = f"=={spec}"
        if Version(v) in SpecifierSet(spec):
            return True
    return False


def osv_affected(record: dict[str, Any], ecosystem: str, name: str, v: str) -> bool:
    """OSV schema "Evaluation": IsAffected over the ECOSYSTEM ranges and the versions list."""
    for affected in record["affected"]:
        pkg = affected["package"]
        if (pkg["ecosystem"], pkg["name"]) != (ecosystem, name):
            continue
        if v in affected.get("versions", []):
            return True
        for r in affected.get("ranges", []):
            assert r["type"] == "ECOSYSTEM"

            def key(e: dict[str, str]) -> Version:
                value = next(iter(e.values()))
                return Version("0") if value == "0" else Version(value)

            vulnerable = False
            for e in sorted(r["events"], key=key):
                if "introduced" in e and (e["introduced"] == "0" or Version(v) >= key(e)):
                    vulnerable = True
                elif "fixed" in e and Version(v) >= key(e):
                    vulnerable = False
                elif "last_affected" in e and Version(v) > key(e):
                    vulnerable = False
            if vulnerable:
                return True
    return False


def cve_affected(container: dict[str, Any], v: str) -> bool:
    """CVE versions.md: a single version matches itself; a range version <= V < lessThan (or
    <= lessThanOrEqual), "*" being no upper bound, in the ordering of its versionType."""
    for affected in container["affected"]:
        for entry in affected["versions"]:
            if "lessThan" not in entry and "lessThanOrEqual" not in entry:
                if Version(entry["version"]) == Version(v):
                    return entry["status"] == "affected"
                continue
            assert entry["versionType"] == "python"
            low = Version(entry["version"])
            if Version(v) < low:
                continue
            if "lessThan" in entry:
                inside = entry["lessThan"] == "*" or Version(v) < Version(entry["lessThan"])
            else:
                inside = Version(v) <= Version(entry["lessThanOrEqual"])
            if inside:
                return entry["status"] == "affected"
    return False  # defaultStatus "unknown": not claimed affected


@pytest.mark.parametrize("versions", SPECS, ids=lambda s: " | ".join(s))
def test_osv_and_cve_match_what_the_finding_says(versions: tuple[str, ...]) -> None:
    f = replace(BASE, versions=versions)
    osv = export_finding(f, "osv", now=NOW)
    cve = export_finding(f, "cve", now=NOW)
    (affected,) = osv["affected"]
    purl = PackageURL.from_string(affected["package"]["purl"])
    assert (purl.type, purl.name, purl.version) == ("pypi", "exampleimg", None)
    assert affected["package"]["ecosystem"] == "PyPI"
    for v in PROBES:
        expected = pep440(versions, v)
        assert osv_affected(osv, "PyPI", "exampleimg", v) is expected, ("osv", v)
        assert cve_affected(cve, v) is expected, ("cve", v)
    assert cve["affected"][0]["packageName"] == "exampleimg"
    assert cve["affected"][0]["collectionURL"] == "https://pypi.org"


def test_csaf_ranges_are_vers_the_validator_accepts() -> None:
    from csaf.csaf.v21._validator import validate

    f = replace(BASE, versions=("2.3.0", ">= 2.0, < 2.5", "<= 1.2"))
    doc = export_finding(f, "csaf", now=NOW)
    names = [b["name"] for b in doc["product_tree"]["branches"][0]["branches"][0]["branches"]]
    assert names == ["vers:pypi/>=2.0|<2.5", "vers:pypi/<=1.2", "2.3.0"]
    report = validate(doc)
    assert report.overall_valid, [r for r in report.results if not r.passed]
    # 6.1.50 checks the vers syntax (the validator knows no canonical form for pypi).
    vers_rule = next(r for r in report.results if r.id == "6.1.50")
    assert vers_rule.passed and not vers_rule.errors


@pytest.mark.parametrize(
    "purl,ecosystem,name",
    [
        ("pkg:npm/%40babel/core", "npm", "@babel/core"),
        (
            "pkg:maven/org.apache.logging.log4j/log4j-core",
            "Maven",
            "org.apache.logging.log4j:log4j-core",
        ),
        ("pkg:golang/github.com/example/mod", "Go", "github.com/example/mod"),
        ("pkg:cargo/regex", "crates.io", "regex"),
    ],
)
def test_osv_package_names_per_ecosystem(purl: str, ecosystem: str, name: str) -> None:
    osv = export_finding(replace(BASE, purl=purl, versions=("1.0.0",)), "osv", now=NOW)
    assert osv["affected"][0]["package"]["ecosystem"] == ecosystem
    assert osv["affected"][0]["package"]["name"] == name
    assert PackageURL.from_string(osv["affected"][0]["package"]["purl"]).to_string() == purl


def test_osv_without_a_matchable_package_is_refused() -> None:
    with pytest.raises(InputError, match="names no package") as err:
        export_finding(replace(BASE, purl=""), "osv", now=NOW)
    assert err.value.where == "purl" and "pkg:pypi" in (err.value.expected or "")
    with pytest.raises(InputError, match="no OSV ecosystem"):
        export_finding(replace(BASE, purl="pkg:generic/libpng"), "osv", now=NOW)
    # CSAF and CVE do not need one.
    assert export_finding(replace(BASE, purl=""), "cve", now=NOW)["affected"][0]["versions"]


@pytest.mark.parametrize(
    "text,message",
    [
        ("> 2.0", "cannot be exported exactly"),
        ("~ 2.0", "cannot be exported exactly"),
        ("^1.2", "cannot be exported exactly"),
        (">= 1.0, >= 2.0", "two lower bounds"),
        ("< 1.0, <= 2.0", "two upper bounds"),
        ("2.0 beta", "not a version"),
        ("", "not a version"),
    ],
)
def test_inexpressible_versions_are_refused_at_registration(text: str, message: str) -> None:
    from custodes.custody import FindingInput
    from custodes.custody._rows import validate_input

    fields = {k: v for k, v in FindingInput.model_fields.items() if v.is_required()}
    data = {
        "title": "t",
        "vendor": "v",
        "product": "p",
        "versions": [text],
        "cwe": "CWE-787",
        "cvss": BASE.cvss_vector,
        "finder": "alice@lab",
        "model": "m",
        "session": "s",
    }
    assert set(fields) <= set(data)
    with pytest.raises(InputError, match=message) as err:
        validate_input(data)
    assert err.value.where == "versions"
    with pytest.raises(InputError, match="names a version"):
        validate_input({**data, "versions": ["1.0"], "purl": "pkg:pypi/x@1.0"})
    with pytest.raises(InputError, match="not a Package URL"):
        validate_input({**data, "versions": ["1.0"], "purl": "pypi/x"})
