"""The attacker actions a scenario step may name, and what each one observed.

Each action goes through a real interface of the deployment (the authority's and the
constitution's HTTP API with requests signed by the actor's own key, the gateway through the
``openai`` client, the witnesses' C2SP tlog-witness endpoint) and reports what happened in an
:class:`Observation`. The runner, not the action, judges it against the step's expectation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from custodes.constitution import CompiledPolicies, Constitution
from custodes.drills._cast import Cast
from custodes.drills._credentials import Credentials
from custodes.drills._scenario import Step
from custodes.drills._target import Target
from custodes.errors import DrillError

__all__ = [
    "ACTIONS",
    "Action",
    "ActionContext",
    "NotRunnable",
    "Observation",
    "Params",
    "action",
    "check_steps",
]


class NotRunnable(Exception):
    """The step cannot run here: a feature, an actor, a credential or an earlier step is
    missing. Never a pass."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Observation:
    """What an action saw.

    Attributes:
        took_effect: the attacker's action did what the attacker wanted.
        account: what happened, in the deployment's own words where it gave any.
        ids: ids the action holds (request, grant, call ids) that the entries recording it
            name; the runner finds the step's evidence by them.
        indices: log indices the deployment's answers pointed at (``x-custodes-log-index``).
        outside: evidence held outside the log (a witness's stored equivocation evidence),
            already checked by the action.
        outputs: values later steps use (``grant``, ``request``...).
        flaw: the control acted, but not as it must (a detection routed to the attacker's
            own organisation): the step is MISSED whatever else it shows.
    """

    took_effect: bool
    account: str
    ids: tuple[str, ...] = ()
    indices: tuple[int, ...] = ()
    outside: tuple[str, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)
    flaw: str | None = None


@dataclass
class ActionContext:
    """What an action may use: the deployment, the constitution in force, the cast, the keys,
    and the outputs of earlier steps."""

    target: Target
    constitution: Constitution
    compiled: CompiledPolicies
    text: str
    cast: Cast
    credentials: Credentials
    outputs: dict[str, Mapping[str, Any]]
    made: list[tuple[str, str]] = field(default_factory=list)
    """``(request id, requester)`` of each request and proposal the drill made: the ones
    still pending at the end are withdrawn by their requesters."""
    granted: list[tuple[str, str]] = field(default_factory=list)
    """``(grant id, holder)`` of each grant the drill obtained: the ones still active at the
    end are revoked by their holders, so a later drill starts from no grant."""

    def made_request(self, record: Mapping[str, Any], requester: str) -> None:
        """Remember a request (or amendment proposal) the drill made, to withdraw it at the
        end if it is still pending."""
        self.made.append((str(record["id"]), requester))

    def made_grant(self, grant_id: str, holder: str) -> None:
        """Remember a grant the drill obtained, to revoke it at the end if still active."""
        self.granted.append((grant_id, holder))

    def principal(self, actor: str | None, step: Step) -> str:
        """The principal playing ``actor``.

        Raises:
            NotRunnable: the step names no actor, or nobody could play it.
        """
        if actor is None:
            raise NotRunnable(f"step {step.id} names no actor")
        who = self.cast.actor(actor)
        if who is None:
            raise NotRunnable(f"actor {actor}: {self.cast.why_not.get(actor, 'not cast')}")
        return who

    def capability(self, name: str) -> str:
        """The capability tier the scenario calls ``name``.

        Raises:
            NotRunnable: no tier of the constitution fits.
        """
        cap = self.cast.capabilities.get(name)
        if cap is None:
            raise NotRunnable(self.cast.why_not.get(f"capability:{name}", f"no {name!r}"))
        return cap

    def output(self, step_id: str, name: str) -> Any:
        """Output ``name`` of the earlier step ``step_id``.

        Raises:
            NotRunnable: that step did not produce it.
        """
        value = self.outputs.get(step_id, {}).get(name)
        if value is None:
            raise NotRunnable(f"needs {name!r} from step {step_id}, which did not produce it")
        return value


Run = Callable[[ActionContext, Step, Any], Observation]


@dataclass(frozen=True)
class Action:
    """A registered action: its parameters' model (the step's ``with:``) and its code."""

    name: str
    params: type[BaseModel]
    run: Run


ACTIONS: dict[str, Action] = {}


def action(name: str, params: type[BaseModel]) -> Callable[[Run], Run]:
    """Register an action under ``name`` (a step's ``action:``), taking ``params``."""

    def register(fn: Run) -> Run:
        if name in ACTIONS:
            raise DrillError(f"two drill actions are called {name!r}")
        ACTIONS[name] = Action(name, params, fn)
        return fn

    return register


class Params(BaseModel):
    """Base of the actions' parameter models: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_steps(steps: Sequence[Step], *, name: str) -> list[Any]:
    """Each step's parameters, validated against its action's model before anything runs.

    Raises:
        DrillError: a step names an unknown action or gives it bad parameters.
    """
    out: list[BaseModel | None] = []
    problems: list[str] = []
    for step in steps:
        found = ACTIONS.get(step.action)
        if found is None:
            problems.append(
                f"step {step.id}: unknown action {step.action!r} "
                f"(one of {', '.join(sorted(ACTIONS))})"
            )
            out.append(None)
            continue
        try:
            out.append(found.params.model_validate(step.with_))
        except ValidationError as exc:
            for err in exc.errors()[:5]:
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"step {step.id} (with.{where}): {err['msg']}")
            out.append(None)
    if problems:
        raise DrillError(
            f"{name}: not a valid drill scenario:\n  " + "\n  ".join(problems),
            hint="see docs/drills.md for each action's parameters",
        )
    return out
