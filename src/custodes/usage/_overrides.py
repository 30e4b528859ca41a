"""An overseer's approval of more use beyond a gating share rule.

The approver signs, with their own Ed25519 key (the key the constitution lists for them),
``custodes-usage-override/v1\\n`` followed by the RFC 8785 canonical JSON of
``{"rule", "subject", "until", "reason"}``; ``until`` is an RFC 3339 UTC time no later than one
rule window from the approval. The approver must be a person (a workload never approves) of an
overseer organisation, and neither the subject nor of the subject's organisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rfc8785

from custodes.constitution import Constitution
from custodes.errors import ApprovalError

__all__ = ["OVERRIDE_DOMAIN", "check_override", "override_message", "override_refusal"]

OVERRIDE_DOMAIN = "custodes-usage-override/v1"


def override_message(rule: str, subject: str, until: str, reason: str) -> bytes:
    """What an overseer signs to let ``subject`` use beyond ``rule`` until ``until``."""
    body: Mapping[str, Any] = {"rule": rule, "subject": subject, "until": until, "reason": reason}
    return f"{OVERRIDE_DOMAIN}\n".encode() + rfc8785.dumps(dict(body))


def override_refusal(c: Constitution, approver: str, subject: str, *, persons: bool) -> str | None:
    """Why ``approver`` may not approve more use by ``subject`` (``None``: they may)."""
    p = c.principals_by_id.get(approver)
    if p is None:
        return f"unknown principal {approver!r}"
    if p.kind == "workload":
        return f"{approver} is a workload (an AI agent or service): a workload never approves"
    if p.public_key is None:
        return f"{approver} has no key in the constitution"
    org = c.organisations_by_id[p.organisation]
    if org.kind != "overseer":
        return f"{approver} is of {org.id}, a {org.kind} organisation, not an overseer"
    if persons:
        if p.person_id == subject:
            return f"{approver} cannot approve their own use"
        subject_orgs = {q.organisation for q in c.principals if q.person_id == subject}
        if p.organisation in subject_orgs:
            return f"{approver} is of {p.organisation}, the organisation of {subject}"
    elif p.organisation == subject:
        return f"{approver} is of {subject}, the organisation whose use it is"
    return None


def check_override(c: Constitution, approver: str, subject: str, *, persons: bool) -> None:
    """Raise the refusal of :func:`override_refusal`, if any.

    Raises:
        ApprovalError: the approver may not approve this override.
    """
    refusal = override_refusal(c, approver, subject, persons=persons)
    if refusal is not None:
        raise ApprovalError(f"override refused: {refusal}")
