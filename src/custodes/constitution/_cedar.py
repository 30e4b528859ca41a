"""Membership criteria and access eligibility as Cedar policies (evaluated with ``cedarpy``).

One policy set and one entity set are built per constitution version and reused for every call;
decisions are cached per (principal, action, capability, facts), because a constitution version
never changes. Quorum counting and signature checks are ours: their outcome reaches Cedar as a
fact in the request context (``context.grants``), never the other way round.

Entity model (namespace ``Custodes``)::

    Organisation { id: String, kind: String, attributes: Record }
    Principal    { id: String, organisation: Organisation, roles: Set<String>,
                   attributes: Record, kind: String }

Facts in the request context: ``context.admitted`` (computed here: the principal and its
organisation meet every membership criterion they list) and ``context.grants`` (the rules under
which the principal holds an active grant of the capability, decided by ``custodes.authority``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

import cedarpy

from custodes.constitution._model import (
    AccessRule,
    Constitution,
    Criterion,
    Organisation,
    Principal,
)

__all__ = ["CedarDecision", "CompiledPolicies", "check_condition"]

_NS = "Custodes"

# ``json.dumps`` of one string, without its per-call encoder set-up: the same C function and the
# same output (ASCII-escaped, double-quoted), which Cedar reads as a string literal. A document
# of thousands of rules quotes tens of thousands of ids.
_quote = encode_basestring_ascii


def _uid(kind: str, id_: str) -> str:
    return f"{_NS}::{kind}::{_quote(id_)}"


def _quote_list(items: Iterable[str]) -> str:
    """``json.dumps`` of a list of strings (its default ``", "`` separator)."""
    return "[" + ", ".join(_quote(i) for i in items) + "]"


def _ref(kind: str, id_: str) -> dict[str, Any]:
    """A Cedar entity reference (``{"__entity": ...}``, Cedar's JSON entity format) in the custodes
    namespace.
    """
    return {"__entity": {"type": f"{_NS}::{kind}", "id": id_}}


def _organisation_entity(o: Organisation) -> dict[str, Any]:
    """An organisation as a Cedar entity: its id, kind and attributes (what criteria may test)."""
    return {
        "uid": _ref("Organisation", o.id),
        "parents": [],
        "attrs": {"id": o.id, "kind": o.kind, "attributes": dict(o.attributes)},
    }


# What in a criterion's condition could tell two principals with the same attributes, roles,
# kind and organisation apart: their id, an entity literal, or comparing the entity itself.
_IDENTITY = re.compile(r"\bid\b|::|\bprincipal\s*(==|!=|\bin\b)|(==|!=)\s*principal\b")


def _principal_entity(p: Principal) -> dict[str, Any]:
    """A principal as a Cedar entity: its id, organisation, roles, attributes and kind."""
    return {
        "uid": _ref("Principal", p.id),
        "parents": [],
        "attrs": {
            "id": p.id,
            "organisation": _ref("Organisation", p.organisation),
            "roles": sorted(p.roles),
            "attributes": dict(p.attributes),
            "kind": p.kind,
        },
    }


def _criterion_policy(c: Criterion) -> str:
    """The criterion ``c`` as one Cedar policy: ``meets`` on the criterion is permitted exactly when
    its condition holds.
    """
    return (
        f"@id({_quote('criterion:' + c.id)})\n"
        f"permit(principal, action == {_uid('Action', 'meets')}, "
        f"resource == {_uid('Criterion', c.id)}) when {{ {c.condition} }};\n"
    )


def check_condition(condition: str) -> str | None:
    """Parse a criterion's condition alone; the Cedar parser's message if it is malformed."""
    try:
        cedarpy.PolicySet.from_str(f"permit(principal, action, resource) when {{ {condition} }};")
    except ValueError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else "unparsable condition"
    return None


@dataclass(frozen=True)
class CedarDecision:
    """What Cedar decided for one request.

    Attributes:
        allowed: a permit policy matched and no forbid did.
        policies: ids of the policies that decided it.
        errors: policy evaluation errors (Cedar skips a policy whose evaluation errors).
    """

    allowed: bool
    policies: tuple[str, ...]
    errors: tuple[str, ...]


class CompiledPolicies:
    """The Cedar side of one constitution version. Thread-safe; decisions are cached."""

    def __init__(self, constitution: Constitution) -> None:
        """Compile the constitution's rules and criteria and decide every admission once.

        Raises:
            ValueError: a criterion or rule does not compile (the reader reports it as a problem).
        """
        self.constitution = constitution
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str, frozenset[str]], CedarDecision] = {}
        # (entity kind, criterion) -> entity id -> whether it meets the criterion.
        self._meets_known: dict[tuple[str, str], dict[str, bool]] = {}
        self._criteria_set = cedarpy.PolicySet.from_str(
            "".join(_criterion_policy(c) for c in constitution.criteria)
            or "forbid(principal, action, resource) when { false };"
        )
        # Each decision needs only its principal and organisation, so each gets a small entity
        # set of its own, built on first use and kept: parsing one set of every principal costs
        # seconds at 10,000 principals. Admission is computed from the criteria and reaches the
        # rules as a fact in the request context.
        self._handles: dict[tuple[str, str], cedarpy.Entities] = {}
        # Admission: one Cedar batch per criterion over everyone who lists it (one call per
        # principal and criterion costs a second at 3,000 principals). A principal of an
        # organisation that is not admitted is not asked, as before.
        org_met = self._met("Organisation", constitution.organisations)
        self.org_admitted = {
            o.id: all(o.id in org_met[cid] for cid in o.criteria)
            for o in constitution.organisations
        }
        candidates = [p for p in constitution.principals if self.org_admitted[p.organisation]]
        principal_met = self._met("Principal", candidates)
        self.principal_admitted = {
            p.id: self.org_admitted[p.organisation]
            and all(p.id in principal_met[cid] for cid in p.criteria)
            for p in constitution.principals
        }
        # One policy set per capability and action: Cedar evaluates every policy of a set on
        # each call, so a request about one capability never pays for the rules of the others,
        # and a policy whose action scope does not match is never applicable (no reason, no
        # error), so splitting by action decides the same. The "request" sets are parsed here,
        # so a rule that does not compile raises now; the "use" set of a capability, its policy
        # the same condition behind one more conjunct, on first use: checking a document asks
        # only "request", and parsing costs ~0.1 ms a policy.
        by_key: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for rule in constitution.access_rules:
            for action, name, text in self._rule_policies(rule):
                by_key.setdefault((rule.capability, action), []).append((name, text))
        self._rule_sets: dict[tuple[str, str], tuple[cedarpy.PolicySet, dict[str, str]]] = {}
        self._unparsed: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        for key, policies in by_key.items():
            # cedarpy names policies parsed from text policy0, policy1, ... in order.
            names = {f"policy{i}": name for i, (name, _) in enumerate(policies)}
            text = "".join(text for _, text in policies)
            if key[1] == "request":
                self._rule_sets[key] = (cedarpy.PolicySet.from_str(text), names)
            else:
                self._unparsed[key] = (text, names)

    def _rule_set(self, key: tuple[str, str]) -> tuple[cedarpy.PolicySet, dict[str, str]] | None:
        """The policy set for (capability, action), parsed on first use; None when no rule covers
        it.
        """
        entry = self._rule_sets.get(key)
        if entry is not None:
            return entry
        pending = self._unparsed.get(key)
        if pending is None:
            return None
        entry = (cedarpy.PolicySet.from_str(pending[0]), pending[1])
        with self._lock:
            self._rule_sets[key] = entry
        return entry

    def _met(
        self, entity_kind: str, entities: Iterable[Organisation | Principal]
    ) -> dict[str, frozenset[str]]:
        """For each criterion some of ``entities`` list: those of them that meet it."""
        wanted: dict[str, list[str]] = {}
        for e in entities:
            for cid in e.criteria:
                wanted.setdefault(cid, []).append(e.id)
        return {cid: self.meets_many(entity_kind, ids, cid) for cid, ids in wanted.items()}

    def _entity_set(self, kind: str, id_: str) -> cedarpy.Entities:
        """The entities one decision about ``kind`` ``id_`` needs (it and its organisation), built
        once and kept.
        """
        handle = self._handles.get((kind, id_))
        if handle is not None:
            return handle
        c = self.constitution
        if kind == "Principal":
            p = c.principals_by_id.get(id_)
            org_id = p.organisation if p is not None else ""
        else:
            p, org_id = None, id_
        out: list[dict[str, Any]] = []
        o = c.organisations_by_id.get(org_id)
        if o is not None:
            out.append(_organisation_entity(o))
        if p is not None:
            out.append(_principal_entity(p))
        handle = cedarpy.Entities.from_json_str(json.dumps(out))
        with self._lock:
            self._handles[(kind, id_)] = handle
        return handle

    def _rule_policies(self, rule: AccessRule) -> list[tuple[str, str, str]]:
        """The Cedar policies of ``rule``: (action, policy id, text) for ``request`` (the requester
        is eligible) and ``use`` (eligible and, unless the rule is standing, holding a grant
        under it).
        """
        conditions = ["context.admitted"]
        conditions.append(
            f"principal.roles.containsAny({_quote_list(sorted(rule.requester_roles))})"
        )
        for cid in rule.requester_criteria:
            conditions.append(f"({self.constitution.criteria_by_id[cid].condition})")
        eligible = " && ".join(conditions)
        request = (
            f"@id({_quote('request:' + rule.id)})\n"
            f"permit(principal, action == {_uid('Action', 'request')}, "
            f"resource == {_uid('Capability', rule.capability)}) when {{ {eligible} }};\n"
        )
        # A standing rule (k = 0) needs no grant; every other rule needs the fact that a grant
        # under a quorum exists.
        needs = (
            "true" if rule.quorum.approvals == 0 else f"context.grants.contains({_quote(rule.id)})"
        )
        use = (
            f"@id({_quote('use:' + rule.id)})\n"
            f"permit(principal, action == {_uid('Action', 'use')}, "
            f"resource == {_uid('Capability', rule.capability)}) "
            f"when {{ {needs} && {eligible} }};\n"
        )
        return [("request", f"request:{rule.id}", request), ("use", f"use:{rule.id}", use)]

    def meets(self, entity_kind: str, entity_id: str, criterion_id: str) -> bool:
        """Does an organisation or principal meet a membership criterion?"""
        result = cedarpy.is_authorized(
            {
                "principal": _uid(entity_kind, entity_id),
                "action": _uid("Action", "meets"),
                "resource": _uid("Criterion", criterion_id),
                "context": {},
            },
            self._criteria_set,
            self._entity_set(entity_kind, entity_id),
        )
        return bool(result.allowed)

    def meets_many(
        self, entity_kind: str, entity_ids: Iterable[str], criterion_id: str
    ) -> frozenset[str]:
        """The entities among ``entity_ids`` that meet a criterion: :meth:`meets` for many at
        once, in one Cedar batch over one entity set (the same entities, the same policy).
        Each answer is kept: only entities not asked about before go to Cedar."""
        wanted = set(entity_ids)
        with self._lock:
            known = self._meets_known.setdefault((entity_kind, criterion_id), {})
            ids = sorted(i for i in wanted if i not in known)
        if ids:
            found = self._meets_batch(entity_kind, ids, criterion_id)
            with self._lock:
                known.update((i, i in found) for i in ids)
        return frozenset(i for i in wanted if known[i])

    def _meets_batch(
        self, entity_kind: str, ids: Sequence[str], criterion_id: str
    ) -> frozenset[str]:
        """:meth:`meets_many` for ``ids`` (sorted, not empty), asked of Cedar.

        Principals alike in everything but their id (organisation, roles, attributes, kind)
        get the same answer unless the condition can tell them apart (it names ``id``, an
        entity literal, or compares the principal itself; or an attribute names an entity):
        only one of each is asked, and only those are in the entity set.
        """
        c = self.constitution
        same_as: dict[str, str] = {i: i for i in ids}
        entities: dict[str, dict[str, Any]] = {}
        if entity_kind == "Principal":
            criterion = c.criteria_by_id.get(criterion_id)
            alike = criterion is not None and not _IDENTITY.search(criterion.condition)
            first: dict[str, str] = {}
            for i in ids:
                p = c.principals_by_id.get(i)
                if p is None:
                    continue
                entity = _principal_entity(p)
                if alike and "__entity" in json.dumps(entity["attrs"]["attributes"]):
                    # An attribute naming an entity could name the principal itself.
                    alike = False
                    first.clear()
                    same_as = {i: i for i in ids}
                if alike:
                    key = json.dumps({**entity["attrs"], "id": None}, sort_keys=True)
                    same_as[i] = first.setdefault(key, i)
                entities[i] = entity
            asked = sorted(set(same_as.values()))
            orgs = {c.principals_by_id[i].organisation for i in asked if i in entities}
            out = [_organisation_entity(o) for o in c.organisations if o.id in orgs]
            out += [entities[i] for i in asked if i in entities]
        else:
            asked = list(ids)
            out = [_organisation_entity(o) for o in c.organisations if o.id in set(ids)]
        # No context key: Cedar takes the empty record (what :meth:`meets` passes), and cedarpy
        # would otherwise serialise an empty one per request (half the batch's time).
        results = cedarpy.is_authorized_batch(
            [
                {
                    "principal": _uid(entity_kind, i),
                    "action": _uid("Action", "meets"),
                    "resource": _uid("Criterion", criterion_id),
                }
                for i in asked
            ],
            self._criteria_set,
            cedarpy.Entities.from_json_str(json.dumps(out)),
        )
        allowed = {i for i, r in zip(asked, results, strict=True) if r.allowed}
        return frozenset(i for i in ids if same_as.get(i, i) in allowed)

    def decide(
        self,
        principal_id: str,
        action: str,
        capability_id: str,
        *,
        grants: frozenset[str] = frozenset(),
    ) -> CedarDecision:
        """Cedar's decision on ``action`` ("request" or "use") of a capability, cached."""
        key = (principal_id, action, capability_id, grants)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        entry = self._rule_set((capability_id, action))
        if entry is None:
            # Fail closed: no rule names this capability, so nothing permits it.
            decision = CedarDecision(allowed=False, policies=(), errors=())
        else:
            policy_set, names = entry
            result = cedarpy.is_authorized(
                {
                    "principal": _uid("Principal", principal_id),
                    "action": _uid("Action", action),
                    "resource": _uid("Capability", capability_id),
                    "context": {
                        "grants": sorted(grants),
                        "admitted": self.principal_admitted.get(principal_id, False),
                    },
                },
                policy_set,
                self._entity_set("Principal", principal_id),
            )
            diagnostics = result.diagnostics
            decision = CedarDecision(
                allowed=bool(result.allowed),
                policies=tuple(
                    sorted(names.get(str(r), str(r)) for r in (diagnostics.reasons or ()))
                ),
                errors=tuple(str(e) for e in (diagnostics.errors or ())),
            )
        with self._lock:
            self._cache[key] = decision
        return decision

    def may_request(self, principal_id: str, rule: AccessRule) -> bool:
        """Is the principal an eligible requester under this particular rule?"""
        p = self.constitution.principals_by_id.get(principal_id)
        # The role and admission conjuncts of the rule's policy, checked first because they
        # are cheap; Cedar still decides whenever they hold.
        if (
            p is None
            or not (p.roles & rule.requester_roles)
            or not (self.principal_admitted.get(p.id) and self.org_admitted.get(p.organisation))
        ):
            return False
        d = self.decide(principal_id, "request", rule.capability)
        return f"request:{rule.id}" in d.policies

    def eligible_requesters(self, rule: AccessRule) -> Iterator[str]:
        """Eligible requesters of a rule, lazily (stop early when one is enough)."""
        return (p.id for p in self.constitution.principals if self.may_request(p.id, rule))
