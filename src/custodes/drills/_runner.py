"""Run a drill against a deployment: cast the actors from the constitution in force, run each
step through the real interfaces, and judge what happened against the step's expectation.

Judging is the runner's, never the action's: a step expected to be stopped that took effect is
MISSED; a step expected to be revealed is revealed only by log entries of the types it names,
found by the ids the action holds (or the actor, or the index the deployment answered with) and
each proven by a verified receipt; a step that cannot run (a missing feature, actor, credential
or earlier step) is "not runnable", never passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from custodes.constitution import compile_policies, read_constitution
from custodes.drills import (  # noqa: F401 - importing registers the actions
    _act_audit,
    _act_authority,
    _act_clock,
    _act_custody,
    _act_gateway,
    _act_provenance,
    _act_witness,
)
from custodes.drills._act_authority import tidy_up
from custodes.drills._actions import ACTIONS, ActionContext, NotRunnable, Observation, check_steps
from custodes.drills._cast import cast_scenario
from custodes.drills._credentials import Credentials
from custodes.drills._scenario import Scenario, Step
from custodes.drills._scorecard import Outcome, Scorecard, StepResult
from custodes.drills._target import LogEntry, Target
from custodes.errors import DrillError, Error

__all__ = ["Progress", "run_drill"]

Progress = Callable[[Step, StepResult | None], None]
"""Called before each step (result None) and after it (with its result)."""


def run_drill(
    scenario: Scenario,
    target: Target,
    credentials: Credentials,
    *,
    progress: Progress | None = None,
    tidy: bool = True,
) -> Scorecard:
    """Run ``scenario`` against ``target`` with ``credentials``.

    With ``tidy``, once the steps are judged, every request and proposal the drill made that
    is still pending is withdrawn by its requester, and every grant it obtained that is still
    active is revoked by its holder (each logged as any other); the scorecard's ``tidied``
    says which.

    Raises:
        DrillError: the scenario's steps are invalid, or the deployment cannot be reached or
            serves no constitution.
    """
    params = check_steps(scenario.steps, name=scenario.id)
    started, t0 = datetime.now(UTC), time.monotonic()
    target.read_clock()  # a staging clock may run ahead: requests are dated by it
    shown = target.constitution()
    try:
        constitution = read_constitution(shown["text"], name="the constitution in force")
    except Error as exc:
        raise DrillError(f"the deployment's constitution does not read: {exc.message}") from None
    compiled = compile_policies(constitution)
    cast = cast_scenario(scenario, constitution, compiled, credentials)
    ctx = ActionContext(
        target=target,
        constitution=constitution,
        compiled=compiled,
        text=shown["text"],
        cast=cast,
        credentials=credentials,
        outputs={},
    )
    results: dict[str, StepResult] = {}
    for step, p in zip(scenario.steps, params, strict=True):
        if progress:
            progress(step, None)
        _refresh(ctx)
        result = _run_step(ctx, step, p, results)
        results[step.id] = result
        if progress:
            progress(step, result)
    seconds = time.monotonic() - t0
    tidied = tidy_up(ctx, reason=f"drill {scenario.id}: tidy up") if tidy else ()
    return Scorecard(
        drill=scenario.id,
        title=scenario.title,
        server=target.base_url,
        constitution_version=constitution.version,
        constitution_digest=constitution.digest,
        log_key=target.verifier.to_key(),
        log_key_pinned=target.log_key_pinned,
        started=started,
        seconds=seconds,
        steps=tuple(results.values()),
        tidied=tidied,
    )


def _refresh(ctx: ActionContext) -> None:
    """The constitution in force now: an earlier step (or anyone else) may have amended it, and
    a request must name the version in force."""
    shown = ctx.target.constitution()
    if shown["text"] != ctx.text:
        try:
            ctx.constitution = read_constitution(shown["text"], name="the constitution in force")
        except Error as exc:
            raise DrillError(
                f"the deployment's constitution does not read: {exc.message}"
            ) from None
        ctx.compiled = compile_policies(ctx.constitution)
        ctx.text = shown["text"]


def _line(step: Step, actor: str | None, outcome: Outcome, why: str, **kw: Any) -> StepResult:
    return StepResult(
        step=step.id,
        title=step.title,
        actor=actor,
        control=step.expect.control,
        expected=step.expect.result,
        outcome=outcome,
        why=why,
        **kw,
    )


def _run_step(
    ctx: ActionContext, step: Step, params: Any, results: Mapping[str, StepResult]
) -> StepResult:
    """Run one step: not runnable when a step it comes after was not done or the deployment
    does not serve what it needs; otherwise its action runs against the live deployment and
    what it saw is judged."""
    actor = ctx.cast.actor(step.actor) if step.actor else None
    for before in step.after:
        if results[before].outcome == "not runnable" or (
            results[before].expected == "none" and results[before].outcome != "done"
        ):
            return _line(step, actor, "not runnable", f"needs step {before}, which was not done")
    for need in step.needs:
        if not ctx.target.serves(need.path):
            issue = f" (issue {need.issue})" if need.issue else ""
            return _line(
                step,
                actor,
                "not runnable",
                f"needs {need.feature}{issue}: this deployment does not serve {need.path}",
            )
    size_before = ctx.target.log_size()
    t0 = time.monotonic()
    try:
        seen = ACTIONS[step.action].run(ctx, step, params)
    except NotRunnable as exc:
        return _line(step, actor, "not runnable", exc.reason)
    answered = time.monotonic() - t0
    ctx.outputs[step.id] = seen.outputs
    return _judge(ctx, step, actor, seen, size_before, t0, answered)


def _judge(
    ctx: ActionContext,
    step: Step,
    actor: str | None,
    seen: Observation,
    size_before: int,
    t0: float,
    answered: float,
) -> StepResult:
    """The outcome of a step from what its action saw and the log entries since it began.

    A setup step (expected ``none``) is done or not runnable. An attack is ``stopped`` when it
    did not take effect and ``revealed`` when it did, provided the evidence expected is found
    (log entries naming it, and evidence kept outside the log where that is expected); it is
    ``MISSED`` when it took effect where it should have been stopped, when the action found a
    flaw, or when the evidence is missing. Its time is how long the control took to answer or
    the evidence took to appear.
    """
    expect = step.expect
    if expect.result == "none":
        if seen.took_effect:
            return _line(step, actor, "done", seen.account)
        return _line(step, actor, "not runnable", f"the setup did not succeed: {seen.account}")
    if seen.flaw is not None:
        return _line(step, actor, "MISSED", f"{seen.flaw}: {seen.account}", outside=seen.outside)
    if expect.result == "stopped" and seen.took_effect:
        return _line(step, actor, "MISSED", f"it took effect: {seen.account}", outside=seen.outside)
    indices: tuple[int, ...] = ()
    problems: list[str] = []
    seconds: float | None = answered if not seen.took_effect else None
    if expect.evidence:
        found, problems, at = _find_evidence(ctx, step, actor, seen, size_before)
        indices = tuple(e.index for e in found)
        if found:
            seconds = max(seconds or 0.0, at - t0) if seconds is not None else at - t0
    if expect.outside_evidence and not seen.outside:
        return _line(
            step,
            actor,
            "MISSED",
            f"no evidence was kept outside the log: {seen.account}",
            log_indices=indices,
        )
    if expect.evidence and not indices:
        what = "refused, but not recorded" if not seen.took_effect else "not revealed"
        detail = "; ".join(problems) or f"no {' or '.join(expect.evidence)} entry names it"
        return _line(step, actor, "MISSED", f"{what}: {detail} ({seen.account})")
    outcome: Outcome = "stopped" if not seen.took_effect else "revealed"
    return _line(
        step,
        actor,
        outcome,
        seen.account,
        seconds=seconds,
        log_indices=indices,
        outside=seen.outside,
    )


def _find_evidence(
    ctx: ActionContext,
    step: Step,
    actor: str | None,
    seen: Observation,
    size_before: int,
) -> tuple[list[LogEntry], list[str], float]:
    """Entries since ``size_before`` of the step's evidence types that name what it did,
    each proven; waits up to the step's ``within_seconds`` for the first."""
    deadline = time.monotonic() + step.expect.within_seconds
    types = set(step.expect.evidence)
    delay = 0.05
    while True:
        candidates = [
            e
            for e in ctx.target.entries(size_before)
            if e.type in types
            and (
                e.index in seen.indices
                or any(e.mentions(i) for i in seen.ids)
                or (actor is not None and e.principal == actor)
            )
        ]
        at = time.monotonic()
        if candidates or at > deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    proven, problems = [], []
    for entry in candidates:
        why = ctx.target.prove(entry)
        if why is None:
            proven.append(entry)
        else:
            problems.append(f"entry {entry.index}: {why}")
    return proven, problems, at
