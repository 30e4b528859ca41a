"""The sections other components read from the document: usage (concentration rules and
review clocks; custodes.usage), custody (its windows and coordinators; custodes.custody), the
log's witnesses and the coalition floor.

They are checked here, at load, so a bad value is refused with its line, never found later
when a call is gated or an alarm is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custodes.constitution._model import CoalitionFloor, Witness, WitnessConfig
from custodes.constitution._pass import Path, SemanticPass
from custodes.errors import InputError
from custodes.log import NoteVerifier

__all__ = ["check_custody", "check_usage", "read_coalition", "read_witnesses"]


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


def check_usage(
    check: SemanticPass,
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
        path: Path = ("usage", "rules", i)
        if r["id"] in seen:
            check.problem(
                (*path, "id"),
                f"duplicate rule id {r['id']!r} (also usage.rules[{seen[r['id']]}])",
                expected="each id once",
            )
        seen.setdefault(r["id"], i)
        # The schema requires only id and kind: what each kind needs is checked here, with a
        # message that names the kind and the key.
        needs = _USAGE_RULE_NEEDS[r["kind"]]
        for key in needs:
            if key not in r:
                check.problem(
                    path,
                    f"a {r['kind']} rule needs {key!r}",
                    expected=", ".join(needs) + " (see docs/usage.md)",
                )
        may = _USAGE_RULE_MAY.get(r["kind"], frozenset())
        # A key the kind does not read is refused, not ignored: "window" on a rule that has
        # none would look like a limit that is never enforced.
        for key in _USAGE_RULE_KEYS - set(needs) - may - {"measure", "gate", "min_calls"}:
            if key in r:
                check.problem(
                    (*path, key),
                    f"a {r['kind']} rule has no {key!r}",
                    expected=", ".join(needs),
                )
        share_rule = r["kind"] in ("max-person-share", "max-organisation-share")
        for key in ("measure", "gate", "min_calls"):
            if key == "min_calls" and r["kind"] == "unusual-key-rate":
                continue
            if key in r and not share_rule:
                check.problem(
                    (*path, key),
                    f"only share rules have {key!r}",
                    expected="max-person-share or max-organisation-share",
                )
        if "baseline" in r:
            check.duration((*path, "baseline"), r["baseline"])
        if "capability" in r and r["capability"] not in cap_ids:
            check.problem((*path, "capability"), f"unknown capability {r['capability']!r}")
        if "window" in r:
            check.duration((*path, "window"), r["window"])
    for j, cap in enumerate(raw.get("restricted", [])):
        if cap not in cap_ids:
            check.problem(("usage", "restricted", j), f"unknown capability {cap!r}")
    # Without an explicit list, the restricted tiers are those whose access needs approvals.
    restricted = set(raw["restricted"]) if "restricted" in raw else approved_tiers
    reviewed: dict[str, int] = {}
    for i, r in enumerate(raw.get("reviews", [])):
        path = ("usage", "reviews", i)
        cap = r["capability"]
        if cap not in cap_ids:
            check.problem((*path, "capability"), f"unknown capability {cap!r}")
        elif cap not in restricted:
            # A clock on an open tier would ask overseers to re-justify nothing.
            check.problem(
                (*path, "capability"),
                f"{cap!r} is not a restricted tier",
                expected="one of: " + ", ".join(sorted(restricted))
                if restricted
                else "a tier under usage.restricted or one whose access needs approvals",
            )
        elif cap in reviewed:
            check.problem(
                (*path, "capability"),
                f"a second review clock for {cap!r} (also usage.reviews[{reviewed[cap]}])",
                expected="one review clock per tier",
            )
        reviewed.setdefault(cap, i)
        check.duration((*path, "every"), r["every"])
        check.roles((*path, "approvers", "roles"), r["approvers"]["roles"], roles)
        if r["quorum"]["approvals"] < 1:
            check.problem(
                (*path, "quorum", "approvals"),
                "a review needs at least one approval",
                expected="approvals: 1 or more (renewing a restriction is a decision)",
            )


def check_custody(
    check: SemanticPass, raw: Mapping[str, Any], org_ids: set[str], roles: set[str]
) -> None:
    """The ``custody:`` section: its windows are durations, its coordinators known
    organisations and held roles (the custody registry reads them from the document).
    """
    for key in ("stockpiling_window", "vendor_notice_within", "read_follow_up_within"):
        if key in raw:
            check.duration(("custody", key), raw[key])
    coordinators = raw.get("coordinators", {})
    for i, org in enumerate(coordinators.get("organisations", ())):
        if org not in org_ids:
            check.problem(
                ("custody", "coordinators", "organisations", i),
                f"unknown organisation {org!r}",
                expected="an organisation id of this constitution",
            )
    for i, role in enumerate(coordinators.get("roles", ())):
        if role not in roles:
            check.problem(
                ("custody", "coordinators", "roles", i),
                f"no principal holds role {role!r}",
                expected="a role some principal holds",
            )


def read_witnesses(check: SemanticPass, raw: dict[str, Any], org_ids: set[str]) -> WitnessConfig:
    """The log's witnesses: known organisation, a well-formed C2SP verifier key named as the
    witness, no key twice, and a quorum no larger than the list.
    """
    out = []
    keys: dict[str, int] = {}
    for i, w in enumerate(raw.get("list", [])):
        path: Path = ("witnesses", "list", i)
        if w["organisation"] not in org_ids:
            check.problem((*path, "organisation"), f"unknown organisation {w['organisation']!r}")
        try:
            verifier = NoteVerifier.from_key(w["key"])
        except InputError as exc:
            check.problem(
                (*path, "key"),
                f"malformed witness key: {exc.message}",
                expected="a C2SP signed-note verifier key <name>+<hash>+<base64>",
            )
        else:
            if verifier.name != w["name"]:
                check.problem(
                    (*path, "key"),
                    f"the key is named {verifier.name!r}, the witness {w['name']!r}",
                    expected="the same name",
                )
            if w["key"] in keys:
                check.problem((*path, "key"), "duplicate witness key")
            keys[w["key"]] = i
        out.append(
            Witness(
                name=w["name"],
                key=w["key"],
                organisation=w["organisation"],
                url=w.get("url", ""),
            )
        )
    # By default one witness must cosign if any is listed (none listed: nothing to wait for).
    quorum = raw.get("quorum", len(out) and 1)
    if quorum > len(out):
        check.problem(
            ("witnesses", "quorum"),
            f"quorum {quorum} exceeds the {len(out)} witnesses",
            expected=f"at most {len(out)}",
        )
    return WitnessConfig(witnesses=tuple(out), quorum=quorum)


def read_coalition(
    check: SemanticPass, raw: dict[str, Any], cap_ids: set[str], n_orgs: int
) -> CoalitionFloor:
    """The coalition floor: protected capabilities exist, and the floor is not above the number
    of organisations.
    """
    for j, c in enumerate(raw.get("protected", [])):
        check.capability_ref(("coalition", "protected", j), c, cap_ids)
    floor = raw.get("min_organisations", 1)
    if floor > n_orgs:
        check.problem(
            ("coalition", "min_organisations"),
            f"floor {floor} exceeds the {n_orgs} organisations",
            expected=f"at most {n_orgs}",
        )
    return CoalitionFloor(protected=tuple(raw.get("protected", [])), min_organisations=floor)
