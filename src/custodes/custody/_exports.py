"""Exports of a finding as OSV, CSAF 2.0 and CVE JSON 5.x CNA-container drafts.

Only public metadata is exported (never the escrowed details). The tests validate every
export against the official schemas (``data/schemas/`` in the repository).

- OSV (https://ossf.github.io/osv-schema/): ids use the schema's private prefix ``x_``, as
  ``x_CUSTODES-YYYY-NNNN``. ``affected[].package`` (ecosystem, name, purl) comes from the
  finding's purl, ranges become ``ECOSYSTEM`` ranges of ``introduced`` / ``fixed`` /
  ``last_affected`` events and exact versions go to ``versions``, so a scanner matches them
  (OSV schema, "Evaluation"). A finding without a purl of an OSV ecosystem is refused: a record
  no scanner can match would be worse than none.
- CSAF (OASIS): a ``csaf_security_advisory``; ``tracking.status`` is ``draft`` until the
  finding is disclosed, then ``final``. CSAF 2.0 knows CVSS v2 and v3 only, so a finding scored
  with CVSS v4.0 is exported as CSAF 2.1, whose ``metrics[].content.cvss_v4`` carries it.
- CVE JSON 5.x: the CNA container of a record the CNA would publish (``cnaPublishedContainer``)
  without ``cveMetadata``, because custodes assigns no CVE ids. Ranges are ``version`` /
  ``lessThan`` (or ``lessThanOrEqual``) with the package's ``versionType`` (CVE "Product and
  Version Encodings").
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from cvss import CVSS3

from custodes.custody._clock import Schedule
from custodes.custody._model import Finding
from custodes.custody._versions import (
    OSV_PURL_TYPES,
    AffectedPackage,
    VersionRange,
    parse_package,
    parse_versions,
)
from custodes.errors import InputError
from custodes.log import format_time

__all__ = ["EXPORT_FORMATS", "ExportIdentity", "export_finding", "to_csaf", "to_cve", "to_osv"]

ExportFormat = Literal["osv", "csaf", "cve"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

_CSAF_21_SCHEMA = "https://docs.oasis-open.org/csaf/csaf/v2.1/schema/csaf.json"
# CSAF 2.1 §3.2.4.4 asks which CWE catalogue version a name comes from; the names below are
# those of CWE 4.x (unchanged for these ids since 4.0).
_CWE_VERSION = "4.16"
# Official names of common CWEs (MITRE CWE list), for CSAF's cwe object and CVE problem types.
_CWE_NAMES = {
    "CWE-20": "Improper Input Validation",
    "CWE-22": "Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')",
    "CWE-78": "Improper Neutralization of Special Elements used in an OS Command "
    "('OS Command Injection')",
    "CWE-79": "Improper Neutralization of Input During Web Page Generation "
    "('Cross-site Scripting')",
    "CWE-89": "Improper Neutralization of Special Elements used in an SQL Command "
    "('SQL Injection')",
    "CWE-94": "Improper Control of Generation of Code ('Code Injection')",
    "CWE-119": "Improper Restriction of Operations within the Bounds of a Memory Buffer",
    "CWE-125": "Out-of-bounds Read",
    "CWE-190": "Integer Overflow or Wraparound",
    "CWE-287": "Improper Authentication",
    "CWE-416": "Use After Free",
    "CWE-476": "NULL Pointer Dereference",
    "CWE-502": "Deserialization of Untrusted Data",
    "CWE-787": "Out-of-bounds Write",
    "CWE-862": "Missing Authorization",
    "CWE-863": "Incorrect Authorization",
    "CWE-918": "Server-Side Request Forgery (SSRF)",
}


@dataclass(frozen=True)
class ExportIdentity:
    """Who publishes the exports.

    Attributes:
        name: the publisher's name (CSAF ``document.publisher.name``).
        namespace: the publisher's URL (CSAF ``document.publisher.namespace``).
        advisory_base_url: where advisories are published; an advisory's URL is this plus
            the finding id.
        cna_short_name: the CNA short name in CVE records (``providerMetadata.shortName``).
    """

    name: str = "custodes"
    namespace: str = "https://custodes.local"
    advisory_base_url: str = "https://custodes.local/advisories"
    cna_short_name: str = "custodes"

    @property
    def org_id(self) -> str:
        """The publisher's ``providerMetadata.orgId`` for CVE records (a UUID)."""
        # A stable id for providerMetadata.orgId until a real one is set; CVE 5.x requires
        # the UUID version 4 form, so the hash of the namespace is stamped as version 4.
        digest = hashlib.sha256(self.namespace.encode()).digest()[:16]
        return str(uuid.UUID(bytes=digest, version=4))

    def advisory_url(self, finding_id: str) -> str:
        """The URL of ``finding_id``'s advisory."""
        return f"{self.advisory_base_url.rstrip('/')}/{finding_id}"


def _package(f: Finding) -> AffectedPackage | None:
    """The package the finding's purl names, or None without a purl."""
    return parse_package(f.purl) if f.purl else None


def _osv_package(f: Finding) -> AffectedPackage:
    """The finding's package in an OSV ecosystem.

    Raises:
        InputError: no purl, or a purl type OSV has no ecosystem for.
    """
    pkg = _package(f)
    if pkg is None or pkg.osv_ecosystem is None:
        raise InputError(
            f"{f.id} cannot be exported as OSV: "
            + (
                "it names no package"
                if pkg is None
                else f"purl type {pkg.type!r} has no OSV ecosystem"
            ),
            where="purl",
            expected="a purl of an OSV ecosystem: pkg:" + ", pkg:".join(OSV_PURL_TYPES),
            actual=repr(f.purl) if f.purl else "no purl",
            hint="register the finding with `purl:` (e.g. pkg:pypi/NAME); CSAF and CVE exports "
            "work without one",
        )
    return pkg


def _osv_range(r: VersionRange) -> dict[str, Any]:
    """An OSV ``ECOSYSTEM`` range of ``r``: ``introduced`` (``"0"``: from the first version,
    as the OSV schema spells it), then ``fixed`` or else ``last_affected``."""
    events: list[dict[str, str]] = [{"introduced": r.introduced or "0"}]
    if r.fixed is not None:
        events.append({"fixed": r.fixed})
    elif r.last_affected is not None:
        events.append({"last_affected": r.last_affected})
    return {"type": "ECOSYSTEM", "events": events}


def _published(f: Finding, schedule: Schedule | None) -> datetime | None:
    """When the finding became public: its first ``disclosed`` event, else its reveal; None
    while it is embargoed (the exports are then drafts)."""
    disclosed = [e.at for e in f.events if e.kind == "disclosed"]
    if disclosed:
        return min(disclosed)
    return f.revealed_at


def _modified(f: Finding) -> datetime:
    """The last change of the public record: registration or an event. A read of the
    escrowed details changes nothing public, so it does not move ``modified``."""
    return max([f.registered_at, *(e.at for e in f.events if e.kind != "details-read")])


def _references(f: Finding, identity: ExportIdentity) -> list[str]:
    """The advisory's own URL first, then the finding's references, each once."""
    return list(dict.fromkeys([identity.advisory_url(f.id), *f.references]))


def to_osv(
    f: Finding, schedule: Schedule | None = None, *, identity: ExportIdentity | None = None
) -> dict[str, Any]:
    """The finding as an OSV record (schema 1.6)."""
    identity = identity or ExportIdentity()
    published = _published(f, schedule)
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": f"x_{f.id}",
        "modified": format_time(_modified(f)),
        "summary": f.title,
        "details": f.description or f.title,
        "severity": [
            {"type": "CVSS_V3" if f.cvss_version == "3.1" else "CVSS_V4", "score": f.cvss_vector}
        ],
        "affected": [_osv_affected(f)],
        "references": [
            {"type": "ADVISORY" if i == 0 else "WEB", "url": u}
            for i, u in enumerate(_references(f, identity))
        ],
        "credits": [{"name": f.finder, "type": "FINDER"}],
        "database_specific": {
            "cwe_ids": [f.cwe],
            "severity": f.severity.upper(),
            "custodes": {
                "commitment": f.commitment,
                "policy": f.policy,
                "rm_state": f.rm_state,
                "flags": list(f.flags),
            },
        },
    }
    # No "published" while embargoed: the record is a draft, and a date would say otherwise.
    if published is not None:
        record["published"] = format_time(published)
    return record


def _osv_affected(f: Finding) -> dict[str, Any]:
    """OSV ``affected[]``: the package, its ranges and exact versions (what scanners match),
    and the versions as registered under ``database_specific``.

    Raises:
        InputError: no purl of an OSV ecosystem.
    """
    pkg = _osv_package(f)
    parsed = parse_versions(f.versions)
    affected: dict[str, Any] = {
        "package": {"ecosystem": pkg.osv_ecosystem, "name": pkg.name, "purl": pkg.purl}
    }
    if parsed.ranges:
        affected["ranges"] = [_osv_range(r) for r in parsed.ranges]
    if parsed.exact:
        affected["versions"] = list(parsed.exact)
    affected["database_specific"] = {
        "vendor": f.vendor,
        "product": f.product,
        "versions": list(f.versions),
    }
    return affected


def _vers(r: VersionRange, scheme: str) -> str:
    """``r`` as a VERS range of ``scheme`` (``*``: every version), CSAF's
    ``product_version_range`` form."""
    # purl-spec VERS: "vers:<versioning-scheme>/<constraint>|<constraint>...".
    constraints = []
    if r.introduced is not None:
        constraints.append(f">={r.introduced}")
    if r.fixed is not None:
        constraints.append(f"<{r.fixed}")
    if r.last_affected is not None:
        constraints.append(f"<={r.last_affected}")
    return f"vers:{scheme}/" + ("|".join(constraints) or "*")


def _csaf_products(f: Finding) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(category, name, product name, identification helper) of each affected version."""
    pkg = _package(f)
    scheme = pkg.type if pkg is not None else "generic"
    parsed = parse_versions(f.versions)
    out: list[tuple[str, str, str, dict[str, Any] | None]] = []
    for r in parsed.ranges:
        vers = _vers(r, scheme)
        out.append(("product_version_range", vers, f"{f.vendor} {f.product} {vers}", None))
    for v in parsed.exact:
        helper = {"purl": f"{pkg.purl}@{v}"} if pkg is not None else None
        out.append(("product_version", v, f"{f.vendor} {f.product} {v}", helper))
    return out


def _csaf_branch(f: Finding) -> dict[str, Any]:
    """The CSAF product tree's branch of the finding: vendor, product name, then a branch
    per affected version or range, each a product with an id of its own."""
    versions = []
    for i, (category, name, product_name, helper) in enumerate(_csaf_products(f)):
        product: dict[str, Any] = {"name": product_name, "product_id": f"{f.id}-P{i + 1}"}
        if helper is not None:
            product["product_identification_helper"] = helper
        versions.append({"category": category, "name": name, "product": product})
    return {
        "category": "vendor",
        "name": f.vendor,
        "branches": [{"category": "product_name", "name": f.product, "branches": versions}],
    }


def to_csaf(
    f: Finding,
    schedule: Schedule | None = None,
    *,
    now: datetime,
    identity: ExportIdentity | None = None,
) -> dict[str, Any]:
    """The finding as a CSAF security advisory: CSAF 2.0, or CSAF 2.1 for a CVSS v4.0 score
    (which CSAF 2.0 cannot carry)."""
    identity = identity or ExportIdentity()
    published = _published(f, schedule)
    initial = format_time(published or now)
    product_ids = [f"{f.id}-P{i + 1}" for i in range(len(_csaf_products(f)))]
    notes = [{"category": "summary", "title": "Summary", "text": f.description or f.title}]
    vulnerability: dict[str, Any] = {
        "title": f.title,
        "ids": [{"system_name": "custodes", "text": f.id}],
        "discovery_date": format_time(f.registered_at),
        "product_status": {"known_affected": product_ids},
        "acknowledgments": [{"names": [f.finder]}],
        "notes": [
            {"category": "description", "title": "Description", "text": f.description or f.title}
        ],
    }
    # CSAF §6.1.11: the CWE name must be the official one, so an id whose name is not known
    # here is given as a note instead.
    if f.cwe in _CWE_NAMES:
        vulnerability["cwe"] = {"id": f.cwe, "name": _CWE_NAMES[f.cwe]}
    else:
        vulnerability["notes"].append({"category": "other", "title": "CWE", "text": f.cwe})
    # CSAF 2.0 has a place for CVSS v3 only; a v4.0 score goes into the 2.1 document instead.
    if f.cvss_version == "3.1":
        vulnerability["scores"] = [
            {"cvss_v3": CVSS3(f.cvss_vector).as_json(minimal=True), "products": product_ids}
        ]
    if published is not None:
        vulnerability["release_date"] = format_time(published)
    fixed = [e for e in f.events if e.kind == "fix-ready"]
    if fixed:
        vulnerability["remediations"] = [
            {
                "category": "vendor_fix",
                "product_ids": product_ids,
                "details": fixed[0].note or "A fix is available from the vendor.",
                "date": format_time(fixed[0].at),
            }
        ]
    document = {
        "document": {
            "category": "csaf_security_advisory",
            "csaf_version": "2.0",
            "title": f.title,
            "lang": "en",
            "publisher": {
                "category": "coordinator",
                "name": identity.name,
                "namespace": identity.namespace,
            },
            "notes": notes,
            "references": [
                {"category": "self", "summary": f.id, "url": identity.advisory_url(f.id)}
            ],
            "distribution": {
                # TLP (FIRST): an embargoed finding's draft is limited disclosure (AMBER), a
                # published one is not limited (WHITE; CLEAR in TLP 2.0, see _csaf_21).
                "tlp": {
                    "label": "WHITE" if published else "AMBER",
                    "url": "https://www.first.org/tlp/",
                }
            },
            "tracking": {
                "id": f.id,
                "status": "final" if published else "draft",
                "version": "1" if published else "0.1.0",
                "initial_release_date": initial,
                "current_release_date": format_time(max(now, published or now)),
                "revision_history": [
                    {
                        "date": initial,
                        "number": "1" if published else "0.1.0",
                        "summary": "Initial version.",
                    }
                ],
                "generator": {"engine": {"name": "custodes"}},
            },
        },
        "product_tree": {"branches": [_csaf_branch(f)]},
        "vulnerabilities": [vulnerability],
    }
    if f.cvss_version != "3.1":
        return _csaf_21(f, document, product_ids)
    return document


def _csaf_21(f: Finding, doc: dict[str, Any], product_ids: list[str]) -> dict[str, Any]:
    """The CSAF 2.0 document as CSAF 2.1 (csd04), with the CVSS v4.0 score in ``metrics``.

    The differences that apply here (CSAF 2.1 Appendix "Conversion from 2.0"): ``$schema``;
    ``cwes`` with the catalogue version instead of ``cwe``; ``metrics[].content`` instead of
    ``scores``; ``disclosure_date`` instead of ``release_date``; TLP 2.0's ``CLEAR`` for
    ``WHITE``.
    """
    document = doc["document"]
    document["csaf_version"] = "2.1"
    tlp = document["distribution"]["tlp"]
    if tlp["label"] == "WHITE":
        tlp["label"] = "CLEAR"
    (vulnerability,) = doc["vulnerabilities"]
    cwe = vulnerability.pop("cwe", None)
    if cwe is not None:
        vulnerability["cwes"] = [{**cwe, "version": _CWE_VERSION}]
    if "release_date" in vulnerability:
        vulnerability["disclosure_date"] = vulnerability.pop("release_date")
    for vendor in doc["product_tree"]["branches"]:
        for product in vendor["branches"]:
            for version in product["branches"]:
                helper = version["product"].get("product_identification_helper")
                if helper is not None and "purl" in helper:
                    helper["purls"] = [helper.pop("purl")]  # CSAF 2.1: a list of purls
    vulnerability["metrics"] = [
        {
            "content": {
                "cvss_v4": {
                    # FIRST cvss-v4.0.json: version, vectorString, baseScore, baseSeverity.
                    "version": "4.0",
                    "vectorString": f.cvss_vector,
                    "baseScore": f.cvss_score,
                    "baseSeverity": f.severity.upper(),
                }
            },
            "products": product_ids,
        }
    ]
    return {"$schema": _CSAF_21_SCHEMA, **doc}


def _cve_versions(f: Finding, pkg: AffectedPackage | None) -> list[dict[str, Any]]:
    # CVE "Product and Version Encodings": a range is version <= V < lessThan (or <=
    # lessThanOrEqual) in the ordering of versionType; "0" is no lower bound, "*" no upper.
    version_type = pkg.cve_version_type if pkg is not None else "custom"
    parsed = parse_versions(f.versions)
    out: list[dict[str, Any]] = []
    for r in parsed.items:
        if isinstance(r, str):
            out.append({"version": r, "status": "affected"})
            continue
        entry: dict[str, Any] = {"version": r.introduced or "0", "status": "affected"}
        if r.last_affected is not None:
            entry["lessThanOrEqual"] = r.last_affected
        else:
            entry["lessThan"] = r.fixed if r.fixed is not None else "*"
        entry["versionType"] = version_type
        out.append(entry)
    return out


def _cve_affected(f: Finding) -> dict[str, Any]:
    """CVE ``affected[]``: vendor, product, the package and its collection, the versions;
    ``defaultStatus`` unknown, as only the versions listed were assessed."""
    pkg = _package(f)
    affected: dict[str, Any] = {"vendor": f.vendor, "product": f.product}
    if pkg is not None:
        affected["packageName"] = pkg.name
        if pkg.collection_url:
            affected["collectionURL"] = pkg.collection_url
    affected["versions"] = _cve_versions(f, pkg)
    affected["defaultStatus"] = "unknown"
    return affected


def to_cve(
    f: Finding,
    schedule: Schedule | None = None,
    *,
    now: datetime,
    identity: ExportIdentity | None = None,
) -> dict[str, Any]:
    """The finding as a CVE JSON 5.x CNA container draft (``containers.cna``)."""
    identity = identity or ExportIdentity()
    published = _published(f, schedule)
    metric: dict[str, Any]
    if f.cvss_version == "3.1":
        metric = {"format": "CVSS", "cvssV3_1": CVSS3(f.cvss_vector).as_json(minimal=True)}
    else:
        metric = {
            "format": "CVSS",
            "cvssV4_0": {
                "version": "4.0",
                "vectorString": f.cvss_vector,
                "baseScore": f.cvss_score,
                "baseSeverity": f.severity.upper(),
            },
        }
    container: dict[str, Any] = {
        "providerMetadata": {
            "orgId": identity.org_id,
            "shortName": identity.cna_short_name,
            "dateUpdated": format_time(now),
        },
        "title": f.title[:256],
        "descriptions": [{"lang": "en", "value": f.description or f.title}],
        "affected": [_cve_affected(f)],
        "problemTypes": [
            {
                "descriptions": [
                    {
                        "lang": "en",
                        "type": "CWE",
                        "cweId": f.cwe,
                        "description": _CWE_NAMES.get(f.cwe, f.cwe),
                    }
                ]
            }
        ],
        "metrics": [metric],
        "references": [{"url": u} for u in _references(f, identity)],
        "credits": [{"lang": "en", "value": f.finder, "type": "finder"}],
    }
    if published is not None:
        container["datePublic"] = format_time(published)
    return container


def export_finding(
    f: Finding,
    fmt: str,
    schedule: Schedule | None = None,
    *,
    now: datetime,
    identity: ExportIdentity | None = None,
) -> dict[str, Any]:
    """Export in ``fmt`` (``osv``, ``csaf`` or ``cve``).

    Raises:
        InputError: unknown format.
    """
    if fmt == "osv":
        return to_osv(f, schedule, identity=identity)
    if fmt == "csaf":
        return to_csaf(f, schedule, now=now, identity=identity)
    if fmt == "cve":
        return to_cve(f, schedule, now=now, identity=identity)
    raise InputError(
        f"unknown export format {fmt!r}",
        where="format",
        expected="one of: " + ", ".join(EXPORT_FORMATS),
        actual=repr(fmt),
    )
