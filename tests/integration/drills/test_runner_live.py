"""The drill runner against a live demo deployment: it judges what each step did, never the
action; a step that cannot run is "not runnable", never passed; and a control that does not
hold is MISSED, with why.

The demo runs a deliberately weakened constitution (tests.support.drills.weakened_constitution:
nothing entrenched, no coalition floor), which the judging scenario below does not touch; the
last test runs a built-in drill against it, which must report MISSED. One demo for both (a demo
start is seconds of CPU in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.drills import Credentials, Scorecard, StepResult, Target, read_scenario, run_drill
from custodes.errors import DrillError
from custodes.log import NoteSigner
from tests.support.demo_api import run_cli
from tests.support.drills import Demo, demo_deployment, weakened_constitution

pytestmark = pytest.mark.slow

JUDGING = """\
id: judging
title: The runner's judging
capabilities:
  tier: {protected: true, approvals: true, served: true}
  unserved: {protected: true, approvals: true, served: false}
  emergency: {protected: true, break_glass: true}
actors:
  user:
    role: researcher
    may_request: tier
    needs: signing+api
  lab-approver:
    organisation_kind: developer
    may_approve: tier
  overseer:
    organisation_kind: overseer
    may_approve: tier
  auditor:
    organisation_kind: overseer
    may_approve: unserved
    other_organisation_than: [overseer]
  commander:
    may_break_glass: emergency
  ghost:
    role: no-such-role
steps:
  - id: not-built
    title: A feature that does not exist yet
    action: pending
    actor: user
    with: {reason: the frobnicator (issue 999) has not landed}
    expect: {control: the frobnicator, result: stopped}
  - id: needs-a-path
    title: A step whose feature the deployment does not serve
    action: request_grant
    actor: user
    needs: [{feature: the frobnicator, path: /frobnicate, issue: 999}]
    with: {capability: tier}
    expect: {control: the frobnicator, result: stopped}
  - id: after-not-runnable
    title: A step after one that did not run
    action: request_grant
    actor: user
    after: [needs-a-path]
    with: {capability: tier}
    expect: {control: the frobnicator, result: stopped}
  - id: nobody-to-play
    title: An actor nobody in the constitution can play
    action: request_grant
    actor: ghost
    with: {capability: tier}
    expect: {control: a control, result: stopped}
  - id: granted-but-expected-stopped
    title: A grant with its full quorum, which the scenario wrongly expects to be refused
    action: request_grant
    actor: user
    with: {capability: tier, approvers: [lab-approver, overseer]}
    expect: {control: a control that is not there, result: stopped}
  - id: revealed-by-its-grant-entry
    title: A grant with its full quorum, revealed by its log entry
    action: request_grant
    actor: user
    with: {capability: unserved, approvers: [lab-approver, overseer, auditor]}
    expect:
      control: every grant is logged
      result: revealed
      evidence: [authority.grant/v1]
  - id: revealed-by-nothing
    title: A gateway call expected in an entry type that records something else
    action: gateway_call
    actor: user
    after: [granted-but-expected-stopped]
    with: {capability: tier}
    expect:
      control: a custody alarm
      result: revealed
      evidence: [custody.alarm/v1]
      within_seconds: 1
  - id: gateway-call
    title: The granted call is answered, and logged
    action: gateway_call
    actor: user
    after: [granted-but-expected-stopped]
    with: {capability: tier}
    expect:
      control: every gateway call is logged
      result: revealed
      evidence: [gateway.call/v1]
  - id: clock-not-served
    title: Let time pass, on a deployment without a staging clock
    action: advance_clock
    actor: user
    needs: [{feature: a staging clock, path: /staging/clock}]
    with: {by: 73h}
    expect:
      control: the stockpiling alarm
      result: revealed
      evidence: [custody.alarm/v1]
  - id: break-glass
    title: Break-glass, as a setup step
    action: break_glass
    actor: commander
    with: {capability: emergency}
    expect: {result: none}
  - id: second-break-glass
    title: Break-glass again, refused
    action: break_glass
    actor: commander
    after: [break-glass]
    with: {capability: emergency}
    expect:
      control: one open break-glass grant
      result: stopped
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("drills")
    with demo_deployment(folder / "demo", constitution=weakened_constitution(folder)) as d:
        yield d


@pytest.fixture(scope="module")
def card(demo: Demo) -> Scorecard:
    seen: list[tuple[str, str | None]] = []

    def progress(step: object, result: StepResult | None) -> None:
        seen.append((getattr(step, "id", ""), result.outcome if result else None))

    with demo.credentials() as credentials, Target(demo.url) as target:
        scored = run_drill(read_scenario(JUDGING), target, credentials, progress=progress)
    # Each step is announced, then scored, in order.
    ids = [s.id for s in read_scenario(JUDGING).steps]
    assert [s for s, _ in seen] == [i for i in ids for _ in (0, 1)]
    return scored


def _step(card: Scorecard, step: str) -> StepResult:
    return next(s for s in card.steps if s.step == step)


def test_steps_that_cannot_run_are_not_runnable_with_the_reason(card: Scorecard) -> None:
    assert _step(card, "not-built").outcome == "not runnable"
    assert "the frobnicator (issue 999) has not landed" in _step(card, "not-built").why
    needs = _step(card, "needs-a-path")
    assert needs.outcome == "not runnable"
    assert needs.why == (
        "needs the frobnicator (issue 999): this deployment does not serve /frobnicate"
    )
    assert _step(card, "after-not-runnable").outcome == "not runnable"
    assert "needs step needs-a-path" in _step(card, "after-not-runnable").why
    # The staging clock is off by default: its route is not even served.
    clock = _step(card, "clock-not-served")
    assert clock.outcome == "not runnable"
    assert clock.why == "needs a staging clock: this deployment does not serve /staging/clock"
    ghost = _step(card, "nobody-to-play")
    assert ghost.outcome == "not runnable" and ghost.actor is None
    assert "role no-such-role" in ghost.why


def test_a_step_expected_stopped_that_took_effect_is_missed(card: Scorecard) -> None:
    missed = _step(card, "granted-but-expected-stopped")
    assert missed.outcome == "MISSED"
    assert missed.why.startswith("it took effect: grant ")
    assert missed.actor == "alice@lab"  # the demo's one cleared researcher


def test_revealed_needs_a_proven_entry_of_the_named_type(card: Scorecard, demo: Demo) -> None:
    revealed = _step(card, "revealed-by-its-grant-entry")
    assert revealed.outcome == "revealed", revealed.why
    assert len(revealed.log_indices) == 1 and revealed.seconds is not None
    with Target(demo.url) as target:
        entry = next(target.entries(revealed.log_indices[0], revealed.log_indices[0] + 1))
        assert entry.type == "authority.grant/v1"
        assert target.prove(entry) is None
    nothing = _step(card, "revealed-by-nothing")
    assert nothing.outcome == "MISSED"
    assert nothing.why.startswith("not revealed: no custody.alarm/v1 entry names it")


def test_setup_steps_are_done_and_a_refusal_is_stopped(card: Scorecard) -> None:
    assert _step(card, "break-glass").outcome == "done"
    second = _step(card, "second-break-glass")
    assert second.outcome == "stopped"
    assert "already has an open break-glass grant" in second.why


def test_a_gateway_call_through_the_openai_client_is_revealed_by_its_entry(
    card: Scorecard,
) -> None:
    call = _step(card, "gateway-call")
    assert call.outcome == "revealed", call.why
    assert call.log_indices


def test_the_scorecard_fails_and_says_what_the_deployment_was(card: Scorecard) -> None:
    assert card.verdict == "FAILED: 1 stopped, 2 revealed, 2 MISSED, 5 not runnable"
    assert [s.actor for s in card.steps if s.step == "second-break-glass"] == ["carol@lab"]
    assert card.constitution_version == 1 and not card.log_key_pinned
    assert card.log_key.startswith("custodes.local/log+")


PINNED = """\
id: pinned
title: A call proven with the pinned key
capabilities:
  tier: {protected: true, approvals: true, served: true}
actors:
  user: {role: researcher, may_request: tier, needs: signing+api}
  lab-approver: {organisation_kind: developer, may_approve: tier}
  overseer: {organisation_kind: overseer, may_approve: tier}
steps:
  - id: granted
    title: The user is granted the tier (each run its own grant, revoked when it is scored)
    action: request_grant
    actor: user
    with: {capability: tier, approvers: [lab-approver, overseer]}
    expect: {result: none}
  - id: call
    title: A call
    action: gateway_call
    actor: user
    with: {capability: tier}
    expect:
      control: logged
      result: revealed
      evidence: [gateway.call/v1]
      within_seconds: 5
"""


def test_a_pinned_log_key_that_is_not_the_logs_proves_nothing(card: Scorecard, demo: Demo) -> None:
    with pytest.raises(DrillError, match="the log's key is not a verifier key"):
        Target(demo.url, log_key="not a key").verifier  # noqa: B018 - the property checks it
    wrong = NoteSigner.generate("custodes.local/log").verifier.to_key()
    with demo.credentials() as credentials, Target(demo.url, log_key=wrong) as target:
        scored = run_drill(read_scenario(PINNED), target, credentials)
    assert scored.log_key_pinned and scored.log_key == wrong
    call = scored.steps[1]
    assert call.outcome == "MISSED"
    assert "the receipt does not verify" in call.why
    right = demo.log_signer.verifier.to_key()
    with demo.credentials() as credentials, Target(demo.url, log_key=right) as target:
        proven = run_drill(read_scenario(PINNED), target, credentials)
    assert proven.steps[1].outcome == "revealed", proven.steps[1].why


def test_an_unreachable_deployment_is_one_clear_error(tmp_path: Path) -> None:
    with Target("http://127.0.0.1:9") as target, pytest.raises(DrillError) as caught:
        run_drill(read_scenario(JUDGING), target, Credentials())
    assert "cannot reach the deployment at http://127.0.0.1:9" in caught.value.diagnostics()


def test_against_a_weakened_constitution_the_drill_reports_missed(
    card: Scorecard, demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Last in this module: the drill amends the demo's constitution for real. ``card`` is
    # asked for so the judging scenario has run before, on the constitution as it was.
    data = ["--data-dir", str(demo.data)]
    code, out, err = run_cli(
        [*data, "drill", "run", "quiet-amendment-chain", "--server", demo.url, "--issue-keys",
         "--report", str(tmp_path / "card.md")],
        capsys,
    )  # fmt: skip
    assert code == 1, out + err
    md = (tmp_path / "card.md").read_text()
    assert "- **Verdict**: FAILED:" in md
    rows = {r.split(" | ")[1]: r for r in md.splitlines() if r.startswith("| ") and "(`" in r}
    missed = [step for step, row in rows.items() if "| **MISSED** |" in row]
    assert any("`weaker-sibling`" in step for step in missed), md
    sibling = next(row for step, row in rows.items() if "`weaker-sibling`" in step)
    assert "it took effect: version " in sibling and " adopted (request " in sibling
    # The first step, the insider made sole signer, went through too: that is the weakening.
    sole = next(row for step, row in rows.items() if "`sole-signer`" in step)
    assert "| **MISSED** |" in sole and "it took effect: version 2 adopted" in sole
    assert "FAILED" in out
