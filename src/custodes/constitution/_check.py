"""The semantic pass of reading a constitution: references, duplicates, Cedar conditions,
durations, keys and whether every quorum can be met, each problem with its line.

It runs only over a document the JSON Schema pass (``_read.py``) found well shaped (it reads
the data as the schema shaped it); it appends its problems to the same document and builds
the frozen dataclasses of ``_model.py``. The sections are read in dependency order, by the
modules named for them: the parties (``_check_parties.py``), the rules
(``_check_rules.py``), the sections other components read (``_check_sections.py``,
``_provenance.py``) and, last, quorum feasibility (``_feasibility.py``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from custodes.constitution._check_parties import (
    read_capabilities,
    read_criteria,
    read_organisations,
    read_principals,
)
from custodes.constitution._check_rules import (
    read_access_rule,
    read_amendment,
    read_break_glass,
    read_entrenched,
)
from custodes.constitution._check_sections import (
    check_custody,
    check_usage,
    read_coalition,
    read_witnesses,
)
from custodes.constitution._feasibility import check_quorums
from custodes.constitution._model import Constitution
from custodes.constitution._pass import MAX_PROBLEMS, Known, SemanticPass
from custodes.constitution._provenance import read_provenance
from custodes.constitution._yaml import LocatedDocument

# RFC 8785 bytes (the log's fast path, which falls back to the reference implementation).
from custodes.log import canonical_json

__all__ = ["MAX_PROBLEMS", "check_document"]


def check_document(doc: LocatedDocument, text: str) -> Constitution:
    """Check every section of ``doc`` against the others and build the :class:`Constitution`.

    References (organisations, roles, capabilities, criteria, principals) are resolved
    section by section; the quorum feasibility check runs only once everything else is
    clean, because it needs every reference resolved. The constitution is returned even
    when problems were found (the caller raises): its parts stand in so that one pass
    reports every problem.

    Args:
        doc: a document the schema pass found well shaped; its ``problems`` list receives
            every problem found.
        text: the document's YAML text, kept on the constitution.

    Returns:
        The constitution, valid only if ``doc.problems`` is still empty.
    """
    check = SemanticPass(doc)
    d = check.data
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
        check.unique(section, items)
    check.unique("witnesses", witnesses_raw.get("list", []), key="name")
    # Rule ids share one namespace: a grant names its rule, access or break-glass.
    access_ids = {r["id"] for r in access_raw}
    for i, r in enumerate(bg_raw):
        if r["id"] in access_ids:
            check.problem(
                ("break_glass", i, "id"),
                f"id {r['id']!r} is already an access rule's id",
                expected="rule ids unique across access and break_glass",
            )

    org_ids = {o["id"] for o in orgs_raw}
    criteria = read_criteria(check, criteria_raw)
    organisations = read_organisations(check, orgs_raw, criteria)
    principals = read_principals(check, principals_raw, org_ids, criteria)
    capabilities = read_capabilities(check, caps_raw)
    cap_ids = {c.id for c in capabilities}
    roles = {r for p in principals for r in p.roles}
    known = Known(organisations=org_ids, roles=roles, capabilities=cap_ids, criteria=criteria)
    access_rules = [read_access_rule(check, i, r, known) for i, r in enumerate(access_raw)]
    break_glass = [read_break_glass(check, i, r, known) for i, r in enumerate(bg_raw)]
    amendment = read_amendment(check, d["amendment"], principals)
    entrenched = read_entrenched(check, entrenched_raw, amendment, principals)
    witnesses = read_witnesses(check, witnesses_raw, org_ids)
    coalition = read_coalition(check, coalition_raw, cap_ids, len(org_ids))
    # The custody registry reads these windows and coordinators from the document; checked
    # here so a bad one is refused at load, with its line, never at alarm time.
    check_custody(check, d.get("custody", {}), org_ids, roles)

    # custodes.usage reads its rules from the document; checked here so a bad one is
    # refused at load, with its line, never when a call is gated.
    check_usage(
        check,
        d.get("usage", {}),
        cap_ids,
        roles,
        {r.capability for r in access_rules if r.quorum.approvals > 0},
    )
    provenance = read_provenance(
        d.get("provenance", {}),
        problem=check.problem,
        notify=lambda path, raw: check.notify(path, raw, org_ids, roles),
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
    if check.doc.problems:
        # Feasibility needs every reference resolved; it runs once the rest is clean.
        return constitution
    check_quorums(check, constitution)
    return constitution
