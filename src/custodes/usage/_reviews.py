"""Review clocks: a restricted tier must be re-justified on the constitution's schedule.

The disclosure-clock idea applied to the model itself (issue 20): the longer a capability stays
restricted to a few organisations, the larger the asymmetry, so the constitution's
``usage.reviews`` gives a tier a clock (``every``). When it runs out, keeping the tier
restricted with its member list unchanged needs a fresh decision approved under the clock's own
quorum, recorded in the log with its reasons and with which organisations were admitted,
refused or never considered; until then the review is overdue, an alarm to every overseer.

What approvers sign is a *review request* object (:func:`review_request`), approved exactly as
an access request is: Ed25519 over ``custodes-approval/v1`` and the SHA-256 of its RFC 8785
canonical JSON (:func:`custodes.authority.sign_approval`). Its ``type`` field keeps it from
ever being an access request; it names the period it answers (``due``) and the constitution in
force (its digest, so the membership criteria are part of what is approved), so an approval
renews one period under one constitution only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from custodes.authority import eligible_requesters
from custodes.constitution import Constitution, Quorum, compile_policies, parse_duration
from custodes.log import format_time

__all__ = [
    "REVIEW_TYPE",
    "Refused",
    "ReviewClock",
    "members_of",
    "review_clocks",
    "review_request",
]

REVIEW_TYPE = "custodes-usage-review/v1"


@dataclass(frozen=True)
class ReviewClock:
    """How often a restricted tier's restriction must be re-justified, and by whom."""

    kind: ClassVar[str] = "review-overdue"

    capability: str
    every: timedelta
    approver_roles: frozenset[str]
    quorum: Quorum
    description: str = ""

    @property
    def id(self) -> str:
        """The alarm rule id of this clock's overdue reviews."""
        return f"review:{self.capability}"

    def says(self) -> str:
        """The clock in words, for alarms and refusals."""
        q = self.quorum
        kinds = "".join(f", {n} {k}" for k, n in sorted(q.kinds.items()))
        return (
            f"the restriction of {self.capability} is re-justified every "
            f"{self.every.total_seconds() / 86_400:g} days by {q.approvals} approvals from "
            f"{q.organisations} organisations{kinds} ({', '.join(sorted(self.approver_roles))})"
        )


@dataclass(frozen=True)
class Refused:
    """An organisation the review considered and did not admit, and why."""

    organisation: str
    reason: str


def review_clocks(c: Constitution) -> tuple[ReviewClock, ...]:
    """The review clocks of ``c`` (its ``usage.reviews``; the reader has checked them)."""
    raw: Sequence[Mapping[str, Any]] = ((c.document or {}).get("usage") or {}).get("reviews", [])
    out = []
    for r in raw:
        every = parse_duration(r["every"])
        assert every is not None  # the reader refuses a malformed or zero duration
        out.append(
            ReviewClock(
                capability=r["capability"],
                every=every,
                approver_roles=frozenset(r["approvers"]["roles"]),
                quorum=Quorum.from_document(r["quorum"]),
                description=r.get("description", ""),
            )
        )
    return tuple(out)


def members_of(c: Constitution, capability: str) -> tuple[str, ...]:
    """The organisations admitted to ``capability`` under ``c``: those with a principal who
    may request it (or, for a standing rule, use it), sorted."""
    rules = c.rules_for(capability)
    if not rules:
        return ()
    eligible = eligible_requesters(c, compile_policies(c), rules)
    by_id = c.principals_by_id
    return tuple(sorted({by_id[p].organisation for ids in eligible.values() for p in ids}))


def review_request(
    c: Constitution,
    capability: str,
    *,
    due: datetime,
    refused: Sequence[Refused],
    reasons: str,
) -> dict[str, Any]:
    """The object the approvers of a review sign: keep ``capability`` restricted to its
    members under ``c`` (whose digest it names) for another period, answering the review due
    at ``due``. ``criteria`` are the membership criteria in force: the tier's requester
    criteria and the organisations' admission criteria."""
    # The tier's requester criteria and the organisations' admission criteria: who is
    # admitted to the programme is part of the review.
    criteria = sorted(
        {x for r in c.rules_for(capability) for x in r.requester_criteria}
        | {x for o in c.organisations for x in o.criteria}
    )
    return {
        "type": REVIEW_TYPE,
        "capability": capability,
        "due": format_time(due),
        "constitution": c.digest,
        "criteria": criteria,
        "admitted": list(members_of(c, capability)),
        "refused": [
            {"organisation": r.organisation, "reason": r.reason}
            for r in sorted(refused, key=lambda r: r.organisation)
        ],
        "reasons": reasons,
    }
