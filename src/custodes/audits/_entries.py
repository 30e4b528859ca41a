"""The log entry of a signed audit report, and appending it through the server's API.

``audits.report/v1`` records that an auditor (the entry's principal, stamped by the server)
signed a report: its digest, the probe set's digest, the model, the verdict and the findings,
with the signature, so everyone who reads the log can fetch the report and check it. It is a
client entry type (``POST /log/entries``): custodes did not run the audit, the auditor did, and
the entry claims only what the auditor signed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field

from custodes.audits._report import SignedReport
from custodes.errors import AuditError
from custodes.log import register_entry_type

__all__ = ["REPORT", "LoggedReport", "ReportEntry", "log_report", "report_entry"]

REPORT = "audits.report/v1"
_SHA256 = r"^[0-9a-f]{64}$"


class FindingRef(BaseModel):
    """A finding, as the log names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = Field(max_length=64)
    arm: str = Field(max_length=200)
    effect: float = Field(allow_inf_nan=False)


class ReportEntry(BaseModel):
    """An auditor signed a loyalty-audit report over a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_sha256: str = Field(pattern=_SHA256)
    probe_set: str = Field(max_length=200)
    probe_set_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    model: str = Field(max_length=200)
    reference: str | None = Field(default=None, max_length=200)
    weights_digest: str | None = Field(default=None, max_length=200)
    verdict: str = Field(pattern=r"^(findings|no-differential-detected|inconclusive)$")
    statement: str = Field(max_length=4000)
    findings: list[FindingRef] = Field(default_factory=list, max_length=100)
    signer: str = Field(max_length=100)
    signature: str = Field(max_length=100)


register_entry_type(REPORT, ReportEntry, "an auditor signed a loyalty-audit report")


def report_entry(signed: SignedReport) -> ReportEntry:
    """The entry body of a signed report (its signature is checked first).

    Raises:
        AuditError: the signature does not verify.
    """
    signed.verify()
    report = signed.report
    return ReportEntry(
        report_sha256=signed.sha256,
        probe_set=report["probe_set"],
        probe_set_digest=report["probe_set_digest"],
        model=report["model"],
        reference=report.get("reference"),
        weights_digest=report.get("weights_digest"),
        verdict=report["verdict"],
        statement=report["statement"][:4000],
        findings=[
            FindingRef(family=f["family"], arm=f["arm"], effect=f["effect"])
            for f in report["findings"][:100]
        ],
        signer=signed.signer,
        signature=signed.signature,
    )


@dataclass(frozen=True)
class LoggedReport:
    """Where the report's entry is in the log.

    Attributes:
        index: the entry's index.
        leaf_hash: its RFC 9162 leaf hash (base64).
    """

    index: int
    leaf_hash: str


def log_report(
    signed: SignedReport, *, server: str, api_key: str, client: httpx.Client | None = None
) -> LoggedReport:
    """Append the report's entry through ``POST /log/entries`` of a custodes server.

    The caller's principal needs a role in the constitution's ``log.append.roles``.

    Raises:
        AuditError: the server could not be reached or refused the entry.
    """
    body = orjson.dumps(
        {"entries": [{"type": REPORT, "body": report_entry(signed).model_dump(mode="json")}]}
    )
    own = client is None
    http = client or httpx.Client(base_url=server.rstrip("/"), timeout=30)
    try:
        response = http.post(
            "/log/entries",
            content=body,
            headers={"content-type": "application/json", "authorization": f"Bearer {api_key}"},
        )
    except httpx.HTTPError as exc:
        raise AuditError(f"cannot reach the custodes server at {server}: {exc}") from exc
    finally:
        if own:
            http.close()
    if response.status_code != 201:
        raise AuditError(
            f"the server refused the report's log entry ({response.status_code}): "
            f"{response.text[:500]}",
            hint="the principal of --log-api-key needs a role in the constitution's "
            "log.append.roles",
        )
    appended = response.json()["entries"][0]
    base64.b64decode(appended["leaf_hash"], validate=True)
    return LoggedReport(int(appended["index"]), str(appended["leaf_hash"]))
