"""Membership criteria and access eligibility as Cedar policies (evaluated with ``cedarpy``).

One policy set and one entity set are built per constitution version and reused for every call;
decisions are cached per (principal, action, capability, facts), because a constitution version
never changes. Quorum counting and signature checks are ours: their outcome reaches Cedar as a
fact in the request context (``context.granted``), never the other way round.

Entity model (namespace ``Custodes``)::

    Organisation { kind: String, attributes: Record, admitted: Bool }
    Principal    { organisation: Organisation, roles: Set<String>, attributes: Record,
                   kind: String, admitted: Bool }

``admitted`` is a fact computed here: the organisation (or principal) meets every membership
criterion it lists.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cedarpy

from custodes.constitution._model import AccessRule, Constitution, Criterion

__all__ = ["CedarDecision", "CompiledPolicies", "check_condition"]

_NS = "Custodes"


def _uid(kind: str, id_: str) -> str:
    return f'{_NS}::{kind}::{json.dumps(id_)}'


def _ref(kind: str, id_: str) -> dict[str, Any]:
    return {"__entity": {"type": f"{_NS}::{kind}", "id": id_}}


def _criterion_policy(c: Criterion) -> str:
    return (
        f"@id({json.dumps('criterion:' + c.id)})\n"
        f"permit(principal, action == {_uid('Action', 'meets')}, "
        f"resource == {_uid('Criterion', c.id)}) when {{ {c.condition} }};\n"
    )


def check_condition(condition: str) -> str | None:
    """Parse a criterion's condition alone; the Cedar parser's message if it is malformed."""
    try:
        cedarpy.PolicySet.from_str(
            f"permit(principal, action, resource) when {{ {condition} }};"
        )
    except ValueError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else "unparsable condition"
    return None


@dataclass(frozen=True)
class CedarDecision:
    allowed: bool
    policies: tuple[str, ...]
    errors: tuple[str, ...]


class CompiledPolicies:
    """The Cedar side of one constitution version. Thread-safe; decisions are cached."""

    def __init__(self, constitution: Constitution) -> None:
        self.constitution = constitution
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str, bool], CedarDecision] = {}
        self._criteria_set = cedarpy.PolicySet.from_str(
            "".join(_criterion_policy(c) for c in constitution.criteria) or
            "forbid(principal, action, resource) when { false };"
        )
        base = self._entities(org_admitted={}, principal_admitted={})
        self._criteria_entities = cedarpy.Entities.from_json_str(json.dumps(base))
        self.org_admitted = {
            o.id: all(self.meets("Organisation", o.id, cid) for cid in o.criteria)
            for o in constitution.organisations
        }
        self.principal_admitted = {
            p.id: self.org_admitted[p.organisation]
            and all(self.meets("Principal", p.id, cid) for cid in p.criteria)
            for p in constitution.principals
        }
        entities = self._entities(self.org_admitted, self.principal_admitted)
        self._entities_handle = cedarpy.Entities.from_json_str(json.dumps(entities))
        # cedarpy names policies parsed from text policy0, policy1, ... in order.
        self._policy_names: dict[str, str] = {}
        parts: list[str] = []
        for rule in constitution.access_rules:
            for name, text in self._rule_policies(rule):
                self._policy_names[f"policy{len(parts)}"] = name
                parts.append(text)
        policies = "".join(parts)
        # Fail closed: with no rules, the set holds a policy that matches nothing, so every
        # request is denied by default rather than by an empty-set error.
        self._rules_set = cedarpy.PolicySet.from_str(
            policies or "forbid(principal, action, resource) when { false };"
        )

    def _entities(
        self, org_admitted: Mapping[str, bool], principal_admitted: Mapping[str, bool]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for o in self.constitution.organisations:
            out.append({"uid": _ref("Organisation", o.id), "parents": [], "attrs": {
                "id": o.id, "kind": o.kind, "attributes": dict(o.attributes),
                "admitted": org_admitted.get(o.id, False)}})
        for p in self.constitution.principals:
            out.append({"uid": _ref("Principal", p.id), "parents": [], "attrs": {
                "id": p.id, "organisation": _ref("Organisation", p.organisation),
                "roles": sorted(p.roles), "attributes": dict(p.attributes), "kind": p.kind,
                "admitted": principal_admitted.get(p.id, False)}})
        return out

    def _rule_policies(self, rule: AccessRule) -> list[tuple[str, str]]:
        conditions = ["principal.admitted", "principal.organisation.admitted"]
        conditions.append(f"principal.roles.containsAny({json.dumps(sorted(rule.requester_roles))})")
        for cid in rule.requester_criteria:
            conditions.append(f"({self.constitution.criteria_by_id[cid].condition})")
        eligible = " && ".join(conditions)
        request = (
            f"@id({json.dumps('request:' + rule.id)})\n"
            f"permit(principal, action == {_uid('Action', 'request')}, "
            f"resource == {_uid('Capability', rule.capability)}) when {{ {eligible} }};\n"
        )
        # A standing rule (k = 0) needs no grant; every other rule needs the fact that a grant
        # under a quorum exists.
        needs = "true" if rule.quorum.approvals == 0 else "context.granted"
        use = (
            f"@id({json.dumps('use:' + rule.id)})\n"
            f"permit(principal, action == {_uid('Action', 'use')}, "
            f"resource == {_uid('Capability', rule.capability)}) "
            f"when {{ {needs} && {eligible} }};\n"
        )
        return [(f"request:{rule.id}", request), (f"use:{rule.id}", use)]

    def meets(self, entity_kind: str, entity_id: str, criterion_id: str) -> bool:
        """Does an organisation or principal meet a membership criterion?"""
        result = cedarpy.is_authorized(
            {"principal": _uid(entity_kind, entity_id), "action": _uid("Action", "meets"),
             "resource": _uid("Criterion", criterion_id), "context": {}},
            self._criteria_set, self._criteria_entities,
        )
        return bool(result.allowed)

    def decide(self, principal_id: str, action: str, capability_id: str, *,
               granted: bool = False) -> CedarDecision:
        """Cedar's decision on ``action`` ("request" or "use") of a capability, cached."""
        key = (principal_id, action, capability_id, granted)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = cedarpy.is_authorized(
            {"principal": _uid("Principal", principal_id), "action": _uid("Action", action),
             "resource": _uid("Capability", capability_id), "context": {"granted": granted}},
            self._rules_set, self._entities_handle,
        )
        diagnostics = result.diagnostics
        decision = CedarDecision(
            allowed=bool(result.allowed),
            policies=tuple(sorted(self._policy_names.get(str(r), str(r))
                                  for r in (diagnostics.reasons or ()))),
            errors=tuple(str(e) for e in (diagnostics.errors or ())),
        )
        with self._lock:
            self._cache[key] = decision
        return decision

    def may_request(self, principal_id: str, rule: AccessRule) -> bool:
        """Is the principal an eligible requester under this particular rule?"""
        d = self.decide(principal_id, "request", rule.capability)
        return f"request:{rule.id}" in d.policies

    def eligible_requesters(self, rule: AccessRule) -> Iterable[str]:
        return [p.id for p in self.constitution.principals if self.may_request(p.id, rule)]
