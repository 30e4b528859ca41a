"""The parties of a constitution: its criteria, organisations, principals (with who directs
each workload) and capabilities, each reference and key checked with its line.

One key per person and every identity of a person in one organisation are checked here
because a quorum counts persons: two keys or two organisations would let one person count
twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from custodes.constitution._cedar import check_condition
from custodes.constitution._model import (
    Capability,
    Criterion,
    Organisation,
    OrganisationKind,
    Principal,
)
from custodes.constitution._pass import SemanticPass
from custodes.constitution._values import decode_public_key

__all__ = ["read_capabilities", "read_criteria", "read_organisations", "read_principals"]


def read_criteria(check: SemanticPass, raw: list[dict[str, Any]]) -> dict[str, Criterion]:
    """The named Cedar criteria by id; a condition that does not parse is a problem."""
    out: dict[str, Criterion] = {}
    for i, c in enumerate(raw):
        error = check_condition(c["condition"])
        if error:
            # Kept, so references to it are not reported as unknown as well.
            check.problem(
                ("criteria", i, "condition"),
                f"Cedar condition does not parse: {error}",
                expected="the body of a Cedar when { ... } clause",
            )
        # The first of a repeated id stands: the repeat is already a problem (``unique``).
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


def read_organisations(
    check: SemanticPass, raw: list[dict[str, Any]], criteria: Mapping[str, Criterion]
) -> list[Organisation]:
    """The organisations, with their criteria checked."""
    out = []
    for i, o in enumerate(raw):
        refs = check.criteria_refs(
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


def read_principals(
    check: SemanticPass,
    raw: list[dict[str, Any]],
    org_ids: set[str],
    criteria: Mapping[str, Criterion],
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
            check.problem(
                ("principals", i, "organisation"),
                f"unknown organisation {p['organisation']!r}",
                expected="one of: " + ", ".join(sorted(org_ids)),
            )
        key: bytes | None = None
        if "key" in p:
            key = decode_public_key(p["key"])
            if key is None:
                check.problem(
                    ("principals", i, "key"),
                    "malformed Ed25519 public key",
                    expected="ed25519: and the base64 of 32 bytes (custodes keygen)",
                )
        # A principal that names no person is a person of its own.
        person = p.get("person", p["id"])
        if key is not None:
            other = keys.get(key)
            # One person may use one key under several identities; two persons sharing a key
            # would make one signature count as both of their approvals.
            if other is not None and other[1] != person:
                check.problem(
                    ("principals", i, "key"),
                    f"duplicate key: also the key of principal "
                    f"{raw[other[0]]['id']!r} (line "
                    f"{check.doc.line(('principals', other[0], 'key'))})",
                    expected="one key per person",
                )
            keys.setdefault(key, (i, person))
        seen = person_org.get(person)
        if seen is not None and seen[1] != p["organisation"]:
            check.problem(
                ("principals", i, "person"),
                f"person {person!r} is also principal {raw[seen[0]]['id']!r} of "
                f"organisation {seen[1]!r}",
                expected="every identity of one person in one organisation",
            )
        person_org.setdefault(person, (i, p["organisation"]))
        refs = check.criteria_refs(
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
    _check_directors(check, out)
    return out


def _check_directors(check: SemanticPass, principals: list[Principal]) -> None:
    """Who may direct a workload: known principals, no cycles, every chain ends at a
    person (the one whose use the workload's calls count as; custodes.usage)."""
    by_id = {p.id: p for p in principals}
    for i, p in enumerate(principals):
        if p.directed_by and p.kind != "workload":
            check.problem(
                ("principals", i, "directed_by"),
                f"principal {p.id!r} is a person: only a workload is directed by others",
                expected="directed_by on principals of kind workload",
            )
            continue
        for j, d in enumerate(p.directed_by):
            if d not in by_id:
                check.problem(("principals", i, "directed_by", j), f"unknown principal {d!r}")
            elif d == p.id:
                check.problem(
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
            check.problem(
                ("principals", index[pid], "directed_by"),
                f"the directors form a cycle: {cycle}",
                expected="chains of direction that end at a person",
            )
            return
        if p.kind == "workload" and not p.directed_by and path:
            check.problem(
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


def read_capabilities(check: SemanticPass, raw: list[dict[str, Any]]) -> list[Capability]:
    """The capabilities; one that names neither models nor actions grants nothing and is a
    problem.
    """
    out = []
    for i, c in enumerate(raw):
        if not c.get("models") and not c.get("actions"):
            check.problem(
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
