"""Break-glass: an immediate, short grant for a named emergency the constitution allows, loudly
notified, and followed by a mandatory review (itself k-of-n) with a deadline.

The grant and its review request are logged in one append, so no emergency grant exists without
the review that must follow it. A review not done by its deadline is marked overdue (logged); the
grant is suspended from its deadline until the review is done, late if need be.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from custodes._durations import say_seconds
from custodes.authority import _decide
from custodes.authority._approvals import approver_key, quorum_status
from custodes.authority._grants import GrantBook
from custodes.authority._model import Grant, RuleStatus
from custodes.authority._requests import RequestBook
from custodes.authority._signed import check_signed, purpose_and_duration
from custodes.authority._signing import request_digest
from custodes.authority._state import AuthorityState
from custodes.authority._tables import authority_grants
from custodes.constitution import BreakGlassRule, Notify, Principal
from custodes.errors import ApprovalError, Denial, InputError, PolicyDenied
from custodes.log import Entry, format_time, parse_time

__all__ = ["BreakGlass"]

_log = logging.getLogger(__name__)


class BreakGlass:
    """Break-glass uses, their reviews (the ``review`` request kind), and the overdue sweep.

    Args:
        state: the authority's shared state.
        requests: the stored requests (a review is one).
        grants: the stored grants and their index.
    """

    def __init__(self, state: AuthorityState, requests: RequestBook, grants: GrantBook) -> None:
        self._state = state
        self._requests = requests
        self._grants = grants

    def use(self, request: Mapping[str, Any], signature: str) -> Grant:
        """Take the emergency grant a break-glass rule allows, and open its review.

        Raises:
            InputError: malformed, stale or replayed; no such rule; no statement of the
                emergency; longer than the rule allows.
            ApprovalError: the signature does not verify.
            PolicyDenied: the user may not break glass under the rule, or already has an open
                break-glass grant (or an overdue review).
            LogWriteError: the use could not be logged (no grant is made).
        """
        state = self._state
        with state.lock:
            self.sweep()
            signed = check_signed(state, request, signature, kinds=("break-glass",))
            req, digest, user = signed.request, signed.digest, signed.signer
            c = state.constitution
            rule = c.break_glass_by_id.get(str(req.get("rule")))
            if rule is None:
                raise InputError(
                    f"no break-glass rule {req.get('rule')!r}",
                    where="request.rule",
                    expected="one of: "
                    + (", ".join(c.break_glass_by_id) or "(the constitution allows none)"),
                )
            if req.get("capability") != rule.capability:
                raise InputError(
                    f"rule {rule.id} covers {rule.capability}",
                    where="request.capability",
                    expected=rule.capability,
                    actual=repr(req.get("capability")),
                )
            purpose, duration = purpose_and_duration(req)
            # The statement is what reviewers judge the emergency by; an empty one is refused.
            if not purpose.strip():
                raise InputError(
                    "break-glass needs a statement of the emergency", where="request.purpose"
                )
            if timedelta(seconds=duration) > rule.max_duration:
                raise InputError(
                    "longer than the break-glass rule allows",
                    where="request.duration_seconds",
                    expected=f"at most {say_seconds(rule.max_duration)}",
                    actual=say_seconds(duration),
                )
            # The coalition analysis counts break-glass users by this same function.
            refusal = _decide.break_glass_refusal(c, state.compiled, user.id, rule)
            if refusal is not None:
                raise PolicyDenied(
                    f"{user.id} may not break glass under {rule.id}",
                    reasons=[Denial(rule.id, refusal)],
                )
            grant_id = f"bg-{digest[:16]}"
            if self._grants.exists(grant_id):
                # Checked before anything is logged: a replayed body must leave no entry
                # claiming a second emergency grant.
                raise InputError(
                    f"this break-glass request was already made (grant {grant_id}): a replay",
                    where="request.nonce",
                    expected="a fresh nonce",
                )
            now = state.clock.now()
            self._refuse_open(user, rule.capability, rule.id, now)
            expires = now + timedelta(seconds=duration)
            deadline = now + rule.review.deadline
            # Loud: every approver this skips, every overseer organisation, and whom the rule
            # names.
            notify = _decide.break_glass_notified(c, rule).to_json()
            # The review is a request of its own, made by the server (unsigned: its digest is
            # what reviewers sign), so it is approved like any other.
            review = {
                "kind": "review",
                "constitution_version": c.version,
                "requester": user.id,
                "capability": rule.capability,
                "rule": rule.id,
                "break_glass": digest[:16],
                "nonce": secrets.token_hex(16),
                "created": format_time(now),
                "deadline": format_time(deadline),
            }
            review_digest = request_digest(review)
            entry = Entry.create(
                "authority.break_glass/v1",
                time=now,
                principal=user.id,
                body={
                    "grant_id": grant_id,
                    "rule": rule.id,
                    "emergency": rule.emergency,
                    "statement": purpose,
                    "principal": user.id,
                    "capability": rule.capability,
                    "granted_at": format_time(now),
                    "expires_at": format_time(expires),
                    "digest": digest,
                    "signature": signature,
                    "review_request_id": review_digest[:16],
                    "review_deadline": format_time(deadline),
                    "constitution_version": c.version,
                    "notify": notify,
                },
            )
            grant = Grant(
                id=grant_id,
                principal=user.id,
                capability=rule.capability,
                rule=rule.id,
                granted_at=now,
                expires_at=expires,
                constitution_version=c.version,
                break_glass=True,
                review_request_id=review_digest[:16],
                review_deadline=deadline,
                review_status="pending",
            )
            self._requests.record(
                review,
                review_digest,
                None,
                notify=notify,
                extra_entries=[entry],
                after=lambda conn, index: self._grants.insert(conn, grant, index),
            )
            self._grants.remember(grant)
            _log.warning(
                "BREAK-GLASS: %s took %s under %s until %s",
                user.id,
                rule.capability,
                rule.id,
                format_time(expires),
            )
            return grant

    def _refuse_open(self, user: Principal, capability: str, rule_id: str, now: datetime) -> None:
        """At most one open break-glass grant per person and capability (one still usable, or
        one whose review is not done), whichever of the person's identities took it; and none
        at all while a review of theirs is overdue.

        Raises:
            PolicyDenied: there is one; the reason names it.
        """
        c = self._state.constitution
        # Per person, not per identity: a second identity must not open a second emergency.
        identities = [p.id for p in c.principals if p.person_id == user.person_id]
        grants = sorted(self._grants.break_glass_of(identities), key=lambda g: g.granted_at or now)
        reasons = []
        for g in grants:
            if g.review_status == "overdue":
                reasons.append(
                    f"the review of {g.id} is overdue; it must be reviewed before glass is "
                    "broken again"
                )
            elif g.capability != capability:
                continue
            elif g.active_at(now):
                reasons.append(
                    f"{g.id} is active until {format_time(g.expires_at or now)}: one open "
                    "break-glass grant per person and capability"
                )
            elif g.review_status == "pending":
                reasons.append(
                    f"{g.id} is still under review (deadline "
                    f"{format_time(g.review_deadline or now)}): one open break-glass grant "
                    "per person and capability"
                )
        if reasons:
            raise PolicyDenied(
                f"{user.id} already has an open break-glass grant",
                reasons=[Denial(rule_id, reasons[0])],
            )

    def sweep(self) -> list[str]:
        """Mark break-glass reviews past their deadline overdue (logged).

        Returns:
            The ids of the grants whose reviews became overdue.

        Raises:
            LogWriteError: an overdue review could not be logged (it is left pending, and the
                next sweep tries again).
        """
        if self._state.loaded is None:
            return []
        now = self._state.clock.now()
        with self._state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(authority_grants).where(
                    (authority_grants.c.review_status == "pending")
                    & (authority_grants.c.review_deadline <= now)
                )
            ).all()
        done = []
        for row in rows:
            with self._state.lock:
                self._record_review(
                    row.id,
                    row.review_request_id,
                    outcome="overdue",
                    deadline=format_time(row.review_deadline),
                    approvals=None,
                    notify=(Notify(kinds=("overseer",)),),
                    now=now,
                )
            done.append(row.id)
        return done

    # -- RequestRules (the ``review`` kind) -------------------------------------------------

    def statuses(self, row: Any, approvals: Sequence[Any]) -> list[RuleStatus]:
        """Where the review stands against its rule's review quorum (none, if the rule is gone)."""
        bg = self._rule(row)
        if bg is None:
            return []
        return [
            quorum_status(
                self._state.constitution,
                row,
                approvals,
                rule=f"review:{bg.id}",
                approver_roles=bg.review.approver_roles,
                quorum=bg.review.quorum,
                validity=bg.review.deadline,
                now=self._state.clock.now(),
            )
        ]

    def approval_validity(self, row: Any) -> timedelta:
        """A review approval counts for as long as the review's deadline is from its start.

        Raises:
            ApprovalError: the review's rule no longer exists.
        """
        return self._rule_or_fail(row).review.deadline

    def approver_keys(self, row: Any, approver_id: str) -> list[bytes]:
        """The reviewer's key, if it holds one of the rule's reviewer roles.

        Raises:
            NotFoundError: no such principal.
            ApprovalError: it may not review (the user never reviews their own use), or the
                rule no longer exists.
        """
        roles = self._rule_or_fail(row).review.approver_roles
        return approver_key(self._state.constitution, row, approver_id, roles)

    def signer(self, row: Any, principal_id: str) -> Principal | None:
        """The active constitution's principal ``principal_id``."""
        return self._state.constitution.principals_by_id.get(principal_id)

    def settle(self, row: Any, approvals: Sequence[Any]) -> None:
        """Ratify the break-glass use once the review quorum is met; late if past its deadline.

        Raises:
            LogWriteError: the ratification could not be logged.
        """
        done = [s for s in self.statuses(row, approvals) if s.satisfied]
        if not done:
            return
        req = json.loads(row.body)
        now = self._state.clock.now()
        rule = self._rule_or_fail(row)
        # A review done after its deadline still counts, and says it was late.
        late = row.status == "overdue" or now >= parse_time(req["deadline"])
        outcome = "ratified-late" if late else "ratified"
        self._record_review(
            f"bg-{req['break_glass']}",
            row.id,
            outcome=outcome,
            deadline=req["deadline"],
            approvals=done[0].counted,
            notify=(rule.notify, Notify(kinds=("overseer",))),
            now=now,
        )

    def _record_review(
        self,
        grant_id: str,
        request_id: str,
        *,
        outcome: str,
        deadline: str,
        approvals: tuple[tuple[str, str], ...] | None,
        notify: Sequence[Notify],
        now: datetime,
    ) -> None:
        # One review outcome (ratified, ratified late, overdue): logged, then the grant's
        # review status and the review request's status follow, then the index.
        body: dict[str, Any] = {
            "grant_id": grant_id,
            "request_id": request_id,
            "outcome": outcome,
            "deadline": deadline,
            "notify": self._state.notified(*notify),
        }
        if approvals is not None:
            body["approvals"] = [{"principal": p, "organisation": o} for p, o in approvals]
        self._state.append("authority.review/v1", time=now, principal="custodes", body=body)
        # The grant records only overdue or ratified; the request keeps whether it was late.
        grant_status = "overdue" if outcome == "overdue" else "ratified"
        with self._state.engine.begin() as conn:
            conn.execute(
                authority_grants.update()
                .where(authority_grants.c.id == grant_id)
                .values(review_status=grant_status)
            )
            self._requests.set_status(
                conn, request_id, outcome, decided_at=None if outcome == "overdue" else now
            )
        # The index must see the new review status at once: it decides suspension.
        self._grants.remember(self._grants.get(grant_id))

    def _rule(self, row: Any) -> BreakGlassRule | None:
        req = json.loads(row.body)
        return self._state.constitution.break_glass_by_id.get(req.get("rule", ""))

    def _rule_or_fail(self, row: Any) -> BreakGlassRule:
        rule = self._rule(row)
        if rule is None:
            raise ApprovalError("the break-glass rule of this review no longer exists")
        return rule
