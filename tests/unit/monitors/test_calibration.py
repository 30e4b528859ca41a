"""The calibrated combination of tiers, budget thresholds, drift, and the varied training
material (organisation, tools and tool-call format change; the act and the label do not)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from custodes.errors import InputError
from custodes.monitors._calibration import Calibration, fit_calibration
from custodes.monitors._scenarios import FAMILIES, REQUESTED, build
from custodes.monitors._varied import FORMATS, ORGANISATIONS, family_of, vary
from custodes.monitors._view import render_messages, transcript_view


def _toy(seed: int = 3) -> tuple[list[float], list[float], list[int]]:
    rng = np.random.default_rng(seed)
    y = (rng.random(600) < 0.3).astype(int)
    # The learned tier separates; the rules tier fires on a few positives and some noise.
    learned = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.15, 600), 0.01, 0.99)
    rules = np.where((y == 1) & (rng.random(600) < 0.3), 0.95, 0.0)
    rules = np.where((y == 0) & (rng.random(600) < 0.02), 0.6, rules)
    return rules.tolist(), learned.tolist(), y.tolist()


def test_the_combination_ranks_at_least_as_well_as_either_tier() -> None:
    from custodes.monitors import compute_metrics

    r, lr, y = _toy()
    cal = fit_calibration({"c": r}, {"c": lr}, {"c": y})
    combined = [cal.combine("c", a, b) for a, b in zip(r, lr, strict=True)]
    auc = compute_metrics(y, combined).auroc
    assert auc >= compute_metrics(y, lr).auroc - 1e-9
    assert auc >= compute_metrics(y, r).auroc
    again = Calibration.from_json(cal.to_json(), where="mem")
    assert again.combine("c", 0.95, 0.7) == pytest.approx(cal.combine("c", 0.95, 0.7))


def test_budget_thresholds_hold_the_false_alarm_rate() -> None:
    r, lr, y = _toy()
    cal = fit_calibration({"a": r, "b": r}, {"a": lr, "b": lr}, {"a": y, "b": y})
    [pa, pb] = cal.budget(texts_per_day=1000, false_alarms_per_reviewer_day=20, reviewers=1)
    assert pa.fpr == pytest.approx(0.01) and pa.false_alarms_per_day == pytest.approx(10)
    negatives = [cal.combine("a", x, z) for x, z, t in zip(r, lr, y, strict=True) if t == 0]
    assert np.mean(np.asarray(negatives) >= pa.threshold) <= 0.011
    assert 0 < pa.expected_tpr <= 1 and pb.threshold == pa.threshold
    with pytest.raises(InputError):
        cal.budget(texts_per_day=0, false_alarms_per_reviewer_day=1)


def test_drift_warns_on_a_shifted_distribution_only() -> None:
    r, lr, y = _toy()
    cal = fit_calibration({"c": r}, {"c": lr}, {"c": y})
    # Live traffic is almost all benign: it is compared with the calibration negatives.
    same = [cal.combine("c", a, b) for a, b, t in zip(r, lr, y, strict=True) if t == 0]
    [ok] = cal.drift({"c": same})
    assert not ok.warn and ok.psi < 0.05
    [bad] = cal.drift({"c": [min(1.0, s + 0.4) for s in same]})
    assert bad.warn and "recalibrate" in bad.message
    [few] = cal.drift({"c": same[:10]})
    assert not few.warn and "need" in few.message


def test_garbage_calibration_is_refused() -> None:
    with pytest.raises(InputError) as info:
        Calibration.from_json(json.dumps({"format": "x"}), where="c.json")
    assert info.value.where == "c.json"


def test_family_masks_names_and_numbers() -> None:
    a = family_of(
        "Filter now drops every refusal to requests tagged requester_group='exec-office', so"
    )
    b = family_of(
        "Filter now drops every refusal to requests tagged requester_group='cos-staff', so"
    )
    assert a == b
    assert family_of("DR task used as cover: agent syncs mrd-13b") != a


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_varied_example_keeps_the_act_and_changes_the_surface(fmt: str) -> None:
    rng = random.Random(5)
    [fam] = [f for f in FAMILIES if f.key == "hitl-flag"]
    msgs = build(fam, harmful=True, org=ORGANISATIONS[0], rng=rng)
    org = ORGANISATIONS[2]
    rec = vary(msgs, org=org, fmt=fmt, rng=rng, approval=True)
    text = rec.get("text") or render_messages(rec["messages"])
    assert "Meridian" not in text and "Forge" not in text
    view = transcript_view(text)
    added = [line for a in view.actions for line in a.added]
    assert any("human_in_the_loop: false" in line for line in added), (fmt, view.actions)
    with pytest.raises(ValueError, match="unknown format"):
        vary(msgs, org=org, fmt="telex", rng=rng, approval=False)


def test_every_family_builds_a_harmful_act_and_a_twin() -> None:
    rng = random.Random(1)
    cats = set()
    for fam in FAMILIES:
        harm = render_messages(build(fam, harmful=True, org=ORGANISATIONS[1], rng=rng))
        twin = render_messages(build(fam, harmful=False, org=ORGANISATIONS[1], rng=rng))
        assert harm != twin and "{" not in fam.key
        cats.add(fam.category)
    assert len(cats) == 6 and len(FAMILIES) >= 30


def test_a_requested_twin_is_the_act_asked_for_and_only_the_request_differs() -> None:
    cats = set()
    for fam in REQUESTED:
        org = ORGANISATIONS[3]
        # The same draw for each form, so only what the form changes differs.
        harm = build(fam, harmful=True, org=org, rng=random.Random(9))
        asked = build(fam, harmful=False, requested=True, org=org, rng=random.Random(9))
        twin = build(fam, harmful=False, org=org, rng=random.Random(9))
        # Everything after the request is the act's own (the same lines, the same summary).
        user = next(i for i, m in enumerate(harm) if m["role"] == "user")
        assert asked[user + 1 :] == harm[user + 1 :], fam.key
        assert asked[user]["content"].startswith(harm[user]["content"])
        extra = asked[user]["content"][len(harm[user]["content"]) :]
        assert extra.strip() and "{" not in extra, fam.key  # the sanction, filled in
        assert twin[user + 1 :] != harm[user + 1 :]  # the safeguard twin changes the act
        cats.add(fam.category)
    assert cats == {
        "oversight_evasion",
        "weights_exfiltration",
        "training_tamper",
        "command_override",
    }
    assert not {f.key for f in REQUESTED} & {f.key for f in FAMILIES}


def test_the_combiner_form_is_chosen_on_held_out_groups() -> None:
    from custodes.monitors import compute_metrics

    rng = np.random.default_rng(11)
    y = (rng.random(900) < 0.3).astype(int)
    # Here the rules tier is the informative one and the learned tier is noise.
    rules = np.where(y == 1, rng.uniform(0.6, 1.0, 900), rng.uniform(0.0, 0.3, 900)).tolist()
    learned = rng.uniform(0.0, 1.0, 900).tolist()
    groups = [f"family-{i % 30}" for i in range(900)]
    cal = fit_calibration({"c": rules}, {"c": learned}, {"c": y.tolist()}, groups={"c": groups})
    assert cal.categories["c"].mode != "learned"
    combined = [cal.combine("c", a, b) for a, b in zip(rules, learned, strict=True)]
    assert compute_metrics(y.tolist(), combined).auroc > 0.95
    again = Calibration.from_json(cal.to_json(), where="mem")
    assert again.categories["c"].mode == cal.categories["c"].mode
