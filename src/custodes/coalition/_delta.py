"""What an amendment does to coalitions, and the amendment guard that holds the floor.

:func:`diff_analyses` compares two analyses goal by goal. :class:`CoalitionFloorGuard` plugs into
the constitution's amendment check (``AmendmentGuard``): it refuses an amendment that lets fewer
organisations than the floor reach a protected goal than before, unless the proposal carries
the explicit acknowledgement ``coalition-floor`` signed by a threshold of the current amendment
signers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from custodes.coalition._analysis import Analysis, GoalReport
from custodes.coalition._constitution import _game
from custodes.coalition._evaluate import evaluate
from custodes.coalition._solver import minimum_coalition
from custodes.constitution import Acknowledgement, Constitution
from custodes.errors import Denial

__all__ = ["FLOOR_ACKNOWLEDGEMENT", "CoalitionFloorGuard", "GoalDelta", "diff_analyses"]

FLOOR_ACKNOWLEDGEMENT = "coalition-floor"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoalDelta:
    """One goal before and after (``None``: unreachable, or the goal does not exist).

    Attributes:
        goal: the goal id.
        label: its human name.
        protected: held to the floor (in either version).
        old_people: fewest persons before.
        new_people: fewest persons after.
        old_cost: least cost before.
        new_cost: least cost after.
        old_organisations: fewest organisations before.
        new_organisations: fewest organisations after.
        spof_added: players who now reach it alone and did not before.
        spof_removed: players who no longer reach it alone.
        veto_added: players every winning coalition now needs.
        veto_removed: players no longer needed by every winning coalition.
        below_floor: protected and now reachable by fewer organisations than the floor.
    """

    goal: str
    label: str
    protected: bool
    old_people: int | None
    new_people: int | None
    old_cost: float | None
    new_cost: float | None
    old_organisations: int | None
    new_organisations: int | None
    spof_added: tuple[str, ...]
    spof_removed: tuple[str, ...]
    veto_added: tuple[str, ...]
    veto_removed: tuple[str, ...]
    below_floor: bool

    @property
    def weaker(self) -> bool:
        """Fewer people, less cost or fewer organisations now suffice, or new SPOFs."""
        return (
            _smaller(self.new_people, self.old_people)
            or _smaller(self.new_cost, self.old_cost)
            or _smaller(self.new_organisations, self.old_organisations)
            or bool(self.spof_added)
        )

    @property
    def changed(self) -> bool:
        """Any measure moved, either way (weaker or stronger)."""
        return (self.old_people, self.old_cost, self.old_organisations) != (
            self.new_people,
            self.new_cost,
            self.new_organisations,
        ) or bool(self.spof_added or self.spof_removed or self.veto_added or self.veto_removed)

    def to_json(self) -> dict[str, Any]:
        """Every field (tuples as lists), plus ``weaker`` and ``changed``."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()} | {
            "weaker": self.weaker,
            "changed": self.changed,
        }


def _smaller(new: float | None, old: float | None) -> bool:
    """Whether a measure dropped; becoming reachable (None before) counts as a drop."""
    if new is None:
        return False
    return old is None or new < old


def diff_analyses(old: Analysis, new: Analysis, *, floor: int | None = None) -> list[GoalDelta]:
    """Goal by goal, what changes from ``old`` to ``new``.

    Args:
        old: the analysis of the version in force.
        new: the analysis of the proposed version.
        floor: the floor to hold protected goals to; by default the old game's (the floor in
            force when the amendment is proposed).

    Returns:
        One delta per goal of either version, the old version's goals first.
    """
    floor = old.game.floor if floor is None else floor
    old_by = {r.goal.id: r for r in old.goals}
    new_by = {r.goal.id: r for r in new.goals}
    out = []
    for goal in [*old_by, *(g for g in new_by if g not in old_by)]:
        a, b = old_by.get(goal), new_by.get(goal)
        ref = b or a
        assert ref is not None
        na, nb = _orgs(a), _orgs(b)
        protected = bool((a and a.goal.protected) or (b and b.goal.protected))
        out.append(
            GoalDelta(
                goal=goal,
                label=ref.goal.label,
                protected=protected,
                old_people=a.min_people if a else None,
                new_people=b.min_people if b else None,
                old_cost=a.cheapest.value if a else None,
                new_cost=b.cheapest.value if b else None,
                old_organisations=na,
                new_organisations=nb,
                spof_added=_added(a, b, "single_points_of_failure"),
                spof_removed=_added(b, a, "single_points_of_failure"),
                veto_added=_added(a, b, "veto_players"),
                veto_removed=_added(b, a, "veto_players"),
                below_floor=bool(
                    protected
                    and floor is not None
                    and nb is not None
                    and nb < floor
                    and _smaller(nb, na)
                ),
            )
        )
    return out


def _orgs(r: GoalReport | None) -> int | None:
    return None if r is None else r.min_organisations


def _added(a: GoalReport | None, b: GoalReport | None, field: str) -> tuple[str, ...]:
    before = set(getattr(a, field)) if a else set()
    after = getattr(b, field) if b else ()
    return tuple(x for x in after if x not in before)


class CoalitionFloorGuard:
    """An ``AmendmentGuard``: no protected goal may come within reach of fewer organisations
    than the floor (unless already so before: only drops are refused).

    The floor and protected tiers are the *old* version's together with the new one's
    protected tiers, so an amendment cannot lower the floor and use the lowered floor at once.

    Args:
        time_limit: seconds the solver may take per tier and version.
        workers: CP-SAT search workers.
    """

    def __init__(self, *, time_limit: float = 10.0, workers: int = 2) -> None:
        self.time_limit = time_limit
        self.workers = workers

    def check(
        self, old: Constitution, new: Constitution, acknowledgements: Sequence[Acknowledgement]
    ) -> list[Denial]:
        """The denials of amending ``old`` into ``new``.

        Args:
            old: the version in force (its floor is the one held).
            new: the proposed version.
            acknowledgements: statements signed with the amendment; a
                :data:`FLOOR_ACKNOWLEDGEMENT` signed by a threshold of ``old``'s amendment
                signers lets a drop below the floor through (logged as a warning).

        Returns:
            One denial per protected tier that fewer organisations than the floor could
            reach after the amendment and not before; also one per tier whose minimum could
            not be computed within ``time_limit`` (fail closed). Empty: the guard allows it.
        """
        floor = old.coalition.min_organisations
        protected = sorted(set(old.coalition.protected) | set(new.coalition.protected))
        # As the entrenchment measure does (custodes.coalition._effect.normalised_game): without
        # the standing rules the signers could append, else "the signers could already append
        # one" would let every drop through.
        before = _game(old, follow_appended=False)
        after = _game(new, follow_appended=False)
        everyone_before = evaluate(before, before.corruptible)
        everyone_after = evaluate(after, after.corruptible)
        denials: list[Denial] = []
        for cap in protected:
            goal = f"use:{cap}"
            if goal not in after.goal_index:
                continue
            now = minimum_coalition(
                after,
                goal,
                objective="organisations",
                time_limit=self.time_limit,
                workers=self.workers,
                everyone=everyone_after,
            )
            if now.status == "UNREACHABLE":
                continue
            if now.value is None:
                # Fail closed: a floor that cannot be checked is not held.
                denials.append(
                    Denial(
                        f"coalition-floor:{cap}",
                        "the minimum number of "
                        f"organisations for {cap} could not be computed in "
                        f"{self.time_limit:g}s",
                    )
                )
                continue
            if now.value >= floor:
                continue
            was = None
            if goal in before.goal_index:
                prior = minimum_coalition(
                    before,
                    goal,
                    objective="organisations",
                    time_limit=self.time_limit,
                    workers=self.workers,
                    everyone=everyone_before,
                )
                was = prior.value
            if was is not None and now.value >= was:
                continue
            orgs = sorted({after.players[i].organisation for i in now.coalition})
            if self._acknowledged(old, acknowledgements):
                _log.warning(
                    "amendment lets %s reach %s (%d organisation(s), floor %d): "
                    "allowed by a signed %r acknowledgement",
                    ", ".join(orgs),
                    cap,
                    now.value,
                    floor,
                    FLOOR_ACKNOWLEDGEMENT,
                )
                continue
            before_text = "unreachable" if was is None else f"{was:g}"
            denials.append(
                Denial(
                    f"coalition-floor:{cap}",
                    f"{now.value:g} organisation(s) ({', '.join(orgs)}) could reach {cap} "
                    f"(before: {before_text}); the floor is {floor}. Sign the "
                    f"{FLOOR_ACKNOWLEDGEMENT!r} acknowledgement to adopt it anyway",
                )
            )
        return denials

    @staticmethod
    def _acknowledged(old: Constitution, acknowledgements: Sequence[Acknowledgement]) -> bool:
        # As strong as the amendment itself: a threshold of the current amendment signers.
        signers = set(old.amendment.signers)
        return any(
            a.statement == FLOOR_ACKNOWLEDGEMENT
            and len(a.signed_by & signers) >= old.amendment.threshold
            for a in acknowledgements
        )
