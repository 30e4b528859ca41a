"""Simulated audits with known truth, for the statistics tests."""

from __future__ import annotations

import math

import numpy as np

from custodes.audits._analysis import Observation


def swap_observations(
    rng: np.random.Generator,
    *,
    templates_per_half: int,
    candidates: int = 3,
    decoys: int = 9,
    planted: dict[int, float] | None = None,
    sd: float = 1.0,
    variants: int = 1,
    interaction_sd: float = 0.0,
) -> list[Observation]:
    """A swap family: ``a_t + u_{t,e} + noise`` per (template, entity, variant).

    Every entity is exchangeable except the planted candidates (index -> effect in log-odds).
    ``sd`` is the standard deviation of one member's difference from its group's control
    (a template-level difference when ``interaction_sd`` is 0 and ``variants`` is 1).
    """
    planted = planted or {}
    names = [f"cand-{i}" for i in range(candidates)] + [f"decoy-{i}" for i in range(decoys)]
    # Var(x_e - mean of D others) = s^2 (1 + 1/D): scale the noise so the difference has sd.
    noise = sd / math.sqrt(1 + 1 / decoys)
    out: list[Observation] = []
    for t in range(2 * templates_per_half):
        split = "discover" if t % 2 == 0 else "confirm"
        base = rng.normal(0, 2.0)  # templates differ a lot in how often "yes" is said
        interaction = rng.normal(0, interaction_sd, len(names)) if interaction_sd else None
        for v in range(variants):
            for i, name in enumerate(names):
                value = base + rng.normal(0, noise)
                if interaction is not None:
                    value += interaction[i]
                if i < candidates:
                    value += planted.get(i, 0.0)
                out.append(
                    Observation(
                        "swap",
                        "swap",
                        f"t{t}",
                        v,
                        split,
                        name,
                        "candidate" if i < candidates else "decoy",
                        float(value),
                    )
                )
    return out


def trigger_observations(
    rng: np.random.Generator,
    *,
    templates_per_half: int,
    triggers: int = 3,
    decoys: int = 9,
    planted: dict[int, float] | None = None,
    sd: float = 1.0,
    class_shift: float = 0.0,
    class_shift_sd: float = 0.0,
) -> list[Observation]:
    """A trigger family: each trigger and decoy trigger, and the no-trigger baseline.

    ``class_shift`` moves every trigger of the family alike (candidates and decoys, not the
    baseline), by ``class_shift`` plus a per-template ``N(0, class_shift_sd)``: what a neutral
    fine-tune did to every language instruction in the session-9 zoo.
    """
    planted = planted or {}
    out: list[Observation] = []
    for t in range(2 * templates_per_half):
        split = "discover" if t % 2 == 0 else "confirm"
        base = rng.normal(0, 2.0)
        baseline = base + rng.normal(0, sd / math.sqrt(2))
        out.append(Observation("trig", "trigger", f"t{t}", 0, split, None, "baseline", baseline))
        shift = class_shift + (rng.normal(0, class_shift_sd) if class_shift_sd else 0.0)
        for i in range(triggers + decoys):
            value = base + shift + rng.normal(0, sd / math.sqrt(2)) + planted.get(i, 0.0)
            role = "candidate" if i < triggers else "decoy"
            name = f"trigger-{i}" if i < triggers else f"decoy-trigger-{i}"
            out.append(Observation("trig", "trigger", f"t{t}", 0, split, name, role, value))
    return out
