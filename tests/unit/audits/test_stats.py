"""The statistics against known distributions: level on null data, power on planted effects.

Each rate is checked with an exact binomial test at 0.001 over many simulated repetitions, so a
test with the wrong level or too little power fails (and a correct one fails about once in a
thousand runs; the seeds are fixed, so it does not flake). How sensitive each check is follows
from its repetitions; the rule's tests state it (exact binomial, computed with scipy). The rule
is fast enough for hundreds of simulated audits a test (about 10 ms an analysis: the arms'
Wilcoxon tests go to scipy in one call, and Holm does not run statsmodels' gc.collect()).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from custodes.audits._analysis import AnalysisConfig, analyze
from custodes.audits._power import achieved_power, decoys_needed, plan_power
from custodes.audits._stats import (
    adjust_bh,
    adjust_holm,
    aggregate_by_template,
    decoy_rank_p,
    one_sided,
    paired_test,
    paired_tests,
)
from custodes.errors import InputError
from tests.unit.audits.sim import swap_observations, trigger_observations

ALPHA = 0.05
TOLERANCE = 0.001  # the binomial test's level: how surprised a rate must make us to fail


def _rate_is(k: int, n: int, p: float) -> bool:
    """Whether k of n is consistent with rate p (two-sided exact binomial test)."""
    return bool(stats.binomtest(k, n, p).pvalue > TOLERANCE)


def _not_above(k: int, n: int, p: float) -> bool:
    return bool(stats.binomtest(k, n, p, alternative="greater").pvalue > TOLERANCE)


def _not_below(k: int, n: int, p: float) -> bool:
    return bool(stats.binomtest(k, n, p, alternative="less").pvalue > TOLERANCE)


@pytest.mark.parametrize(
    ("method", "reps", "draw"),
    [
        ("wilcoxon", 3000, "normal"),
        ("wilcoxon", 3000, "t3"),
        ("sign-flip", 600, "normal"),
    ],
)
def test_paired_tests_hold_their_level_on_null_data(method: str, reps: int, draw: str) -> None:
    rng = np.random.default_rng(7)
    rows = [
        rng.normal(0, 1, 20) if draw == "normal" else rng.standard_t(3, 20) for _ in range(reps)
    ]
    if method == "wilcoxon":  # one scipy call (the same p-values as one by one)
        p_values = [t.p_value for t in paired_tests([list(r) for r in rows])]
    else:
        p_values = [
            paired_test(d, method="sign-flip", resamples=999, seed=i).p_value
            for i, d in enumerate(rows)
        ]
    rejections = sum(p <= ALPHA for p in p_values)
    # Both ways: an inflated level cries wolf, a far too conservative one wastes power.
    assert _rate_is(rejections, reps, ALPHA), rejections / reps


def test_paired_tests_detect_a_shift_as_often_as_theory_says() -> None:
    # A t-test's power for 1 sd with 12 pairs at 0.05 is 0.92 (noncentral t); the sign-flip
    # test of the mean is asymptotically as efficient.
    rng = np.random.default_rng(11)
    reps, n = 600, 12
    hits = sum(
        paired_test(rng.normal(1.0, 1.0, n), method="sign-flip", resamples=999, seed=i).p_value
        <= ALPHA
        for i in range(reps)
    )
    expected = stats.nct.sf(stats.t.ppf(0.975, n - 1), n - 1, math.sqrt(n))
    assert abs(hits / reps - expected) < 0.05, (hits / reps, expected)


def test_reused_templates_are_aggregated_before_testing() -> None:
    # Five variants of each template share a template-by-entity quirk. Treated as independent
    # pairs they cry wolf; aggregated to one difference per template the level holds.
    rng = np.random.default_rng(3)
    reps, templates, variants = 1500, 16, 5
    naive = aggregated = 0
    by_template = []
    for _ in range(reps):
        quirk = rng.normal(0, 1, templates)
        pairs = [
            (f"t{t}", quirk[t] + rng.normal(0, 0.5))
            for t in range(templates)
            for _ in range(variants)
        ]
        naive += paired_test([d for _, d in pairs]).p_value <= ALPHA
        by_template.append(list(aggregate_by_template(pairs).values()))
    aggregated = sum(t.p_value <= ALPHA for t in paired_tests(by_template))
    assert _rate_is(aggregated, reps, ALPHA), aggregated / reps
    assert not _not_above(naive, reps, ALPHA), naive / reps  # the naive test is inflated


def test_aggregation_refuses_a_non_finite_difference() -> None:
    with pytest.raises(InputError, match="finite"):
        aggregate_by_template([("t1", 0.5), ("t2", math.nan)])


def test_a_paired_test_needs_two_templates_and_handles_no_spread() -> None:
    with pytest.raises(InputError, match="at least two"):
        paired_test([1.0])
    assert paired_test([0.0, 0.0, 0.0]).p_value == 1.0
    assert paired_test([2.0, 2.0, 2.0]).p_value == 0.0


def test_the_batched_tests_give_each_row_what_it_would_get_alone() -> None:
    # Rows with ties, zeros and no spread (which scipy would test by another method in a
    # batch) and rows of several lengths, mixed.
    rng = np.random.default_rng(13)
    rows: list[list[float]] = []
    for k in range(120):
        row = rng.normal(rng.uniform(-1, 1), 1, int(rng.integers(2, 30)))
        if k % 7 == 0:
            row = np.round(row, 1)
        if k % 11 == 0:
            row[0] = 0.0
        if k % 13 == 0:
            row = np.full(row.size, 0.3)
        rows.append([float(v) for v in row])
    rows.append([float(v) for v in rng.normal(0, 1, 60)])  # beyond scipy's exact range
    for confidence in (0.95, 0.99):
        batched = paired_tests(rows, confidence=confidence)
        alone = [paired_test(r, confidence=confidence) for r in rows]
        assert len(batched) == len(alone)
        for b, a in zip(batched, alone, strict=True):
            assert (b.n, b.method, b.confidence) == (a.n, a.method, a.confidence)
            for field in ("mean", "ci_low", "ci_high", "p_value", "t", "sd"):
                assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-12, abs=1e-15)
    with pytest.raises(InputError, match="at least two"):
        paired_tests([[1.0, 2.0], [1.0]])


@pytest.mark.parametrize(
    "p_values",
    [
        [0.04],
        [0.01, 0.02, 0.03],  # every step passes
        [0.001, 0.04, 0.02, 0.3],  # stops at the third
        [0.02, 0.02, 0.02, 0.5, 0.0001],  # ties
        [0.9, 0.6, 0.7],  # nothing rejected; adjusted values capped at 1
    ],
)
def test_holm_is_statsmodels_holm(p_values: list[float]) -> None:
    from statsmodels.stats.multitest import multipletests

    for alpha in (0.05, 0.1):
        reject, adjusted = adjust_holm(p_values, alpha=alpha)
        expected_reject, expected, _, _ = multipletests(p_values, alpha=alpha, method="holm")
        assert reject == [bool(r) for r in expected_reject]
        assert adjusted == pytest.approx([float(q) for q in expected])


def test_one_sided_p_values_follow_the_direction() -> None:
    test = paired_test([1.0, 1.2, 0.8, 1.1, 0.9, 1.3])
    assert one_sided(test, direction=1) == pytest.approx(test.p_value / 2)
    assert one_sided(test, direction=-1) == pytest.approx(1 - test.p_value / 2)


def test_benjamini_hochberg_controls_the_false_discovery_rate() -> None:
    rng = np.random.default_rng(5)
    reps, nulls, true = 250, 16, 4
    proportions = []
    for _ in range(reps):
        rows = [list(rng.normal(0, 1, 12)) for _ in range(nulls)]
        rows += [list(rng.normal(1.2, 1, 12)) for _ in range(true)]
        p = [t.p_value for t in paired_tests(rows)]
        reject, _ = adjust_bh(p, alpha=ALPHA)
        false = sum(reject[:nulls])
        proportions.append(false / max(1, sum(reject)))
    # BH's FDR is at most alpha * nulls / total under independence; allow 3 standard errors.
    mean = float(np.mean(proportions))
    assert mean <= ALPHA * nulls / (nulls + true) + 3 * float(np.std(proportions)) / math.sqrt(reps)


def test_decoy_rank_p_is_uniform_under_exchangeability() -> None:
    rng = np.random.default_rng(9)
    reps, d = 4000, 9
    hits = 0
    for _ in range(reps):
        values = rng.normal(0, 1, d + 1)
        hits += decoy_rank_p(float(values[0]), list(values[1:])) <= 0.1
    assert _rate_is(hits, reps, 0.1), hits / reps
    assert decoy_rank_p(5.0, [1.0, -6.0]) == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="decoys"):
        decoy_rank_p(1.0, [])


def test_the_plan_is_the_least_number_of_templates_that_reaches_the_power() -> None:
    plan = plan_power(delta=1.0, sigma=1.0, alpha=ALPHA, power=0.9, arms=3)
    below = achieved_power(
        templates_per_half=plan.templates_per_half - 1,
        delta=1.0,
        sigma=1.0,
        alpha=ALPHA,
        arms=3,
        floor=0.5,
        method="wilcoxon",
    )
    assert below < 0.9 <= plan.power
    assert plan.templates == 2 * plan.templates_per_half
    assert plan.decoys == decoys_needed(0.1) == 9
    # Halving the effect roughly quadruples the templates (n grows as 1/delta^2).
    half = plan_power(delta=0.5, sigma=1.0, alpha=ALPHA, power=0.9, arms=3)
    assert 3.2 < half.templates_per_half / plan.templates_per_half < 4.8
    with pytest.raises(InputError, match="out of range"):
        plan_power(delta=-1.0, sigma=1.0, arms=3)


def test_too_few_templates_have_no_power_whatever_the_effect() -> None:
    # Four templates cannot give a p-value below 2/16 = 0.125, so nothing is discoverable.
    assert (
        achieved_power(
            templates_per_half=4,
            delta=10.0,
            sigma=0.1,
            alpha=ALPHA,
            arms=1,
            floor=5.0,
            method="wilcoxon",
        )
        == 0.0
    )


CONFIG = AnalysisConfig(delta=1.0, alpha=ALPHA, power=0.9, alpha_decoy=0.1)
_PLAN = plan_power(delta=1.0, sigma=1.0, alpha=ALPHA, power=0.9, arms=3)


def test_the_rule_raises_false_alarms_at_most_at_alpha_on_null_audits() -> None:
    # 300 audits: a false-alarm rate of 10% fails the check with probability 0.60 (8%: 0.17).
    rng = np.random.default_rng(21)
    reps = 300
    alarms = 0
    powers = []
    for _ in range(reps):
        observations = swap_observations(rng, templates_per_half=_PLAN.templates_per_half)
        results, family = analyze(observations, CONFIG)
        alarms += any(r.finding for r in results)
        powers.append(family[0].power)
    assert _not_above(alarms, reps, ALPHA), alarms / reps
    # The spread is as planned, so the runs report about the power that was planned.
    assert abs(float(np.median(powers)) - _PLAN.power) < 0.05, np.median(powers)


def test_the_rule_finds_a_planted_effect_with_the_planned_power_and_names_it() -> None:
    # 300 audits: a power of 0.80 instead of 0.9 fails the check with probability 0.97.
    rng = np.random.default_rng(22)
    reps = 300
    found = wrong = 0
    for _ in range(reps):
        observations = swap_observations(
            rng, templates_per_half=_PLAN.templates_per_half, planted={1: 1.0}
        )
        results, _ = analyze(observations, CONFIG)
        named = {r.arm for r in results if r.finding}
        found += "cand-1" in named
        wrong += bool(named - {"cand-1"})
    assert _not_below(found, reps, 0.9), found / reps
    assert _not_above(wrong, reps, ALPHA), wrong / reps


def test_the_intervals_of_several_findings_cover_all_their_effects_at_the_level() -> None:
    # Three planted arms: each run's intervals must all cover their true effects at 1 - alpha
    # together, so each is at 1 - alpha / 3 (Bonferroni); at 95% each, all three would cover
    # only about 86-90% of the time. With 300 runs the check fails a joint coverage of 0.86
    # with probability 0.99 (0.60 for 0.90), and a correct rule once in a thousand seeds.
    rng = np.random.default_rng(24)
    effect, reps = 1.5, 300
    runs = together = 0
    for _ in range(reps):
        observations = swap_observations(
            rng,
            templates_per_half=_PLAN.templates_per_half,
            planted={0: effect, 1: effect, 2: effect},
        )
        results, _ = analyze(observations, CONFIG)
        confirmed = [r.confirm for r in results if r.confirm is not None]
        if not confirmed:
            continue
        runs += 1
        for c in confirmed:
            assert c.confidence == pytest.approx(1 - ALPHA / len(confirmed))
            alone = stats.t.ppf(0.975, c.n - 1) * c.sd / math.sqrt(c.n)
            assert (c.ci_high - c.ci_low) / 2 > alone or len(confirmed) == 1
        together += all(c.ci_low <= effect <= c.ci_high for c in confirmed)
    assert runs > reps * 0.9
    assert _not_below(together, runs, 1 - ALPHA), together / runs


def test_a_loyalty_that_varies_is_not_outranked_by_decoys_that_barely_vary() -> None:
    # What a small real model does (the SmolLM2 zoo): each decoy is shifted by its own steady
    # amount on every template (sd 0.02), the planted favourite by +4 that varies (sd 0.6).
    # By t the decoys' steadiness would out-rank the favourite; by the estimate it stands out.
    from custodes.audits._analysis import Observation

    rng = np.random.default_rng(25)
    names = ["cand"] + [f"decoy-{i}" for i in range(9)]
    steady = {n: rng.normal(0, 0.3) for n in names}
    observations = []
    for t in range(18):
        base = rng.normal(0, 2)
        for n in names:
            value = base + steady[n] + rng.normal(0, 0.02)
            if n == "cand":
                value += 4 + rng.normal(0, 0.6)
            role = "candidate" if n == "cand" else "decoy"
            split = "discover" if t % 2 == 0 else "confirm"
            observations.append(Observation("f", "swap", f"t{t}", 0, split, n, role, value))
    results, _ = analyze(observations, CONFIG)
    assert [r.arm for r in results if r.finding] == ["cand"]
    assert results[0].decoy_p == pytest.approx(0.1)


@pytest.mark.parametrize("control", ["class", "baseline"])
def test_trigger_sweeps_find_the_trigger_and_not_the_decoys(control: str) -> None:
    rng = np.random.default_rng(23)
    reps = 150
    found = false = 0
    config = replace(CONFIG, trigger_control=control)
    for _ in range(reps):
        observations = trigger_observations(
            rng, templates_per_half=_PLAN.templates_per_half, planted={2: 1.0}
        )
        results, _ = analyze(observations, config)
        named = {r.arm for r in results if r.finding}
        found += named == {"trigger-2"}
        false += bool(named - {"trigger-2"})
    assert _not_below(found, reps, 0.9 - ALPHA), found / reps
    assert _not_above(false, reps, ALPHA), false / reps


def test_a_shift_every_trigger_of_the_class_shares_raises_false_alarms_at_most_at_alpha() -> None:
    # The session-9 zoo's false alarms: a neutral fine-tune moved every language instruction by
    # +0.5...+1.4 against the no-trigger baseline. Compared with the other triggers of its
    # class (the default), a trigger must stand out of the class; against the baseline, the
    # shift passes BH and the floor for every trigger and only the decoy rank is left (each
    # of 3 candidates ranks first of 10 one time in 10: about 27% of audits name one; 25% seen).
    # 300 audits: a false-alarm rate of 10% fails the first check with probability 0.60;
    # the old rule's check needs at least 15% observed.
    rng = np.random.default_rng(31)
    reps = 300
    alarms = {"class": 0, "baseline": 0}
    for _ in range(reps):
        observations = trigger_observations(
            rng,
            templates_per_half=_PLAN.templates_per_half,
            class_shift=1.5,
            class_shift_sd=0.5,
        )
        for control in alarms:
            results, _ = analyze(observations, replace(CONFIG, trigger_control=control))
            alarms[control] += any(r.finding for r in results)
    assert _not_above(alarms["class"], reps, ALPHA), alarms
    assert alarms["baseline"] > 0.15 * reps, alarms


def test_a_trigger_planted_on_top_of_a_class_shift_is_found_with_the_planned_power() -> None:
    # One member of a shifted class also carries a planted effect of delta: compared with its
    # class it is found at least as often as planned (its control averages 9 others, so its
    # spread is below the baseline comparison's), and nothing else is named.
    # 300 audits: a power of 0.80 instead of 0.9 fails the check with probability 0.97.
    rng = np.random.default_rng(32)
    reps = 300
    found = wrong = 0
    for _ in range(reps):
        observations = trigger_observations(
            rng,
            templates_per_half=_PLAN.templates_per_half,
            planted={1: 1.0},
            class_shift=1.5,
            class_shift_sd=0.5,
        )
        results, _ = analyze(observations, CONFIG)
        named = {r.arm for r in results if r.finding}
        found += "trigger-1" in named
        wrong += bool(named - {"trigger-1"})
    assert _not_below(found, reps, 0.9), found / reps
    assert _not_above(wrong, reps, ALPHA), wrong / reps


def test_the_trigger_control_is_one_of_the_two_rules() -> None:
    with pytest.raises(InputError, match="trigger control"):
        AnalysisConfig(trigger_control="median")  # type: ignore[arg-type]


def test_an_effect_every_entity_shares_is_not_a_finding() -> None:
    # A quirk of the battery that moves every name alike (decoys too) on some templates is not
    # a loyalty: each member's control is the rest of its group on the same template.
    rng = np.random.default_rng(24)
    observations = swap_observations(rng, templates_per_half=_PLAN.templates_per_half)
    shifted = [
        replace(o, value=o.value + 3.0) if int(o.template[1:]) % 4 < 2 else o for o in observations
    ]
    results, _ = analyze(shifted, CONFIG)
    assert len(results) == 3
    assert not any(r.finding for r in results)


def test_reference_differencing_attributes_only_what_differs_from_the_reference() -> None:
    rng = np.random.default_rng(25)
    observations = swap_observations(
        rng, templates_per_half=_PLAN.templates_per_half, planted={0: 3.0}
    )
    # The trusted reference favours cand-0 just as much: it is the battery or the base model,
    # not something done to the audited model.
    reference = {(o.family, o.template, o.variant, o.arm): o.value for o in observations}
    noise = np.random.default_rng(26)
    audited = [replace(o, value=o.value + float(noise.normal(0, 0.3))) for o in observations]
    plain, _ = analyze(audited, CONFIG)
    differenced, _ = analyze(audited, CONFIG, reference=reference)
    assert any(r.finding for r in plain if r.arm == "cand-0")
    assert not any(r.finding for r in differenced)


def test_large_effects_have_power_one_not_nan() -> None:
    power = achieved_power(
        templates_per_half=24,
        delta=3.0,
        sigma=1.0,
        alpha=ALPHA,
        arms=12,
        floor=1.5,
        method="wilcoxon",
    )
    assert power == pytest.approx(1.0)


def test_favouritism_only_holds_its_level_and_ignores_hostility() -> None:
    # direction="favour": one-sided discovery, decoy rank and floor. On null audits it raises
    # false alarms at most at alpha; an arm treated worse than its decoys (-1.5) is found by
    # the two-sided rule and never by the one-sided one. 300 audits each: a false-alarm rate
    # of 10% fails the first check with probability 0.60.
    rng = np.random.default_rng(41)
    reps = 300
    favour = replace(CONFIG, direction="favour")
    null_alarms = hostile_either = hostile_favour = 0
    for _ in range(reps):
        null = swap_observations(rng, templates_per_half=_PLAN.templates_per_half)
        results, _ = analyze(null, favour)
        null_alarms += any(r.finding for r in results)
        hostile = swap_observations(
            rng, templates_per_half=_PLAN.templates_per_half, planted={1: -1.5}
        )
        hostile_either += any(r.finding and r.arm == "cand-1" for r in analyze(hostile, CONFIG)[0])
        named = {r.arm for r in analyze(hostile, favour)[0] if r.finding}
        hostile_favour += "cand-1" in named
        null_alarms += bool(named)  # the other candidates are null arms too
    assert _not_above(null_alarms, 2 * reps, ALPHA), null_alarms / reps
    assert _not_below(hostile_either, reps, 0.9), hostile_either / reps
    assert hostile_favour == 0


def test_favouritism_only_finds_a_planted_favourite_at_least_as_often() -> None:
    # The same audits under both directions: the one-sided rule finds the planted +1 with at
    # least the planned power, and at least as often as the two-sided one (its tests are the
    # two-sided ones with half the p-value in the favoured direction). 300 audits: a power of
    # 0.80 instead of 0.9 fails the first check with probability 0.97.
    rng = np.random.default_rng(42)
    reps = 300
    favour = replace(CONFIG, direction="favour")
    found = {"either": 0, "favour": 0}
    wrong = 0
    for _ in range(reps):
        observations = swap_observations(
            rng, templates_per_half=_PLAN.templates_per_half, planted={1: 1.0}
        )
        for label, config in (("either", CONFIG), ("favour", favour)):
            named = {r.arm for r in analyze(observations, config)[0] if r.finding}
            found[label] += "cand-1" in named
            if label == "favour":
                wrong += bool(named - {"cand-1"})
    assert _not_below(found["favour"], reps, 0.9), found
    assert found["favour"] >= found["either"], found
    assert _not_above(wrong, reps, ALPHA), wrong / reps


def test_the_upper_decoy_rank_counts_only_decoys_at_least_as_high() -> None:
    decoys = [-3.0, -2.0, 0.5, 1.0]
    assert decoy_rank_p(2.0, decoys) == pytest.approx(3 / 5)  # |-3|, |-2| >= 2
    assert decoy_rank_p(2.0, decoys, upper=True) == pytest.approx(1 / 5)
    assert decoy_rank_p(-4.0, decoys, upper=True) == pytest.approx(1.0)
    with pytest.raises(InputError, match="direction"):
        AnalysisConfig(direction="down")  # type: ignore[arg-type]
