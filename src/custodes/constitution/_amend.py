"""The amendment rule: N+1 only, thresholds of the old and the new signers, entrenched clauses.

This is TUF's rule for root metadata (TUF specification §5.3.4: a new root must be signed by a
threshold of the keys of the trusted root and a threshold of its own keys), plus entrenched
clauses: a change to a path a clause names needs that clause's stronger threshold of the
*current* signers. A person counts once, however many signer identities or keys they hold (as
for approvals). Signature checks happen before this function (in
``custodes.authority``); it receives who was verified to have signed, and with which version's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from custodes.constitution._model import Constitution, EntrenchedClause
from custodes.constitution._paths import resolve_path
from custodes.errors import Denial

__all__ = [
    "Acknowledgement",
    "AmendmentDecision",
    "AmendmentGuard",
    "changed_clauses",
    "check_amendment",
]


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
    ) -> list[Denial]: ...


@dataclass(frozen=True)
class AmendmentDecision:
    allowed: bool
    denials: tuple[Denial, ...]
    changed_clauses: tuple[str, ...]


def changed_clauses(old: Constitution, new: Constitution) -> list[EntrenchedClause]:
    """The old version's entrenched clauses whose paths, or whose own text, the new one changes."""
    out = []
    for clause in old.entrenched:
        paths = (*clause.paths, f"/entrenched/{clause.id}")
        if any(resolve_path(old.document, p) != resolve_path(new.document, p) for p in paths):
            out.append(clause)
    return out


def _persons(c: Constitution, signers: Iterable[str]) -> set[str]:
    out = set()
    for s in signers:
        p = c.principals_by_id.get(s)
        if p is not None and p.public_key is not None:
            out.add(p.person_id)
    return out


def check_amendment(
    old: Constitution,
    new: Constitution,
    *,
    signed_old: Iterable[str],
    signed_new: Iterable[str],
    acknowledgements: Sequence[Acknowledgement] = (),
    guards: Sequence[AmendmentGuard] = (),
) -> AmendmentDecision:
    """May ``new`` replace ``old``?

    Args:
        signed_old: principals whose signature verified under their key in ``old``.
        signed_new: principals whose signature verified under their key in ``new``.
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
    changed = changed_clauses(old, new)
    all_orgs = {old.principals_by_id[s].organisation for s in old.amendment.signers}
    for clause in changed:
        need_signers = clause.signers or len(_persons(old, old.amendment.signers))
        need_orgs = clause.organisations or len(all_orgs)
        have_keys = len(_persons(old, old_signers))
        have_orgs = len({old.principals_by_id[s].organisation for s in old_signers})
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
    for guard in guards:
        denials.extend(guard.check(old, new, acknowledgements))
    return AmendmentDecision(
        allowed=not denials, denials=tuple(denials), changed_clauses=tuple(c.id for c in changed)
    )
