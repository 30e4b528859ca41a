"""Requests for a grant (or an escrow read) under the access rules, and the grant that follows
once one rule's quorum is met.

A request is checked against every access rule of its capability: the requester must be eligible
under one (``_decide.may_request``, the same function the coalition analysis uses), the duration
within that rule's maximum and a purpose given where it asks for one. The first rule whose quorum
the approvals meet decides the grant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from custodes._durations import say_seconds
from custodes.authority import _decide
from custodes.authority._approvals import approver_key, quorum_status
from custodes.authority._grants import GrantBook
from custodes.authority._model import Grant, RuleStatus
from custodes.authority._requests import RequestBook
from custodes.authority._signed import check_signed, purpose_and_duration
from custodes.authority._state import AuthorityState
from custodes.constitution import AccessRule, Principal
from custodes.errors import Denial, InputError, PolicyDenied
from custodes.log import format_time

__all__ = ["GrantRequests"]

# An approval of a request whose capability no rule covers any more still expires.
_DEFAULT_VALIDITY = timedelta(hours=24)


class GrantRequests:
    """Grant and escrow-read requests: submitting them, and the grant once approved.

    Args:
        state: the authority's shared state.
        requests: the stored requests.
        grants: the stored grants and their index.
    """

    def __init__(
        self,
        state: AuthorityState,
        requests: RequestBook,
        grants: GrantBook,
    ) -> None:
        self._state = state
        self._requests = requests
        self._grants = grants

    def submit(self, request: Mapping[str, Any], signature: str) -> str:
        """Make a request for a grant (or an escrow read), signed by the requester.

        Returns:
            The request's id.

        Raises:
            InputError: malformed, stale or duplicate request.
            ApprovalError: the requester's signature does not verify.
            PolicyDenied: the requester may not request this capability.
            LogWriteError: the request could not be logged (it is not made).
        """
        with self._state.lock:
            signed = check_signed(self._state, request, signature, kinds=("grant", "escrow-read"))
            req = signed.request
            # An escrow read is for one finding: a grant without a resource would cover every one.
            if req["kind"] == "escrow-read" and not isinstance(req.get("resource"), str):
                raise InputError("an escrow read names its resource", where="request.resource")
            rules = self.applicable_rules(req, signed.signer)
            notify = self._state.notified(*(r.notify for r in rules))
            return self._requests.record(req, signed.digest, signature, notify=notify)

    def applicable_rules(self, req: Mapping[str, Any], requester: Principal) -> list[AccessRule]:
        """The access rules a request could be granted under: the requester is eligible, the
        rule takes approvals, the duration fits and a required purpose is given.

        Raises:
            InputError: unknown capability, a standing rule already covers it, the duration is
                longer than every rule allows, or a purpose is required and missing.
            PolicyDenied: the requester is eligible under no rule; ``reasons`` say why.
        """
        c = self._state.constitution
        compiled = self._state.compiled
        capability = req.get("capability")
        if not isinstance(capability, str) or capability not in c.capabilities_by_id:
            raise InputError(
                f"unknown capability {capability!r}",
                where="request.capability",
                expected="one of: " + ", ".join(sorted(c.capabilities_by_id)),
            )
        purpose, duration = purpose_and_duration(req)
        rules = c.rules_for(capability)
        # Eligibility is decided per rule; the reasons list every rule, so the requester sees each.
        eligible = [r for r in rules if _decide.may_request(c, compiled, requester.id, r)]
        if not eligible:
            raise PolicyDenied(
                f"{requester.id} may not request {capability}",
                reasons=[
                    Denial(
                        r.id,
                        _decide.requester_refusal(c, compiled, requester.id, r)
                        or "not an eligible requester",
                    )
                    for r in rules
                ]
                or [Denial("constitution", f"no access rule covers {capability}")],
            )
        # A standing rule needs no request; asking for one would only make noise in the log.
        quorum_rules = [r for r in eligible if r.quorum.approvals > 0]
        if not quorum_rules:
            raise InputError(
                f"{requester.id} already holds {capability} under the standing "
                f"rule {eligible[0].id}: there is nothing to request",
                where="request.capability",
            )
        # Only rules the request fits can grant it: the duration and the purpose are signed.
        fitting = [
            r
            for r in quorum_rules
            if timedelta(seconds=duration) <= r.max_duration
            and (purpose.strip() or not r.purpose_required)
        ]
        if not fitting:
            longest = max(r.max_duration for r in quorum_rules)
            if timedelta(seconds=duration) > longest:
                raise InputError(
                    "the requested duration is longer than any rule allows",
                    where="request.duration_seconds",
                    expected=f"at most {say_seconds(longest)}",
                    actual=say_seconds(duration),
                )
            raise InputError(
                "a purpose is required",
                where="request.purpose",
                expected="a statement of why the capability is needed",
            )
        return fitting

    # -- RequestRules ----------------------------------------------------------------------

    def statuses(self, row: Any, approvals: Sequence[Any]) -> list[RuleStatus]:
        """Where the request stands against each rule it could still be granted under (none,
        if it no longer fits any: the constitution or the requester changed)."""
        c = self._state.constitution
        requester = c.principals_by_id.get(row.requester)
        try:
            rules = self.applicable_rules(json.loads(row.body), requester) if requester else []
        # Re-checked at every read: an amendment or a lost role can make a pending request unfit.
        except (InputError, PolicyDenied):
            rules = []
        now = self._state.clock.now()
        return [
            quorum_status(
                c,
                row,
                approvals,
                rule=rule.id,
                approver_roles=rule.approver_roles,
                quorum=rule.quorum,
                validity=rule.approval_validity,
                now=now,
            )
            for rule in rules
        ]

    def approval_validity(self, row: Any) -> timedelta:
        """The longest approval validity of the capability's rules."""
        c = self._state.constitution
        rules = c.rules_for(row.capability) if row.capability else ()
        return max((r.approval_validity for r in rules), default=_DEFAULT_VALIDITY)

    def approver_keys(self, row: Any, approver_id: str) -> list[bytes]:
        """The approver's key, if it holds an approver role of any of the capability's rules.

        Raises:
            NotFoundError: no such principal.
            ApprovalError: it may not approve this request.
        """
        c = self._state.constitution
        # Any approver role of the capability's rules may sign; each rule then counts its own.
        roles = frozenset[str]().union(*(r.approver_roles for r in c.rules_for(row.capability)))
        return approver_key(c, row, approver_id, roles)

    def signer(self, row: Any, principal_id: str) -> Principal | None:
        """The active constitution's principal ``principal_id``."""
        return self._state.constitution.principals_by_id.get(principal_id)

    def settle(self, row: Any, approvals: Sequence[Any]) -> None:
        """Grant, under the first rule whose quorum is met.

        Raises:
            LogWriteError: the grant could not be logged (none is made).
        """
        # Rules come in constitution order; the first met decides, so the outcome is deterministic.
        done = [s for s in self.statuses(row, approvals) if s.satisfied]
        if done:
            self._grant(row, done[0])

    def _grant(self, row: Any, status: RuleStatus) -> None:
        c = self._state.constitution
        req = json.loads(row.body)
        rule = c.access_rules_by_id[status.rule]
        now = self._state.clock.now()
        grant = Grant(
            id=f"g-{row.id}",
            principal=row.requester,
            capability=row.capability,
            rule=rule.id,
            granted_at=now,
            expires_at=now + timedelta(seconds=req["duration_seconds"]),
            constitution_version=c.version,
            request_id=row.id,
            approvals=status.counted,
            resource=req.get("resource"),
        )
        # Log first (invariant 1); the row and the index below follow the durable entry.
        index = self._state.append(
            "authority.grant/v1",
            time=now,
            principal=row.requester,
            body={
                "id": grant.id,
                "request_id": row.id,
                "principal": row.requester,
                "capability": row.capability,
                "rule": rule.id,
                "resource": grant.resource,
                "granted_at": format_time(now),
                "expires_at": format_time(grant.expires_at or now),
                "constitution_version": c.version,
                "approvals": [{"principal": p, "organisation": o} for p, o in status.counted],
                "notify": self._state.notified(rule.notify),
            },
        )
        with self._state.engine.begin() as conn:
            self._grants.insert(conn, grant, index)
            self._requests.set_status(conn, row.id, "granted", decided_at=now)
        self._grants.remember(grant)
