"""Casting a drill: its actors and capability tiers, chosen from the constitution in force by
what they may do (roles, organisation kinds, rules), never by name.

The choice is deterministic (the constitution's own order), and uses the authority's own
decisions (``may_request``, ``may_approve``, ``may_break_glass``), so a drill plays whoever the
deployment's rules make able to act, whatever its people are called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from custodes.authority import may_approve, may_break_glass, may_request
from custodes.constitution import CompiledPolicies, Constitution, Principal, encode_public_key
from custodes.drills._credentials import Credentials
from custodes.drills._scenario import ActorSpec, CapabilitySpec, Scenario

__all__ = ["Cast", "cast_scenario"]


@dataclass(frozen=True)
class Cast:
    """Who plays each actor and which tier each capability is; ``None`` with the reason why
    nobody could be chosen."""

    actors: Mapping[str, str | None]
    capabilities: Mapping[str, str | None]
    why_not: Mapping[str, str]

    def actor(self, name: str) -> str | None:
        """The principal cast as actor ``name`` (None: nobody fits)."""
        return self.actors.get(name)


def cast_scenario(
    scenario: Scenario,
    constitution: Constitution,
    compiled: CompiledPolicies,
    credentials: Credentials,
) -> Cast:
    """Choose the principals and tiers of ``scenario`` from ``constitution``."""
    why: dict[str, str] = {}
    caps: dict[str, str | None] = {}
    for name, cap_spec in scenario.capabilities.items():
        caps[name] = _capability(constitution, cap_spec)
        if caps[name] is None:
            why[f"capability:{name}"] = (
                f"no capability of constitution version {constitution.version} is "
                f"{_describe_cap(cap_spec)}"
            )
    chosen: dict[str, str | None] = {}
    taken: set[str] = set()
    for name, spec in scenario.actors.items():
        found = None
        for p in constitution.principals:
            if p.person_id in taken:
                continue
            if _fits(constitution, compiled, credentials, p, spec, chosen, caps):
                found = p
                break
        chosen[name] = found.id if found else None
        if found is not None:
            taken.add(found.person_id)
        else:
            why[name] = (
                f"no principal of constitution version {constitution.version} is "
                f"{_describe(spec)} with the drill holding its {spec.needs} credentials"
            )
    return Cast(chosen, caps, why)


def _capability(c: Constitution, spec: CapabilitySpec) -> str | None:
    """The first capability of the constitution with every property ``spec`` asks for
    (protected, served by a model, an action, a break-glass rule, an approval); None if none."""
    for cap in c.capabilities:
        if spec.protected is not None and (cap.id in c.coalition.protected) != spec.protected:
            continue
        if spec.served is not None and bool(cap.models) != spec.served:
            continue
        if spec.action is not None and spec.action not in cap.actions:
            continue
        if (
            spec.break_glass is not None
            and any(r.capability == cap.id for r in c.break_glass) != spec.break_glass
        ):
            continue
        if (
            spec.approvals is not None
            and any(r.capability == cap.id and r.quorum.approvals > 0 for r in c.access_rules)
            != spec.approvals
        ):
            continue
        return cap.id
    return None


def _fits(
    c: Constitution,
    compiled: CompiledPolicies,
    credentials: Credentials,
    p: Principal,
    spec: ActorSpec,
    chosen: Mapping[str, str | None],
    caps: Mapping[str, str | None],
) -> bool:
    """Whether ``p`` can play ``spec``: its role, organisation (kind, and relative to the
    actors cast before it), signer status, what the authority's own checks let it request,
    approve or break glass for, and the credentials the drill holds for it."""
    org = c.organisations_by_id[p.organisation]
    if spec.role is not None and spec.role not in p.roles:
        return False
    if spec.organisation_kind is not None and org.kind != spec.organisation_kind:
        return False
    if spec.kind is not None and p.kind != spec.kind:
        return False
    for other in spec.other_organisation_than:
        them = chosen.get(other)
        if them is None or c.principals_by_id[them].organisation == p.organisation:
            return False
    if spec.same_organisation_as is not None:
        them = chosen.get(spec.same_organisation_as)
        if them is None or c.principals_by_id[them].organisation != p.organisation:
            return False
    if spec.amendment_signer is not None and (p.id in c.amendment.signers) != (
        spec.amendment_signer
    ):
        return False
    if spec.may_request is not None:
        cap = caps.get(spec.may_request)
        rules = [r for r in c.access_rules if r.capability == cap]
        if cap is None or not any(may_request(c, compiled, p.id, r) for r in rules):
            return False
    if spec.may_approve is not None:
        cap = caps.get(spec.may_approve)
        rules = [r for r in c.access_rules if r.capability == cap and r.quorum.approvals > 0]
        if cap is None or not any(may_approve(c, p.id, r.approver_roles) for r in rules):
            return False
    if spec.may_break_glass is not None:
        cap = caps.get(spec.may_break_glass)
        glass = [r for r in c.break_glass if r.capability == cap]
        if cap is None or not any(may_break_glass(c, compiled, p.id, r) for r in glass):
            return False
    return _holds(credentials, p, spec)


def _holds(credentials: Credentials, p: Principal, spec: ActorSpec) -> bool:
    """Whether the drill holds what ``spec`` needs of ``p``: its signing key (the one the
    constitution names), a way to call the API as it, or the log's key."""
    public = encode_public_key(p.public_key) if p.public_key is not None else None
    if "signing" in spec.needs and credentials.signing_key(p.id, public) is None:
        return False
    if "api" in spec.needs and not credentials.can_call(p.id):
        return False
    return spec.needs != "log-key" or credentials.log_signer is not None


def _describe(spec: ActorSpec) -> str:
    """What ``spec`` asks of an actor, in words (for the reason nobody fits)."""
    parts = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in spec.model_dump(exclude_defaults=True).items()
        if k not in ("needs", "description")
    ]
    return ", ".join(parts) or "anyone"


def _describe_cap(spec: CapabilitySpec) -> str:
    """What ``spec`` asks of a capability, in words (for the reason none fits)."""
    parts = [
        f"{k.replace('_', ' ')}={v}"
        for k, v in spec.model_dump(exclude_defaults=True).items()
        if k != "description"
    ]
    return ", ".join(parts) or "any capability"
