"""What an amendment does to the coalition game: entrenchment by effect, measured.

``custodes.constitution`` decides what a weakening requires (``check_amendment``) but sits below
the game; the authority adopts amendments but sits below ``custodes.coalition`` too (the game is
built from the authority's own decision functions). So the measuring lives here, and the
authority is handed an :class:`AmendmentEffects` (its ``effects``; the server attaches one in
``start_coalition``). An authority without one fails closed: every entrenched goal counts as
weakened, so every amendment needs the entrenched threshold.

For each goal :func:`custodes.constitution.entrenched_goals` names, both versions are measured
on a *normalised* game (everyone corruptible, every cost 1): ``cost`` and ``incorruptible`` are
assumptions of an analysis, and an amendment that marks the lab's people incorruptible must not
hide the lab's new way in. The measures:

- **people**: the fewest players who reach the goal (CP-SAT, re-checked by the reference
  evaluator);
- **organisations**: the fewest organisations;
- **overseer organisations**: the fewest organisations of a *fixed* reference set among them:
  the first version's overseers, and separately the old version's. Relabelling a partner
  ``overseer`` changes no count under the new labels, but it lets a coalition without any of
  the real overseers in; and with one set for a whole chain, "no step weakens" composes into
  "the chain does not weaken";
- **veto players** and **veto organisations**: those every winning coalition needs (checked
  exactly with the reference evaluator: a veto player is in the minimum coalition found, so
  only its members are candidates).

A measure the solver cannot prove in the time limit counts as weakened (fail closed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from custodes.coalition._constitution import _game
from custodes.coalition._game import Game
from custodes.coalition._measure import EffectMeasure, measure_goal, normalised
from custodes.constitution import Constitution, Weakening, entrenched_goals

__all__ = ["AmendmentEffects", "EffectMeasure", "amendment_weakenings", "normalised_game"]


def normalised_game(c: Constitution) -> Game:
    """``c``'s game with every player corruptible at cost 1.

    Its membership changes that weaken nothing are left out: they are open only to coalitions
    that every measure already counts, so leaving them out changes no measure (and saves
    measuring each goal twice). So are the standing rules a coalition could append: the old
    version's game cannot see the thresholds of the versions before it, and counting what its
    signers could append as already open would hide a weakening those thresholds forbid.
    """
    return normalised(_game(c, follow_unweakened=False, follow_appended=False))


def _compare(old: EffectMeasure, new: EffectMeasure, labels: Sequence[str]) -> list[Weakening]:
    goal = old.goal
    if not new.reachable:
        return []
    if not old.reachable:
        return [Weakening(goal, "reachable", "unreachable", "reachable")]
    out = []
    for measure, a, b in (
        ("people", old.people, new.people),
        ("organisations", old.organisations, new.organisations),
        *(
            (f"overseer organisations ({labels[n]})", a, b)
            for n, (a, b) in enumerate(zip(old.overseers, new.overseers, strict=True))
        ),
    ):
        # Weaker when the new version's proven lower bound is below the old value: exact
        # answers compare exactly, an unproven one fails closed.
        if b[0] < a[1]:
            proven = b[1] < a[1]
            out.append(Weakening(goal, measure, str(a[1]), str(b[1] if proven else b[0]), proven))
    for measure, a_set, b_set in (
        ("veto players", old.veto_players, new.veto_players),
        ("veto organisations", old.veto_organisations, new.veto_organisations),
    ):
        for lost in sorted(a_set - b_set):
            out.append(Weakening(goal, measure, lost, "none"))
    return out


def _overseers(c: Constitution) -> frozenset[str]:
    """The ids of ``c``'s overseer organisations."""
    return frozenset(o.id for o in c.organisations if o.kind == "overseer")


def amendment_weakenings(
    old: Constitution,
    new: Constitution,
    *,
    history: Sequence[Constitution] = (),
    time_limit: float = 10.0,
) -> list[Weakening]:
    """Every way ``new`` makes a goal entrenched by ``old`` or ``history`` (or ``amend``)
    easier to reach than ``old`` does.

    Entrenchment is by effect, not by text: rewording a rule that leaves the game the same
    weakens nothing, and a new rule that opens another path to an entrenched goal does.

    Args:
        old: the version in force.
        new: the proposed version.
        history: the versions before ``old`` (entrenchment never ratchets down in steps).
        time_limit: seconds per solver call.

    Returns:
        The weakenings found (empty: none), for the authority to hold to the entrenched
        threshold.
    """
    versions = sorted([*history, old], key=lambda c: c.version)
    goals = entrenched_goals(versions)
    # Counted against fixed sets, so a chain cannot walk the count down by relabelling in one
    # step and using the label in the next: the first version's overseers (the same set for
    # every step, so no-weakening composes along a chain) and the current version's.
    first = versions[0]
    references = [_overseers(first)]
    labels = [f"overseers of version {first.version}"]
    if _overseers(old) != references[0]:
        references.append(_overseers(old))
        labels.append(f"overseers of version {old.version}")
    before, after = normalised_game(old), normalised_game(new)
    out: list[Weakening] = []
    for goal in goals:
        a = measure_goal(before, goal, references, time_limit=time_limit)
        b = measure_goal(after, goal, references, time_limit=time_limit)
        out.extend(_compare(a, b, labels))
    return out


class AmendmentEffects:
    """The authority's measurer of amendments (``custodes.constitution.EffectMeasurer``):
    :func:`amendment_weakenings`, cached by the digests measured (versions never change).

    Thread-safe; the cache is bounded (cleared past 64 entries).

    Args:
        time_limit: seconds per solver call.
    """

    def __init__(self, *, time_limit: float = 10.0) -> None:
        self.time_limit = time_limit
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, ...], tuple[Weakening, ...]] = {}

    def weakenings(
        self, old: Constitution, new: Constitution, history: Iterable[Constitution]
    ) -> tuple[Weakening, ...]:
        """:func:`amendment_weakenings` of ``old`` -> ``new`` over ``history``, cached."""
        history = list(history)
        key = (old.digest, new.digest, *sorted(c.digest for c in history))
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        found = tuple(amendment_weakenings(old, new, history=history, time_limit=self.time_limit))
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = found
        return found
