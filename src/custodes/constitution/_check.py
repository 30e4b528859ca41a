"""The semantic pass of reading a constitution: references, duplicates, Cedar conditions,
durations, keys and whether every quorum can be met, each problem with its line.

It runs only over a document the JSON Schema pass (``_read.py``) found well shaped (it reads
the data as the schema shaped it); it appends its problems to the same document and
builds the frozen dataclasses of ``_model.py``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from custodes.constitution._cedar import check_condition
from custodes.constitution._compile import compile_policies
from custodes.constitution._feasibility import (
    _first_infeasible,
    _holds_role,
    _identities,
    _infeasible,
    _may_request,
    _Pool,
)
from custodes.constitution._model import (
    AccessRule,
    AmendmentRule,
    BreakGlassRule,
    Capability,
    CoalitionFloor,
    Constitution,
    Criterion,
    EntrenchedClause,
    Notify,
    Organisation,
    OrganisationKind,
    Principal,
    Quorum,
    ReviewRule,
    Witness,
    WitnessConfig,
)
from custodes.constitution._paths import MISSING, resolve_path
from custodes.constitution._provenance import read_provenance
from custodes.constitution._values import decode_public_key, parse_duration
from custodes.constitution._yaml import LocatedDocument, format_path
from custodes.errors import ConstitutionProblem

# RFC 8785 bytes (the log's fast path, which falls back to the reference implementation).
from custodes.log import canonical_json

__all__ = ["MAX_PROBLEMS"]

MAX_PROBLEMS = 100
"""The most problems one check reports (and looks for, per pass), with a count of the rest."""


# What each kind of usage rule needs (custodes.usage, docs/usage.md).
_USAGE_RULE_NEEDS: dict[str, tuple[str, ...]] = {
    "max-person-share": ("capability", "share", "window"),
    "max-organisation-share": ("capability", "share", "window"),
    "min-organisations": ("capability", "organisations", "window"),
    "max-restricted-grants": ("tiers",),
    "unusual-key-rate": ("window", "baseline", "factor"),
}
_USAGE_RULE_KEYS = frozenset(
    {
        "capability",
        "share",
        "window",
        "organisations",
        "tiers",
        "measure",
        "gate",
        "min_calls",
        "baseline",
        "factor",
    }
)
# Keys a kind may have beside those it needs (an unusual-key-rate rule watches every tier, or one).
_USAGE_RULE_MAY: dict[str, frozenset[str]] = {"unusual-key-rate": frozenset({"capability"})}


class _Checker:
    """The semantic pass. Appends problems to the document and builds the dataclasses."""

    def __init__(self, doc: LocatedDocument) -> None:
        """Start a pass over ``doc``, remembering the problems the schema pass already named."""
        self.doc = doc
        self.named = {(p.line, p.path) for p in doc.problems}
        self.data: dict[str, Any] = doc.data

    def problem(self, path: Sequence[str | int], message: str, expected: str | None = None) -> None:
        """Record a problem at ``path`` (its line looked up), once per value, at most
        ``MAX_PROBLEMS`` in all (the rest only counted): a broken document gets every
        problem named in one read, but not an unbounded report."""
        line, where = self.doc.line(path), format_path(path)
        if (line, where) in self.named:
            return  # the schema pass already named this value
        if len(self.doc.problems) >= MAX_PROBLEMS:
            self.doc.dropped += 1
            return
        self.named.add((line, where))
        self.doc.problems.append(
            ConstitutionProblem(message, line=line, path=where, expected=expected)
        )

    def unique(self, section: str, items: Sequence[Mapping[str, Any]], key: str = "id") -> None:
        """A problem for each repeated ``key`` in ``section``, naming where it first was."""
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            value = item[key]
            if value in seen:
                self.problem(
                    (section, i, key),
                    f"duplicate {key} {value!r} "
                    f"(also {section}[{seen[value]}] on line "
                    f"{self.doc.line((section, seen[value]))})",
                    expected=f"each {key} once",
                )
            else:
                seen[value] = i

    def duration(
        self, path: tuple[str | int, ...], text: str | None, default: timedelta | None = None
    ) -> timedelta:
        """The duration at ``path``; a malformed one is a problem (and a placeholder of one
        second is returned, so the pass goes on to find the other problems)."""
        if text is None:
            return default or timedelta(0)
        value = parse_duration(text)
        if value is None:
            self.problem(
                path,
                f"bad duration {text!r}",
                expected="a positive duration such as 8h, 30m, 1d12h or 90s",
            )
            return default or timedelta(seconds=1)
        return value

    def build(self, text: str) -> Constitution:
        """Check every section against the others and build the :class:`Constitution`.

        References (organisations, roles, capabilities, criteria, principals) are resolved
        section by section; the quorum feasibility check runs only once everything else is
        clean, because it needs every reference resolved. The constitution is returned even
        when problems were found (the caller raises): its parts stand in so that one pass
        reports every problem.
        """
        d = self.data
        orgs_raw: list[dict[str, Any]] = d["organisations"]
        principals_raw: list[dict[str, Any]] = d["principals"]
        caps_raw: list[dict[str, Any]] = d["capabilities"]
        criteria_raw: list[dict[str, Any]] = d.get("criteria", [])
        access_raw: list[dict[str, Any]] = d.get("access", [])
        bg_raw: list[dict[str, Any]] = d.get("break_glass", [])
        entrenched_raw: list[dict[str, Any]] = d.get("entrenched", [])
        witnesses_raw: dict[str, Any] = d.get("witnesses", {})
        coalition_raw: dict[str, Any] = d.get("coalition", {})

        for section, items in (
            ("organisations", orgs_raw),
            ("principals", principals_raw),
            ("capabilities", caps_raw),
            ("criteria", criteria_raw),
            ("access", access_raw),
            ("break_glass", bg_raw),
            ("entrenched", entrenched_raw),
        ):
            self.unique(section, items)
        self.unique("witnesses", witnesses_raw.get("list", []), key="name")
        # Rule ids share one namespace: a grant names its rule, access or break-glass.
        access_ids = {r["id"] for r in access_raw}
        for i, r in enumerate(bg_raw):
            if r["id"] in access_ids:
                self.problem(
                    ("break_glass", i, "id"),
                    f"id {r['id']!r} is already an access rule's id",
                    expected="rule ids unique across access and break_glass",
                )

        org_ids = {o["id"] for o in orgs_raw}
        criteria = self._criteria(criteria_raw)
        organisations = self._organisations(orgs_raw, criteria)
        principals = self._principals(principals_raw, org_ids, criteria)
        capabilities = self._capabilities(caps_raw)
        cap_ids = {c.id for c in capabilities}
        roles = {r for p in principals for r in p.roles}
        access_rules = [
            self._access_rule(i, r, cap_ids, roles, org_ids, criteria)
            for i, r in enumerate(access_raw)
        ]
        break_glass = [
            self._break_glass(i, r, cap_ids, roles, org_ids) for i, r in enumerate(bg_raw)
        ]
        amendment = self._amendment(d["amendment"], principals)
        entrenched = self._entrenched(entrenched_raw, amendment, principals)
        witnesses = self._witnesses(witnesses_raw, org_ids)
        coalition = self._coalition(coalition_raw, cap_ids, len(org_ids))
        # The custody registry reads these windows from the document; check them here so a
        # bad one is refused at load, with its line, never at alarm time.
        custody = d.get("custody", {})
        for key in ("stockpiling_window", "vendor_notice_within", "read_follow_up_within"):
            if key in custody:
                self.duration(("custody", key), custody[key])
        coordinators = custody.get("coordinators", {})
        for i, org in enumerate(coordinators.get("organisations", ())):
            if org not in org_ids:
                self.problem(
                    ("custody", "coordinators", "organisations", i),
                    f"unknown organisation {org!r}",
                    expected="an organisation id of this constitution",
                )
        for i, role in enumerate(coordinators.get("roles", ())):
            if role not in roles:
                self.problem(
                    ("custody", "coordinators", "roles", i),
                    f"no principal holds role {role!r}",
                    expected="a role some principal holds",
                )

        # custodes.usage reads its rules from the document; checked here so a bad one is
        # refused at load, with its line, never when a call is gated.
        self._usage(
            d.get("usage", {}),
            cap_ids,
            roles,
            {r.capability for r in access_rules if r.quorum.approvals > 0},
        )
        provenance = read_provenance(
            d.get("provenance", {}),
            problem=self.problem,
            notify=lambda path, raw: self._notify(path, raw, org_ids, roles),
            capabilities=cap_ids,
            principals=principals,
            access_rules=access_rules,
        )

        constitution = Constitution(
            version=d["version"],
            name=d.get("name", ""),
            organisations=tuple(organisations),
            principals=tuple(principals),
            capabilities=tuple(capabilities),
            criteria=tuple(criteria.values()),
            access_rules=tuple(access_rules),
            break_glass=tuple(break_glass),
            amendment=amendment,
            entrenched=tuple(entrenched),
            witnesses=witnesses,
            coalition=coalition,
            log_enabled=bool(d.get("log", {}).get("enabled", True)),
            document=d,
            digest=hashlib.sha256(canonical_json(d)).hexdigest(),
            text=text,
            log_append_roles=frozenset(d.get("log", {}).get("append", {}).get("roles", ())),
            provenance=provenance,
        )
        if self.doc.problems:
            # Feasibility needs every reference resolved; it runs once the rest is clean.
            return constitution
        self._check_quorums(constitution, access_raw, bg_raw)
        return constitution

    # -- sections ------------------------------------------------------------

    def _usage(
        self,
        raw: Mapping[str, Any],
        cap_ids: set[str],
        roles: set[str],
        approved_tiers: set[str],
    ) -> None:
        """The concentration rules (what each kind needs, known tiers, valid windows) and the
        review clocks (restricted tiers, known roles); ``approved_tiers`` are the tiers whose
        access needs approvals (the restricted tiers when ``restricted`` is not given)."""
        rules: list[dict[str, Any]] = raw.get("rules", [])
        seen: dict[str, int] = {}
        for i, r in enumerate(rules):
            path: tuple[str | int, ...] = ("usage", "rules", i)
            if r["id"] in seen:
                self.problem(
                    (*path, "id"),
                    f"duplicate rule id {r['id']!r} (also usage.rules[{seen[r['id']]}])",
                    expected="each id once",
                )
            seen.setdefault(r["id"], i)
            needs = _USAGE_RULE_NEEDS[r["kind"]]
            for key in needs:
                if key not in r:
                    self.problem(
                        path,
                        f"a {r['kind']} rule needs {key!r}",
                        expected=", ".join(needs) + " (see docs/usage.md)",
                    )
            may = _USAGE_RULE_MAY.get(r["kind"], frozenset())
            for key in _USAGE_RULE_KEYS - set(needs) - may - {"measure", "gate", "min_calls"}:
                if key in r:
                    self.problem(
                        (*path, key),
                        f"a {r['kind']} rule has no {key!r}",
                        expected=", ".join(needs),
                    )
            share_rule = r["kind"] in ("max-person-share", "max-organisation-share")
            for key in ("measure", "gate", "min_calls"):
                if key == "min_calls" and r["kind"] == "unusual-key-rate":
                    continue
                if key in r and not share_rule:
                    self.problem(
                        (*path, key),
                        f"only share rules have {key!r}",
                        expected="max-person-share or max-organisation-share",
                    )
            if "baseline" in r:
                self.duration((*path, "baseline"), r["baseline"])
            if "capability" in r and r["capability"] not in cap_ids:
                self.problem((*path, "capability"), f"unknown capability {r['capability']!r}")
            if "window" in r:
                self.duration((*path, "window"), r["window"])
        for j, cap in enumerate(raw.get("restricted", [])):
            if cap not in cap_ids:
                self.problem(("usage", "restricted", j), f"unknown capability {cap!r}")
        restricted = set(raw["restricted"]) if "restricted" in raw else approved_tiers
        reviewed: dict[str, int] = {}
        for i, r in enumerate(raw.get("reviews", [])):
            path = ("usage", "reviews", i)
            cap = r["capability"]
            if cap not in cap_ids:
                self.problem((*path, "capability"), f"unknown capability {cap!r}")
            elif cap not in restricted:
                # A clock on an open tier would ask overseers to re-justify nothing.
                self.problem(
                    (*path, "capability"),
                    f"{cap!r} is not a restricted tier",
                    expected="one of: " + ", ".join(sorted(restricted))
                    if restricted
                    else "a tier under usage.restricted or one whose access needs approvals",
                )
            elif cap in reviewed:
                self.problem(
                    (*path, "capability"),
                    f"a second review clock for {cap!r} (also usage.reviews[{reviewed[cap]}])",
                    expected="one review clock per tier",
                )
            reviewed.setdefault(cap, i)
            self.duration((*path, "every"), r["every"])
            self._roles((*path, "approvers", "roles"), r["approvers"]["roles"], roles)
            if r["quorum"]["approvals"] < 1:
                self.problem(
                    (*path, "quorum", "approvals"),
                    "a review needs at least one approval",
                    expected="approvals: 1 or more (renewing a restriction is a decision)",
                )

    def _criteria(self, raw: list[dict[str, Any]]) -> dict[str, Criterion]:
        """The named Cedar criteria by id; a condition that does not parse is a problem."""
        out: dict[str, Criterion] = {}
        for i, c in enumerate(raw):
            error = check_condition(c["condition"])
            if error:
                # Kept, so references to it are not reported as unknown as well.
                self.problem(
                    ("criteria", i, "condition"),
                    f"Cedar condition does not parse: {error}",
                    expected="the body of a Cedar when { ... } clause",
                )
            out.setdefault(
                c["id"],
                Criterion(
                    id=c["id"],
                    applies_to=c["applies_to"],
                    condition=c["condition"],
                    description=c.get("description", ""),
                ),
            )
        return out

    def _criteria_refs(
        self,
        path: tuple[str | int, ...],
        refs: Iterable[str],
        criteria: Mapping[str, Criterion],
        applies_to: str,
    ) -> tuple[str, ...]:
        """Check that each criterion named at ``path`` exists and applies to ``applies_to``
        (principal or organisation); the names, as given.
        """
        for j, ref in enumerate(refs):
            c = criteria.get(ref)
            if c is None:
                self.problem(
                    (*path, j),
                    f"unknown criterion {ref!r}",
                    expected="one of: " + (", ".join(sorted(criteria)) or "(none)"),
                )
            elif c.applies_to != applies_to:
                self.problem(
                    (*path, j),
                    f"criterion {ref!r} applies to {c.applies_to}s",
                    expected=f"a criterion that applies to {applies_to}s",
                )
        return tuple(refs)

    def _organisations(
        self, raw: list[dict[str, Any]], criteria: Mapping[str, Criterion]
    ) -> list[Organisation]:
        """The organisations, with their criteria checked."""
        out = []
        for i, o in enumerate(raw):
            refs = self._criteria_refs(
                ("organisations", i, "criteria"), o.get("criteria", []), criteria, "organisation"
            )
            out.append(
                Organisation(
                    id=o["id"],
                    kind=cast(OrganisationKind, o["kind"]),
                    name=o.get("name", ""),
                    attributes=o.get("attributes", {}),
                    criteria=refs,
                )
            )
        return out

    def _principals(
        self, raw: list[dict[str, Any]], org_ids: set[str], criteria: Mapping[str, Criterion]
    ) -> list[Principal]:
        """The principals: known organisation, well-formed key, one key per person and every
        identity of a person in one organisation (a person counts once in a quorum, so two keys
        or two organisations would let one person count twice).
        """
        out = []
        keys: dict[bytes, tuple[int, str]] = {}
        person_org: dict[str, tuple[int, str]] = {}
        for i, p in enumerate(raw):
            if p["organisation"] not in org_ids:
                self.problem(
                    ("principals", i, "organisation"),
                    f"unknown organisation {p['organisation']!r}",
                    expected="one of: " + ", ".join(sorted(org_ids)),
                )
            key: bytes | None = None
            if "key" in p:
                key = decode_public_key(p["key"])
                if key is None:
                    self.problem(
                        ("principals", i, "key"),
                        "malformed Ed25519 public key",
                        expected="ed25519: and the base64 of 32 bytes (custodes keygen)",
                    )
            person = p.get("person", p["id"])
            if key is not None:
                other = keys.get(key)
                if other is not None and other[1] != person:
                    self.problem(
                        ("principals", i, "key"),
                        f"duplicate key: also the key of principal "
                        f"{raw[other[0]]['id']!r} (line "
                        f"{self.doc.line(('principals', other[0], 'key'))})",
                        expected="one key per person",
                    )
                keys.setdefault(key, (i, person))
            seen = person_org.get(person)
            if seen is not None and seen[1] != p["organisation"]:
                self.problem(
                    ("principals", i, "person"),
                    f"person {person!r} is also principal {raw[seen[0]]['id']!r} of "
                    f"organisation {seen[1]!r}",
                    expected="every identity of one person in one organisation",
                )
            person_org.setdefault(person, (i, p["organisation"]))
            refs = self._criteria_refs(
                ("principals", i, "criteria"), p.get("criteria", []), criteria, "principal"
            )
            out.append(
                Principal(
                    id=p["id"],
                    organisation=p["organisation"],
                    roles=frozenset(p.get("roles", [])),
                    attributes=p.get("attributes", {}),
                    public_key=key,
                    cost=float(p.get("cost", 1.0)),
                    incorruptible=bool(p.get("incorruptible", False)),
                    person=p.get("person", ""),
                    kind=p.get("kind", "person"),
                    criteria=refs,
                    directed_by=tuple(p.get("directed_by", ())),
                )
            )
        self._check_directors(out)
        return out

    def _check_directors(self, principals: list[Principal]) -> None:
        """Who may direct a workload: known principals, no cycles, every chain ends at a
        person (the one whose use the workload's calls count as; custodes.usage)."""
        by_id = {p.id: p for p in principals}
        for i, p in enumerate(principals):
            if p.directed_by and p.kind != "workload":
                self.problem(
                    ("principals", i, "directed_by"),
                    f"principal {p.id!r} is a person: only a workload is directed by others",
                    expected="directed_by on principals of kind workload",
                )
                continue
            for j, d in enumerate(p.directed_by):
                if d not in by_id:
                    self.problem(("principals", i, "directed_by", j), f"unknown principal {d!r}")
                elif d == p.id:
                    self.problem(
                        ("principals", i, "directed_by", j),
                        f"workload {p.id!r} cannot direct itself",
                        expected="the persons (or other workloads) that direct it",
                    )
        # Every path up the directors must reach a person without meeting itself: a cycle
        # would let a group of agents direct each other with nobody answerable at the end.
        state: dict[str, str] = {}  # "open" while on the current path, "done" once checked

        def walk(pid: str, path: list[str]) -> None:
            """Follow the directors up from ``pid`` (depth first), reporting a cycle or a chain
            that ends at an undirected workload.
            """
            if state.get(pid) == "done":
                return
            p = by_id[pid]
            if state.get(pid) == "open":
                cycle = " -> ".join([*path[path.index(pid) :], pid])
                self.problem(
                    ("principals", index[pid], "directed_by"),
                    f"the directors form a cycle: {cycle}",
                    expected="chains of direction that end at a person",
                )
                return
            if p.kind == "workload" and not p.directed_by and path:
                self.problem(
                    ("principals", index[path[-1]], "directed_by"),
                    f"director {pid!r} is a workload nobody directs: the chain from "
                    f"{path[0]!r} ends at no person",
                    expected="a person, or a workload with directed_by",
                )
            state[pid] = "open"
            for d in p.directed_by:
                if d in by_id and d != pid:
                    walk(d, [*path, pid])
            state[pid] = "done"

        index = {p.id: i for i, p in enumerate(principals)}
        for p in principals:
            if p.directed_by:
                walk(p.id, [])

    def _capabilities(self, raw: list[dict[str, Any]]) -> list[Capability]:
        """The capabilities; one that names neither models nor actions grants nothing and is a
        problem.
        """
        out = []
        for i, c in enumerate(raw):
            if not c.get("models") and not c.get("actions"):
                self.problem(
                    ("capabilities", i),
                    f"capability {c['id']!r} names no models and no actions",
                    expected="at least one model or action",
                )
            out.append(
                Capability(
                    id=c["id"],
                    models=tuple(c.get("models", [])),
                    actions=tuple(c.get("actions", [])),
                    description=c.get("description", ""),
                )
            )
        return out

    def _roles(
        self, path: tuple[str | int, ...], refs: Sequence[str], roles: set[str]
    ) -> frozenset[str]:
        """The role names at ``path``: at least one, and each held by some principal (a role nobody
        holds is a typo or a rule nobody can meet).
        """
        if not refs:
            self.problem(path, "no roles named", expected="at least one role")
        for j, role in enumerate(refs):
            if role not in roles:
                self.problem(
                    (*path, j),
                    f"unknown role {role!r}: no principal holds it",
                    expected="one of: " + ", ".join(sorted(roles)),
                )
        return frozenset(refs)

    def _cap_ref(self, path: tuple[str | int, ...], cap: str, cap_ids: set[str]) -> None:
        """A problem if ``cap`` is not a capability of this constitution."""
        if cap not in cap_ids:
            self.problem(
                path,
                f"unknown capability {cap!r}",
                expected="one of: " + ", ".join(sorted(cap_ids)),
            )

    def _quorum(self, raw: Mapping[str, Any]) -> Quorum:
        """The quorum clause as a :class:`Quorum` (its shape is the schema's)."""
        return Quorum.from_document(raw)

    def _notify(
        self,
        path: tuple[str | int, ...],
        raw: Mapping[str, Any] | None,
        org_ids: set[str],
        roles: set[str],
    ) -> Notify:
        """Who a rule's grants are announced to: known organisations and held roles."""
        raw = raw or {}
        for j, o in enumerate(raw.get("organisations", [])):
            if o not in org_ids:
                self.problem(
                    (*path, "organisations", j),
                    f"unknown organisation {o!r}",
                    expected="one of: " + ", ".join(sorted(org_ids)),
                )
        for j, r in enumerate(raw.get("roles", [])):
            if r not in roles:
                self.problem((*path, "roles", j), f"unknown role {r!r}: no principal holds it")
        return Notify(
            organisations=tuple(raw.get("organisations", [])),
            kinds=tuple(raw.get("kinds", [])),
            roles=tuple(raw.get("roles", [])),
        )

    def _access_rule(
        self,
        i: int,
        r: dict[str, Any],
        cap_ids: set[str],
        roles: set[str],
        org_ids: set[str],
        criteria: Mapping[str, Criterion],
    ) -> AccessRule:
        """The access rule ``i``: its capability, requesters, approvers and durations checked; a
        rule that needs approvals must name approvers.
        """
        path: tuple[str | int, ...] = ("access", i)
        self._cap_ref((*path, "capability"), r["capability"], cap_ids)
        requester_roles = self._roles(
            (*path, "requesters", "roles"), r["requesters"]["roles"], roles
        )
        refs = self._criteria_refs(
            (*path, "requesters", "criteria"),
            r["requesters"].get("criteria", []),
            criteria,
            "principal",
        )
        quorum = self._quorum(r["quorum"])
        approver_roles: frozenset[str] = frozenset()
        if "approvers" in r:
            approver_roles = self._roles(
                (*path, "approvers", "roles"), r["approvers"]["roles"], roles
            )
        elif quorum.approvals > 0:
            self.problem(
                path,
                f"rule {r['id']!r} needs {quorum.approvals} approvals but names no approvers",
                expected="approvers: {roles: [...]}",
            )
        return AccessRule(
            id=r["id"],
            capability=r["capability"],
            requester_roles=requester_roles,
            requester_criteria=refs,
            approver_roles=approver_roles,
            quorum=quorum,
            max_duration=self.duration((*path, "max_duration"), r["max_duration"]),
            purpose_required=bool(r.get("purpose_required", False)),
            approval_validity=self.duration(
                (*path, "approval_validity"), r.get("approval_validity"), timedelta(hours=24)
            ),
            notify=self._notify((*path, "notify"), r.get("notify"), org_ids, roles),
        )

    def _break_glass(
        self, i: int, r: dict[str, Any], cap_ids: set[str], roles: set[str], org_ids: set[str]
    ) -> BreakGlassRule:
        """The break-glass rule ``i``: its review needs an approval, and its deadline must be
        shorter than the longest use.
        """
        path: tuple[str | int, ...] = ("break_glass", i)
        self._cap_ref((*path, "capability"), r["capability"], cap_ids)
        review = r["review"]
        quorum = self._quorum(review["quorum"])
        if quorum.approvals < 1:
            self.problem(
                (*path, "review", "quorum", "approvals"),
                "a break-glass review needs at least one approval",
                expected="approvals >= 1",
            )
        max_duration = self.duration((*path, "max_duration"), r["max_duration"])
        deadline = self.duration((*path, "review", "deadline"), review["deadline"])
        if parse_duration(r["max_duration"]) and parse_duration(review["deadline"]):
            if deadline >= max_duration:
                # A grant is suspended once its review is overdue; a deadline at or past the
                # longest use would let one break-glass grant run its whole course unreviewed.
                self.problem(
                    (*path, "review", "deadline"),
                    f"the review deadline {review['deadline']} is not shorter than the "
                    f"rule's max_duration {r['max_duration']}",
                    expected=f"a deadline shorter than {r['max_duration']}",
                )
        return BreakGlassRule(
            id=r["id"],
            capability=r["capability"],
            emergency=r["emergency"],
            roles=self._roles((*path, "roles"), r["roles"], roles),
            max_duration=max_duration,
            review=ReviewRule(
                approver_roles=self._roles(
                    (*path, "review", "approvers", "roles"), review["approvers"]["roles"], roles
                ),
                quorum=quorum,
                deadline=deadline,
            ),
            notify=self._notify((*path, "notify"), r.get("notify"), org_ids, roles),
        )

    def _amendment(self, raw: dict[str, Any], principals: list[Principal]) -> AmendmentRule:
        """The amendment rule: its signers are known persons with keys, and the threshold can be
        reached by distinct persons.
        """
        by_id = {p.id: p for p in principals}
        persons: set[str] = set()
        for j, s in enumerate(raw["signers"]):
            p = by_id.get(s)
            if p is None:
                self.problem(("amendment", "signers", j), f"unknown principal {s!r}")
            elif p.public_key is None:
                self.problem(
                    ("amendment", "signers", j),
                    f"signer {s!r} has no key",
                    expected="a principal with an Ed25519 key",
                )
            elif p.kind == "workload":
                # A workload answers to whoever directs it; it never counts as a signer.
                self.problem(
                    ("amendment", "signers", j),
                    f"signer {s!r} is a workload (an AI agent or service)",
                    expected="persons only: a workload never counts as an approver",
                )
            else:
                persons.add(p.person_id)
        # A person counts once, however many signer identities and keys they hold.
        if raw["threshold"] > len(persons):
            self.problem(
                ("amendment", "threshold"),
                f"threshold {raw['threshold']} exceeds the {len(persons)} distinct signer "
                "persons: no amendment could ever be adopted",
                expected=f"at most {len(persons)}",
            )
        return AmendmentRule(signers=tuple(raw["signers"]), threshold=raw["threshold"])

    def _entrenched(
        self, raw: list[dict[str, Any]], amendment: AmendmentRule, principals: list[Principal]
    ) -> list[EntrenchedClause]:
        """The entrenched clauses: their paths name something in this document, and the signers and
        organisations they require exist among the amendment's signers.
        """
        by_id = {p.id: p for p in principals}
        signer_orgs = {by_id[s].organisation for s in amendment.signers if s in by_id}
        signer_persons = {by_id[s].person_id for s in amendment.signers if s in by_id}
        out = []
        for i, c in enumerate(raw):
            for j, path in enumerate(c["paths"]):
                if resolve_path(self.data, path) is MISSING:
                    self.problem(
                        ("entrenched", i, "paths", j),
                        f"path {path!r} names nothing in this document",
                        expected="a path such as /log or /access/<rule id>/quorum",
                    )
            signers = None if c.get("signers", "all") == "all" else int(c["signers"])
            # Naming neither means every signer of every organisation; naming only a number
            # of signers sets no requirement on their organisations.
            orgs_default = "all" if "signers" not in c else 1
            orgs_raw = c.get("organisations", orgs_default)
            orgs = None if orgs_raw == "all" else int(orgs_raw)
            if signers is not None and signers > len(signer_persons):
                self.problem(
                    ("entrenched", i, "signers"),
                    f"needs {signers} signers but there "
                    f"are {len(signer_persons)} amendment signer persons",
                    expected=f"at most {len(signer_persons)} or 'all'",
                )
            if orgs is not None and orgs > len(signer_orgs):
                self.problem(
                    ("entrenched", i, "organisations"),
                    f"needs {orgs} organisations but amendment signers come from "
                    f"{len(signer_orgs)}",
                    expected=f"at most {len(signer_orgs)}",
                )
            caps = list(c.get("capabilities", []))
            for j, cap in enumerate(caps):
                if not any(x.get("id") == cap for x in self.data["capabilities"]):
                    self.problem(
                        ("entrenched", i, "capabilities", j), f"unknown capability {cap!r}"
                    )
            for path in c["paths"]:
                caps.extend(x for x in _capabilities_at(self.data, path) if x not in caps)
            out.append(
                EntrenchedClause(
                    id=c["id"],
                    description=c.get("description", ""),
                    paths=tuple(c["paths"]),
                    signers=signers,
                    organisations=orgs,
                    capabilities=tuple(caps),
                )
            )
        return out

    def _witnesses(self, raw: dict[str, Any], org_ids: set[str]) -> WitnessConfig:
        """The log's witnesses: known organisation, a well-formed C2SP verifier key named as the
        witness, no key twice, and a quorum no larger than the list.
        """
        from custodes.errors import InputError
        from custodes.log import NoteVerifier

        out = []
        keys: dict[str, int] = {}
        for i, w in enumerate(raw.get("list", [])):
            path: tuple[str | int, ...] = ("witnesses", "list", i)
            if w["organisation"] not in org_ids:
                self.problem((*path, "organisation"), f"unknown organisation {w['organisation']!r}")
            try:
                verifier = NoteVerifier.from_key(w["key"])
            except InputError as exc:
                self.problem(
                    (*path, "key"),
                    f"malformed witness key: {exc.message}",
                    expected="a C2SP signed-note verifier key <name>+<hash>+<base64>",
                )
            else:
                if verifier.name != w["name"]:
                    self.problem(
                        (*path, "key"),
                        f"the key is named {verifier.name!r}, the witness {w['name']!r}",
                        expected="the same name",
                    )
                if w["key"] in keys:
                    self.problem((*path, "key"), "duplicate witness key")
                keys[w["key"]] = i
            out.append(
                Witness(
                    name=w["name"],
                    key=w["key"],
                    organisation=w["organisation"],
                    url=w.get("url", ""),
                )
            )
        quorum = raw.get("quorum", len(out) and 1)
        if quorum > len(out):
            self.problem(
                ("witnesses", "quorum"),
                f"quorum {quorum} exceeds the {len(out)} witnesses",
                expected=f"at most {len(out)}",
            )
        return WitnessConfig(witnesses=tuple(out), quorum=quorum)

    def _coalition(self, raw: dict[str, Any], cap_ids: set[str], n_orgs: int) -> CoalitionFloor:
        """The coalition floor: protected capabilities exist, and the floor is not above the number
        of organisations.
        """
        for j, c in enumerate(raw.get("protected", [])):
            self._cap_ref(("coalition", "protected", j), c, cap_ids)
        floor = raw.get("min_organisations", 1)
        if floor > n_orgs:
            self.problem(
                ("coalition", "min_organisations"),
                f"floor {floor} exceeds the {n_orgs} organisations",
                expected=f"at most {n_orgs}",
            )
        return CoalitionFloor(protected=tuple(raw.get("protected", [])), min_organisations=floor)

    # -- feasibility ---------------------------------------------------------

    def _check_quorums(
        self, c: Constitution, access_raw: list[dict[str, Any]], bg_raw: list[dict[str, Any]]
    ) -> None:
        """Every rule can be used by someone: an access rule has an eligible requester, and each
        quorum (access, break-glass review, usage review) can be met by eligible approvers with
        keys other than the requester's person.
        """
        try:
            compiled = compile_policies(c)
        except ValueError as exc:
            self.problem(("criteria",), f"Cedar policies do not compile: {exc}")
            return
        keyed = [p for p in c.principals if p.public_key is not None]
        by_roles: dict[frozenset[str], _Pool] = {}
        # Role -> positions of the keyed principals holding it: a pool is gathered from its
        # roles' holders, not from a scan of every principal (hundreds of rules, thousands of
        # principals).
        holding: dict[str, list[int]] = {}
        for n, p in enumerate(keyed):
            for role in p.roles:
                holding.setdefault(role, []).append(n)

        def approvers(roles: frozenset[str]) -> _Pool:
            """The eligible approvers for ``roles`` (keyed principals holding one of them),
            computed once per role set.
            """
            if roles not in by_roles:
                rows = sorted({n for r in roles for n in holding.get(r, ())})
                by_roles[roles] = _Pool.of([keyed[n] for n in rows])
            return by_roles[roles]

        identities = _identities(c)
        for i, rule in enumerate(c.access_rules):
            if next(iter(compiled.eligible_requesters(rule)), None) is None:
                self.problem(
                    ("access", i, "requesters"),
                    f"rule {rule.id!r} references nobody: "
                    "no principal meets its requester roles and criteria",
                    expected="at least one eligible requester",
                )
                continue
            if rule.quorum.approvals == 0:
                continue
            missing = _first_infeasible(
                c,
                approvers(rule.approver_roles),
                rule.quorum,
                functools.partial(_may_request, compiled, rule),
                identities,
            )
            if missing:
                self.problem(
                    ("access", i, "quorum"),
                    f"impossible quorum{missing}",
                    expected="a quorum the eligible approvers (with keys, never the "
                    "requester) can meet",
                )
        for i, bg in enumerate(c.break_glass):
            missing = _first_infeasible(
                c,
                approvers(bg.review.approver_roles),
                bg.review.quorum,
                functools.partial(_holds_role, c, bg.roles),
                identities,
            )
            if missing:
                self.problem(
                    ("break_glass", i, "review", "quorum"),
                    f"impossible review quorum{missing}",
                    expected="a quorum reviewers other than the user can meet",
                )
        persons = [p for p in keyed if p.kind != "workload"]
        for i, r in enumerate((c.document or {}).get("usage", {}).get("reviews", [])):
            # A review clock nobody can renew would be an alarm forever (custodes.usage).
            roles = frozenset(r["approvers"]["roles"])
            pool = _Pool.of([p for p in persons if p.roles & roles])
            missing = _infeasible(c, pool, Quorum.from_document(r["quorum"]), exclude=None)
            if missing:
                self.problem(
                    ("usage", "reviews", i, "quorum"),
                    f"impossible review quorum: {missing}",
                    expected="a quorum the persons (with keys) holding its approver roles can meet",
                )


def _capabilities_at(data: Mapping[str, Any], path: str) -> list[str]:
    """The capabilities a path of an entrenched clause names: ``/capabilities/<id>...``, an
    access or break-glass rule (``/access/<rule id>...``), or a whole section of them."""
    parts = path.strip("/").split("/")
    section = parts[0]
    if section == "capabilities":
        items = data.get("capabilities", [])
        key = "id"
    elif section in ("access", "break_glass"):
        items = data.get(section, [])
        key = "capability"
    else:
        return []
    if len(parts) == 1:
        return [str(x[key]) for x in items if isinstance(x, Mapping) and key in x]
    item = resolve_path(data, f"/{section}/{parts[1]}")
    if isinstance(item, Mapping) and key in item:
        return [str(item[key])]
    return []
