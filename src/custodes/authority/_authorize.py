"""The authorization decision: may a principal use a capability now, and under which grant?

Cedar decides over the facts custodes counted (which rules the principal holds an approved grant
under); break-glass grants are checked here against the rule that allowed them, so a grant
outlives neither its rule nor its holder's admission. Every refusal names each rule and what it
still needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from custodes.authority import _decide
from custodes.authority._grants import GrantBook
from custodes.authority._model import Grant
from custodes.authority._state import AuthorityState
from custodes.clock import utc
from custodes.constitution import CompiledPolicies, Constitution
from custodes.errors import Denial, PolicyDenied
from custodes.log import format_time

__all__ = ["authorize"]


def authorize(
    state: AuthorityState,
    grants: GrantBook,
    principal_id: str,
    capability_id: str,
    *,
    at: datetime | None = None,
    resource: str | None = None,
) -> Grant:
    """The grant under which ``principal_id`` may use ``capability_id`` at ``at`` (default now):
    an approved grant, a standing rule's permission, or a break-glass grant that still holds.

    Raises:
        PolicyDenied: no; ``reasons`` name each rule and what is missing.
        ValueError: ``at`` is a naive datetime.
    """
    c = state.loaded
    if c is None:
        # Fail closed: without a constitution nothing is permitted.
        raise PolicyDenied(
            "no constitution is loaded", reasons=[Denial("constitution", "load a constitution")]
        )
    compiled = state.compiled
    # Naive times are refused (clock.utc): an instant without a zone names no instant.
    when = utc(at) if at is not None else state.clock.now()
    if principal_id not in c.principals_by_id:
        raise PolicyDenied(
            f"{principal_id!r} is not a principal of constitution version {c.version}",
            reasons=[Denial("constitution", f"unknown principal {principal_id}")],
        )
    if capability_id not in c.capabilities_by_id:
        raise PolicyDenied(
            f"unknown capability {capability_id!r}",
            reasons=[Denial("constitution", f"unknown capability {capability_id}")],
        )
    # From the in-memory index: this is every model call's path, with no database round trip.
    live = [g for g in grants.held(principal_id, capability_id) if g.covers(when, resource)]
    approved = [g for g in live if not g.break_glass]
    decision = compiled.decide(
        principal_id, "use", capability_id, grants=frozenset(g.rule for g in approved)
    )
    if decision.allowed:
        # Cedar names the rules that allowed it: a grant under one of them, or a standing
        # rule (which needs none).
        allowing = {p.split(":", 1)[1] for p in decision.policies if p.startswith("use:")}
        covering = [g for g in approved if g.rule in allowing]
        if covering:
            # The longest-lived covering grant: a cache of the decision may keep it longest.
            return max(covering, key=lambda g: g.expires_at or when)
        standing = sorted(r for r in allowing if c.access_rules_by_id[r].quorum.approvals == 0)
        if standing:
            return Grant(
                id=f"standing:{standing[0]}",
                principal=principal_id,
                capability=capability_id,
                rule=standing[0],
                granted_at=None,
                expires_at=None,
                constitution_version=c.version,
            )
    # Break-glass is the last resort: it is used only when no approved or standing rule covers.
    emergency = [g for g in live if g.break_glass and _break_glass_holds(c, compiled, g)]
    if emergency:
        return max(emergency, key=lambda g: g.expires_at or when)
    raise PolicyDenied(
        f"{principal_id} may not use {capability_id}",
        reasons=explain_denial(
            c,
            compiled,
            principal_id,
            capability_id,
            held=grants.held(principal_id, capability_id),
            when=when,
        ),
    )


def _break_glass_holds(c: Constitution, compiled: CompiledPolicies, g: Grant) -> bool:
    # Checked at each use, not only when glass was broken: an amendment that removes the rule
    # or the holder's role, or a holder who is no longer admitted, ends the emergency grant.
    rule = c.break_glass_by_id.get(g.rule)
    p = c.principals_by_id.get(g.principal)
    return (
        rule is not None
        and p is not None
        and rule.capability == g.capability
        and bool(p.roles & rule.roles)
        and compiled.principal_admitted[p.id]
    )


def explain_denial(
    c: Constitution,
    compiled: CompiledPolicies,
    principal_id: str,
    capability_id: str,
    *,
    held: Sequence[Grant],
    when: datetime,
) -> list[Denial]:
    """Why ``principal_id``, holding ``held`` (its grants of ``capability_id``), is refused at
    ``when``: per rule, what it needs, and which of its grants expired, were revoked or are
    suspended pending a review."""
    rules = c.rules_for(capability_id)
    if not rules:
        return [Denial("constitution", f"no access rule covers {capability_id}")]
    past = [g for g in held if not g.active_at(when)]
    out = [
        Denial(
            g.rule,
            f"break-glass grant {g.id} is suspended: its review was due at "
            f"{format_time(g.review_deadline or when)} and is not done",
        )
        for g in held
        if g.active_at(when) and g.suspended_at(when)
    ]
    for rule in rules:
        refusal = _decide.requester_refusal(c, compiled, principal_id, rule)
        if refusal is not None:
            out.append(Denial(rule.id, refusal))
            continue
        q = rule.quorum
        text = (
            f"no active grant: request one (needs {q.approvals} approvals from "
            f"{q.organisations} organisations"
            + "".join(f", at least {n} {k}" for k, n in sorted(q.kinds.items()))
            + ")"
        )
        # Say what happened to the last grant: a user whose grant ended needs to know why.
        for g in past:
            if g.rule == rule.id and g.revoked_at is not None:
                text = f"grant {g.id} was revoked at {format_time(g.revoked_at)}; " + text
            elif g.rule == rule.id and g.expires_at is not None:
                text = f"grant {g.id} expired at {format_time(g.expires_at)}; " + text
        out.append(Denial(rule.id, text))
    return out
