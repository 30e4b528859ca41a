"""The amendment rule: N+1 only, thresholds of the old and the new signers, entrenchment by path
and by effect.

This is TUF's rule for root metadata (TUF specification §5.3.4: a new root must be signed by a
threshold of the keys of the trusted root and a threshold of its own keys), plus entrenchment:

- **By path.** A change to a path an entrenched clause names needs that clause's stronger
  threshold of the *current* signers.
- **The rules themselves.** The amendment rule (``/amendment``, and the key, organisation and
  person of every amendment signer), the entrenchment list (``/entrenched``) and the coalition
  floor (``/coalition``) are entrenched with the strongest threshold of any clause: otherwise an
  amendment could first make the lab the only signer, and the next change everything else.
- **By effect.** Paths cannot see meaning: a new sibling rule, a relabelled organisation or a
  role given to a partner changes who can reach a capability without touching its clause. So
  what an amendment *does* to the coalition game decides too: if, for a capability a clause
  entrenches (or for amending the constitution itself), it lowers the minimum coalition, the
  minimum number of organisations or of overseer organisations, or removes a veto player, it
  needs the entrenched threshold, whatever paths it touches. Measuring that is the coalition
  game's job, a layer above this package: the caller (``custodes.authority``) measures and
  passes the :class:`Weakening`\\ s in; this module decides what they require.
- **No ratchet down in steps.** A weakening is held to the strongest threshold *any* earlier
  version demanded for that goal (``history``), so lowering a clause in one amendment and using
  the lowered clause in the next gains nothing.

A person counts once, however many signer identities or keys they hold (as for approvals).
Signature checks happen before this function (in ``custodes.authority``); it receives who was
verified to have signed, and with which version's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from custodes.constitution._model import Constitution, EntrenchedClause
from custodes.constitution._paths import resolve_path
from custodes.errors import Denial

__all__ = [
    "FLOOR_STATEMENT",
    "RULES_PATHS",
    "Acknowledgement",
    "AmendmentDecision",
    "AmendmentGuard",
    "EffectMeasurer",
    "Threshold",
    "Weakening",
    "changed_clauses",
    "check_amendment",
    "entrenched_goals",
    "required_threshold",
    "unmeasured",
]

RULES_PATHS = ("/amendment", "/entrenched", "/coalition")
"""The amendment rules, the entrenchment list and the coalition floor: entrenched themselves."""

FLOOR_STATEMENT = "coalition-floor"
"""The acknowledgement that lets a goal drop below the coalition floor (the same statement as
``custodes.coalition.FLOOR_ACKNOWLEDGEMENT``)."""

# Goals of the coalition game (custodes.coalition.game_from_constitution) that are "amending
# the constitution itself".
_RULES_GOALS = ("amend", "membership")


@dataclass(frozen=True)
class Acknowledgement:
    """A statement carried by an amendment proposal (its id, e.g. ``coalition-floor``) and the
    principals whose verified signatures over the proposal, and so over the statement, carry it.
    """

    statement: str
    signed_by: frozenset[str]


class AmendmentGuard(Protocol):
    """A further check on amendments (e.g. the coalition floor). Returns denials; [] allows."""

    def check(
        self, old: Constitution, new: Constitution, acknowledgements: Sequence[Acknowledgement]
    ) -> list[Denial]:
        """The denials of amending ``old`` into ``new``; empty allows.

        A guard that cannot decide must deny (fail closed), never return [].
        """
        ...


class EffectMeasurer(Protocol):
    """Measures what ``new`` does to the goals :func:`entrenched_goals` names (the coalition
    game's job: ``custodes.coalition.AmendmentEffects``)."""

    def weakenings(
        self, old: Constitution, new: Constitution, history: Iterable[Constitution]
    ) -> Sequence[Weakening]:
        """Every way ``new`` makes a goal entrenched by ``old`` or ``history`` easier to
        reach; a measure not computed in time counts as a weakening (``proven`` False)."""
        ...


def unmeasured(old: Constitution, history: Sequence[Constitution]) -> list[Weakening]:
    """Fail closed without a measurer: every entrenched goal counts as weakened."""
    return [
        Weakening(goal, "unmeasured", "", "", proven=False)
        for goal in entrenched_goals([*history, old])
        if required_threshold(goal, [*history, old]) is not None
    ]


@dataclass(frozen=True)
class Weakening:
    """One way an amendment makes a goal of the coalition game easier to reach.

    Attributes:
        goal: ``use:<capability>``, ``amend``, ``membership`` or ``entrenched:<clause id>``.
        measure: ``people``, ``organisations``, ``overseer organisations``, ``veto players``,
            ``veto organisations`` or ``reachable``.
        before: the old version's value, as text (``3``, ``unreachable``, ``dana@asi``).
        after: the new version's.
        proven: False when the measure could not be computed exactly in time and the drop is
            assumed (fail closed), not shown.
    """

    goal: str
    measure: str
    before: str
    after: str
    proven: bool = True

    def describe(self) -> str:
        """``people 3 -> 2``, ``veto player dana@asi removed``, ``reachable, was unreachable``."""
        if self.measure == "unmeasured":
            return "not measured (no coalition measurer is attached to the authority)"
        if self.measure.startswith("veto"):
            text = f"{self.measure[:-1]} {self.before} removed"
        elif self.measure == "reachable":
            text = "reachable, was unreachable"
        else:
            text = f"{self.measure} {self.before} -> {self.after}"
        return text if self.proven else text + " (or fewer: not proven in time)"


@dataclass(frozen=True)
class Threshold:
    """``signers`` amendment signers from ``organisations`` organisations (``None``: all), and
    the clauses (id, version) it comes from.

    Attributes:
        signers: signers needed (None: every amendment signer).
        organisations: distinct organisations they must span (None: all of them).
        sources: the entrenched clauses (id, version) that ask for it.
    """

    signers: int | None
    organisations: int | None
    sources: tuple[tuple[str, int], ...]

    def stronger(self, other: Threshold) -> Threshold:
        """The stricter of the two, member by member, with both sets of sources (several
        entrenched clauses touched by one amendment: the strictest of each wins)."""

        def most(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else max(a, b)

        return Threshold(
            most(self.signers, other.signers),
            most(self.organisations, other.organisations),
            tuple(dict.fromkeys((*self.sources, *other.sources))),
        )

    @property
    def source(self) -> str:
        """Where the threshold comes from, for messages: ``clause tiers of versions 1, 2``."""
        by_clause: dict[str, list[int]] = {}
        for clause, version in self.sources:
            by_clause.setdefault(clause, []).append(version)
        return "; ".join(
            f"clause {c} of version{'s' if len(v) > 1 else ''} {', '.join(map(str, sorted(v)))}"
            for c, v in by_clause.items()
        )


@dataclass(frozen=True)
class AmendmentDecision:
    """Whether an amendment may be adopted, and why not.

    Attributes:
        allowed: every rule, threshold and guard passed.
        denials: what is missing (empty when allowed).
        changed_clauses: ids of the old version's entrenched clauses the amendment changes.
        weakened: what it makes easier to reach (entrenchment by effect).
    """

    allowed: bool
    denials: tuple[Denial, ...]
    changed_clauses: tuple[str, ...]
    weakened: tuple[Weakening, ...] = ()


def changed_clauses(old: Constitution, new: Constitution) -> list[EntrenchedClause]:
    """The old version's entrenched clauses whose paths, or whose own text, the new one changes."""
    out = []
    for clause in old.entrenched:
        # A clause guards its own text too: otherwise one amendment could first weaken the
        # clause (signers: 1) and the next change what it protected.
        paths = (*clause.paths, f"/entrenched/{clause.id}")
        if any(resolve_path(old.document, p) != resolve_path(new.document, p) for p in paths):
            out.append(clause)
    return out


def _clause_threshold(c: Constitution, clause: EntrenchedClause) -> Threshold:
    """What ``clause`` of version ``c`` requires, remembering where the requirement came from."""
    return Threshold(clause.signers, clause.organisations, ((clause.id, c.version),))


def _rules_threshold(c: Constitution) -> Threshold | None:
    """The strongest clause of ``c``: what changing its amendment rules needs (None: no clause,
    so nothing beyond the amendment threshold)."""
    out: Threshold | None = None
    for clause in c.entrenched:
        t = _clause_threshold(c, clause)
        out = t if out is None else out.stronger(t)
    return out


def required_threshold(goal: str, versions: Iterable[Constitution]) -> Threshold | None:
    """The strongest threshold any of ``versions`` demanded for weakening ``goal`` (None: none
    entrenched it).

    ``use:<capability>`` is entrenched by the clauses whose ``capabilities`` include it; the
    goals of amending the constitution itself (``amend``, ``membership``,
    ``entrenched:<id>``) by the strongest clause of each version.
    """
    out: Threshold | None = None
    for c in versions:
        if goal.startswith("use:"):
            cap = goal[4:]
            for clause in c.entrenched:
                if cap in clause.capabilities:
                    t = _clause_threshold(c, clause)
                    out = t if out is None else out.stronger(t)
        elif goal in _RULES_GOALS or goal.startswith("entrenched:"):
            rules = _rules_threshold(c)
            if rules is not None:
                out = rules if out is None else out.stronger(rules)
    return out


def entrenched_goals(versions: Iterable[Constitution]) -> list[str]:
    """The goals whose weakening ``versions`` (the current one and its history) entrench, plus
    ``amend`` (held to the coalition floor in any case): what the caller must measure."""
    # "amend" always: the coalition floor applies to amending whether or not a clause does.
    goals = {"amend"}
    for c in versions:
        for clause in c.entrenched:
            goals.update(f"use:{cap}" for cap in clause.capabilities)
            goals.add("membership")
            goals.add(f"entrenched:{clause.id}")
    return sorted(goals)


def _count(n: int, word: str) -> str:
    """``n`` and ``word``, plural when ``n`` is not 1."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _persons(c: Constitution, signers: Iterable[str]) -> set[str]:
    """The persons among ``signers`` who have keys: a person counts once, however many signer
    identities or keys they hold (as for approvals)."""
    out = set()
    for s in signers:
        p = c.principals_by_id.get(s)
        if p is not None and p.public_key is not None:
            out.add(p.person_id)
    return out


def _signer_identity(c: Constitution, signer: str) -> tuple[object, ...] | None:
    """What makes ``signer`` the same signer in two versions: key, organisation and person (None:
    not a principal).
    """
    p = c.principals_by_id.get(signer)
    if p is None:
        return None
    return (p.public_key, p.organisation, p.person_id)


def _rules_changes(old: Constitution, new: Constitution) -> list[str]:
    """What of the amendment rules, the entrenchment list and the floor ``new`` changes."""
    out = [p for p in RULES_PATHS if resolve_path(old.document, p) != resolve_path(new.document, p)]
    # A signer is their key: handing a signer's place to another key (or organisation, or
    # person) changes who amends as surely as editing /amendment.
    out.extend(
        f"signer {s}"
        for s in old.amendment.signers
        if _signer_identity(old, s) != _signer_identity(new, s)
    )
    return out


def _key_changes(old: Constitution, new: Constitution, cap: str) -> list[str]:
    """Principals who can act on ``cap`` in ``old`` (requesters, approvers, break-glass roles)
    whose key ``new`` replaces: the game counts people, not keys, so this is who can reach it."""
    roles: set[str] = set()
    for rule in old.rules_for(cap):
        roles |= rule.requester_roles | rule.approver_roles
    for bg in old.break_glass:
        if bg.capability == cap:
            roles |= bg.roles | bg.review.approver_roles
    out = []
    for p in old.principals:
        q = new.principals_by_id.get(p.id)
        if p.roles & roles and q is not None and q.public_key not in (None, p.public_key):
            out.append(p.id)
    return out


def _aliases(old: Constitution, new: Constitution, cap: str) -> list[str]:
    """Models and actions of ``cap`` in ``old`` that another capability covers in ``new``: a
    second way to the same model is a way round every rule of the first."""
    c = old.capabilities_by_id.get(cap)
    if c is None:
        return []
    out: list[str] = []
    for other in new.capabilities:
        if other.id == cap:
            continue
        out.extend(f"model {m} ({other.id})" for m in other.models if m in c.models)
        out.extend(f"action {a} ({other.id})" for a in other.actions if a in c.actions)
    return out


def check_amendment(
    old: Constitution,
    new: Constitution,
    *,
    signed_old: Iterable[str],
    signed_new: Iterable[str],
    acknowledgements: Sequence[Acknowledgement] = (),
    guards: Sequence[AmendmentGuard] = (),
    weakened: Sequence[Weakening] = (),
    history: Sequence[Constitution] = (),
) -> AmendmentDecision:
    """May ``new`` replace ``old``?

    Args:
        signed_old: principals whose signature verified under their key in ``old``.
        signed_new: principals whose signature verified under their key in ``new``.
        acknowledgements: statements the proposal carries, with who signed them.
        guards: further checks.
        weakened: what the amendment does to the goals :func:`entrenched_goals` names, measured
            on the coalition game by the caller: each needs :func:`required_threshold`.
        history: the versions before ``old`` (any order): their thresholds hold too.
    """
    denials: list[Denial] = []
    if new.version != old.version + 1:
        # No skipping and no going back: N+1 exactly, so every version is seen by the signers
        # of the one before it.
        denials.append(
            Denial(
                "amendment",
                f"version must be {old.version + 1} "
                f"(the current is {old.version}); got {new.version}",
            )
        )
    # Both thresholds, as TUF's root rotation (§5.3.4): the old signers consent to handing
    # over, and the new signers show they hold the keys the new version names.
    old_signers = set(old.amendment.signers) & set(signed_old)
    new_signers = set(new.amendment.signers) & set(signed_new)
    have_old = len(_persons(old, old_signers))
    have_new = len(_persons(new, new_signers))
    if have_old < old.amendment.threshold:
        denials.append(
            Denial(
                "amendment",
                f"needs {old.amendment.threshold - have_old} more "
                f"signatures of version {old.version}'s amendment signers (has "
                f"{have_old} of {old.amendment.threshold})",
            )
        )
    if have_new < new.amendment.threshold:
        denials.append(
            Denial(
                "amendment",
                f"needs {new.amendment.threshold - have_new} more "
                f"signatures of version {new.version}'s amendment signers (has "
                f"{have_new} of {new.amendment.threshold})",
            )
        )
    all_keys = len(_persons(old, old.amendment.signers))
    all_orgs = {old.principals_by_id[s].organisation for s in old.amendment.signers}
    have_keys = len(_persons(old, old_signers))
    have_orgs = len({old.principals_by_id[s].organisation for s in old_signers})

    def short_of(t: Threshold) -> tuple[int, int] | None:
        """The (signers, organisations) threshold ``t`` needs, when this amendment's signers
        of the old version fall short of it; None when they meet it."""
        need_keys = all_keys if t.signers is None else min(t.signers, all_keys)
        need_orgs = (
            len(all_orgs) if t.organisations is None else min(t.organisations, len(all_orgs))
        )
        if have_keys >= need_keys and have_orgs >= need_orgs:
            return None
        return need_keys, need_orgs

    def has() -> str:
        """What this amendment's signers of the old version amount to, for a denial."""
        return f"has {have_keys} from {_count(have_orgs, 'organisation')}"

    def needs(short: tuple[int, int]) -> str:
        """``short`` in words, for a denial."""
        return (
            f"{short[0]} amendment signers of version {old.version} from "
            f"{_count(short[1], 'organisation')}"
        )

    changed = changed_clauses(old, new)
    for clause in changed:
        need_signers = clause.signers or all_keys
        need_orgs = clause.organisations or len(all_orgs)
        what = clause.description or clause.id
        if have_keys < need_signers:
            denials.append(
                Denial(
                    f"entrenched:{clause.id}",
                    f"changing '{what}' needs "
                    f"{need_signers} amendment signers of version {old.version} "
                    f"(has {have_keys})",
                )
            )
        if have_orgs < need_orgs:
            denials.append(
                Denial(
                    f"entrenched:{clause.id}",
                    f"changing '{what}' needs signers "
                    f"from {need_orgs} organisations (has {have_orgs})",
                )
            )
    versions = [*history, old]
    effect_ids: list[str] = []
    rules = required_threshold("amend", versions)
    rules_changes = _rules_changes(old, new)
    if rules is not None and rules_changes:
        effect_ids.append("constitution-rules")
        short = short_of(rules)
        if short is not None:
            denials.append(
                Denial(
                    "entrenched:constitution-rules",
                    f"changing the amendment rules, the entrenchment list or the coalition "
                    f"floor ({', '.join(rules_changes)}) needs {needs(short)} "
                    f"({rules.source}); " + has(),
                )
            )
    for cap in sorted({g[4:] for g in entrenched_goals(versions) if g.startswith("use:")}):
        need = required_threshold(f"use:{cap}", versions)
        if need is None:
            continue
        moved = _key_changes(old, new, cap)
        aliased = [a for a in _aliases(old, new, cap) if a not in _aliases(old, old, cap)]
        for why in (
            moved and f"new keys for {', '.join(moved)}",
            aliased and f"{', '.join(aliased)} now also reached",
        ):
            if not why:
                continue
            effect_ids.append(f"effect:use:{cap}")
            short = short_of(need)
            if short is not None:
                denials.append(
                    Denial(
                        f"entrenched-effect:use:{cap}",
                        f"use:{cap}: {why}: that changes who can reach it and needs "
                        f"{needs(short)} ({need.source}); " + has(),
                    )
                )
    by_goal: dict[str, list[Weakening]] = {}
    for w in weakened:
        by_goal.setdefault(w.goal, []).append(w)
    for goal, ws in by_goal.items():
        need = required_threshold(goal, versions)
        if need is None:
            continue
        effect_ids.append(f"effect:{goal}")
        short = short_of(need)
        if short is not None:
            denials.append(
                Denial(
                    f"entrenched-effect:{goal}",
                    f"{goal} weakens: {'; '.join(w.describe() for w in ws)}. Weakening an "
                    f"entrenched goal needs {needs(short)} ({need.source}); " + has(),
                )
            )
    denials.extend(_floor_on_amending(old, weakened, acknowledgements))
    for guard in guards:
        denials.extend(guard.check(old, new, acknowledgements))
    return AmendmentDecision(
        allowed=not denials,
        denials=tuple(denials),
        changed_clauses=tuple(dict.fromkeys([*(c.id for c in changed), *effect_ids])),
        weakened=tuple(weakened),
    )


def _floor_on_amending(
    old: Constitution,
    weakened: Sequence[Weakening],
    acknowledgements: Sequence[Acknowledgement],
) -> list[Denial]:
    """The coalition floor holds for amending the constitution itself: an amendment that lets
    fewer organisations than the floor amend (and fewer than before) needs the floor
    acknowledgement, signed by a threshold of the current signers."""
    floor = old.coalition.min_organisations
    out = []
    for w in weakened:
        if w.goal != "amend" or w.measure != "organisations" or not w.after.isdigit():
            continue
        if int(w.after) >= floor:
            continue
        signers = set(old.amendment.signers)
        if any(
            a.statement == FLOOR_STATEMENT
            and len(_persons(old, a.signed_by & signers)) >= old.amendment.threshold
            for a in acknowledgements
        ):
            continue
        out.append(
            Denial(
                "coalition-floor:amend",
                f"{w.after} organisation(s) could amend the constitution (before: {w.before}); "
                f"the floor is {floor}. Sign the {FLOOR_STATEMENT!r} acknowledgement to adopt "
                "it anyway",
            )
        )
    return out
