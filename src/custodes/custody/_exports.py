"""Exports of a finding as OSV, CSAF 2.0 and CVE JSON 5.x CNA-container drafts.

Only public metadata is exported (never the escrowed details). The tests validate every
export against the official schemas (``data/schemas/`` in the repository).

- OSV (https://ossf.github.io/osv-schema/): ids use the schema's private prefix ``x_``, as
  ``x_CUSTODES-YYYY-NNNN``. A product outside a package ecosystem has no ``package``; the
  vendor, product and version text go to ``database_specific``.
- CSAF 2.0 (OASIS): a ``csaf_security_advisory``; ``tracking.status`` is ``draft`` until the
  finding is disclosed, then ``final``. CSAF 2.0 knows CVSS v2 and v3 only, so a v4.0 vector is
  given as a note.
- CVE JSON 5.x: the CNA container of a record the CNA would publish (``cnaPublishedContainer``)
  without ``cveMetadata``, because custodes assigns no CVE ids.
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
from custodes.errors import InputError
from custodes.log import format_time

__all__ = ["EXPORT_FORMATS", "ExportIdentity", "export_finding", "to_csaf", "to_cve", "to_osv"]

ExportFormat = Literal["osv", "csaf", "cve"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

_RANGE_PREFIXES = ("<", ">", "=", "~", "^", "*")
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
    """Who publishes the exports."""

    name: str = "custodes"
    namespace: str = "https://custodes.local"
    advisory_base_url: str = "https://custodes.local/advisories"
    cna_short_name: str = "custodes"

    @property
    def org_id(self) -> str:
        # A stable id for providerMetadata.orgId until a real one is set; CVE 5.x requires
        # the UUID version 4 form, so the hash of the namespace is stamped as version 4.
        digest = hashlib.sha256(self.namespace.encode()).digest()[:16]
        return str(uuid.UUID(bytes=digest, version=4))

    def advisory_url(self, finding_id: str) -> str:
        return f"{self.advisory_base_url.rstrip('/')}/{finding_id}"


def _exact_versions(f: Finding) -> list[str]:
    return [v for v in f.versions if not v.startswith(_RANGE_PREFIXES)]


def _published(f: Finding, schedule: Schedule | None) -> datetime | None:
    disclosed = [e.at for e in f.events if e.kind == "disclosed"]
    if disclosed:
        return min(disclosed)
    return f.revealed_at


def _modified(f: Finding) -> datetime:
    return max([f.registered_at, *(e.at for e in f.events if e.kind != "details-read")])


def _references(f: Finding, identity: ExportIdentity) -> list[str]:
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
        "affected": [
            {
                "versions": _exact_versions(f),
                "database_specific": {
                    "vendor": f.vendor,
                    "product": f.product,
                    "versions": list(f.versions),
                },
            }
        ],
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
    if published is not None:
        record["published"] = format_time(published)
    return record


def _csaf_branch(f: Finding) -> dict[str, Any]:
    versions = []
    for i, v in enumerate(f.versions):
        category = "product_version_range" if v.startswith(_RANGE_PREFIXES) else "product_version"
        name = f"vers:generic/{v.replace(' ', '')}" if category == "product_version_range" else v
        versions.append(
            {
                "category": category,
                "name": name,
                "product": {
                    "name": f"{f.vendor} {f.product} {v}",
                    "product_id": f"{f.id}-P{i + 1}",
                },
            }
        )
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
    """The finding as a CSAF 2.0 security advisory."""
    identity = identity or ExportIdentity()
    published = _published(f, schedule)
    initial = format_time(published or now)
    product_ids = [f"{f.id}-P{i + 1}" for i in range(len(f.versions))]
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
    if f.cvss_version == "3.1":
        vulnerability["scores"] = [
            {"cvss_v3": CVSS3(f.cvss_vector).as_json(minimal=True), "products": product_ids}
        ]
    else:
        vulnerability["notes"].append(
            {
                "category": "other",
                "title": "CVSS v4.0",
                "text": f"{f.cvss_vector} ({f.cvss_score} {f.severity})",
            }
        )
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
    return {
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


def _cve_versions(f: Finding) -> list[dict[str, Any]]:
    out = []
    for v in f.versions:
        if v.startswith("<="):
            out.append(
                {
                    "version": "0",
                    "lessThanOrEqual": v[2:].strip(),
                    "status": "affected",
                    "versionType": "custom",
                }
            )
        elif v.startswith("<"):
            out.append(
                {
                    "version": "0",
                    "lessThan": v[1:].strip(),
                    "status": "affected",
                    "versionType": "custom",
                }
            )
        else:
            out.append({"version": v.lstrip("=").strip() or v, "status": "affected"})
    return out


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
        "affected": [
            {
                "vendor": f.vendor,
                "product": f.product,
                "versions": _cve_versions(f),
                "defaultStatus": "unknown",
            }
        ],
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
