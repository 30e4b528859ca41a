"""What the audit reports page shows: every loyalty-audit report an auditor signed and logged
(``audits.report/v1`` entries), newest first, each with its signature checked here.

A report lives in the log only (custodes did not run the audit; the auditor did and signed
it), so the page reads the log backwards, at most :data:`SCAN` entries a page, and says which
range it read. For each report it checks, on the server and with custodes' own code, that the
signature in the entry verifies over ``custodes-audit-report/v1\\n<report digest>\\n`` and that
the signing key is the one the constitution in force gives the entry's principal. The verdict
is shown as the report states it: "no differential detected" is never "clean".
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custodes.audits import REPORT, report_message
from custodes.authority import verify_signature
from custodes.constitution import Constitution, decode_public_key, encode_public_key
from custodes.errors import Error, InputError
from custodes.log import Entry, TransparencyLog
from custodes.provenance import ModelRegistry

__all__ = ["SCAN", "AuditRow", "AuditsView", "audits_view"]

SCAN = 5000  # entries read per page, newest first
_CHUNK = 500
_SHOWN = 50


@dataclass(frozen=True)
class AuditRow:
    """One logged report.

    Attributes:
        index: its log entry.
        time: when it was logged.
        auditor: the entry's principal (stamped by the server that took the entry).
        body: the entry's body (model, verdict, statement, findings...).
        signature_ok: the signature verifies over the report digest.
        signer_is_auditor: the signing key is the auditor's in the constitution in force.
        weights_registered: the audited weights digest is in the model registry (its lineage
            page exists); None when the report names no weights.
    """

    index: int
    time: datetime
    auditor: str
    body: Mapping[str, Any]
    signature_ok: bool
    signer_is_auditor: bool
    weights_registered: bool | None


@dataclass(frozen=True)
class AuditsView:
    """The page: the reports found in entries ``[window_start, window_end)``."""

    reports: tuple[AuditRow, ...]
    window_start: int
    window_end: int
    more: bool


def _signature_ok(body: Mapping[str, Any]) -> bool:
    public = decode_public_key(str(body.get("signer", "")))
    try:
        signature = base64.b64decode(str(body.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        return False
    digest = str(body.get("report_sha256", ""))
    if public is None or len(signature) != 64 or len(digest) != 64:
        return False
    return verify_signature(public, report_message(digest), signature)


def audits_view(
    log: TransparencyLog,
    registry: ModelRegistry,
    constitution: Constitution | None,
    *,
    before: int | None,
) -> AuditsView:
    """The reports among at most :data:`SCAN` entries below ``before`` (default: the log's
    size), newest first, at most 50.

    Raises:
        InputError: ``before`` is negative.
    """
    if before is not None and before < 0:
        raise InputError("before must not be negative", where="before", actual=str(before))
    size = log.size()
    end = size if before is None else min(before, size)
    keys = {} if constitution is None else constitution.principals_by_id
    rows: list[AuditRow] = []
    start = end
    while start > 0 and end - start < SCAN and len(rows) < _SHOWN:
        chunk_start = max(0, start - _CHUNK, end - SCAN)
        for at, data in reversed(log.entries(chunk_start, start)):
            start = at
            try:
                entry = Entry.from_json(data)
            except Error:
                continue
            if entry.type != REPORT:
                continue
            body = entry.body
            principal = keys.get(entry.principal)
            own_key = None if principal is None else principal.public_key
            weights = body.get("weights_digest")
            rows.append(
                AuditRow(
                    index=at,
                    time=entry.time,
                    auditor=entry.principal,
                    body=body,
                    signature_ok=_signature_ok(body),
                    signer_is_auditor=own_key is not None
                    and encode_public_key(own_key) == body.get("signer"),
                    weights_registered=None if not weights else _registered(registry, weights),
                )
            )
            if len(rows) == _SHOWN:
                break
        else:
            start = chunk_start
    return AuditsView(tuple(rows), start, end, more=start > 0)


def _registered(registry: ModelRegistry, digest: str) -> bool:
    try:
        registry.artifact(digest)
    except Error:
        return False
    return True
