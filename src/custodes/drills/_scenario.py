"""A drill scenario: who the actors are (by role, from the constitution in force), and the
attacker's steps, each with the control expected to stop or reveal it.

Scenarios are data (YAML, read by :func:`read_scenario`); the actions a step may name are the
attacker actions of :mod:`custodes.drills._actions`, each through a real interface. See
docs/drills.md for the format.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custodes.drills._yaml import MAX_SCENARIO_BYTES, load_located
from custodes.errors import DrillError

__all__ = [
    "ActorSpec",
    "CapabilitySpec",
    "Expect",
    "Need",
    "Scenario",
    "Step",
    "builtin_scenarios",
    "read_scenario",
    "read_scenario_file",
]

_ID = r"^[a-z][a-z0-9-]{0,63}$"
Name = Annotated[str, Field(pattern=_ID)]
Text = Annotated[str, Field(max_length=2000)]

MAX_STEPS = 100
MAX_ACTORS = 20

Credential = Literal["signing", "api", "signing+api", "log-key", "none"]
Result = Literal["stopped", "revealed", "none"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActorSpec(_Frozen):
    """Who plays a part, chosen from the constitution in force, never named.

    The first principal in the constitution's order that matches every given field and for
    which the drill holds the credentials named by ``needs`` plays it; two actors are never the
    same person unless ``same_as`` says so.
    """

    role: Name | None = None
    organisation_kind: Literal["developer", "overseer", "partner", "vendor"] | None = None
    kind: Literal["person", "workload"] | None = None
    admitted: bool | None = None
    other_organisation_than: list[Name] = Field(default_factory=list, max_length=MAX_ACTORS)
    same_organisation_as: Name | None = None
    may_request: Name | None = None
    """A capability of the scenario's ``capabilities``: the actor may request (or use) it."""
    may_approve: Name | None = None
    """A capability: the actor holds an approver role of one of its access rules."""
    may_break_glass: Name | None = None
    """A capability: a break-glass rule of the constitution lets the actor take it."""
    amendment_signer: bool | None = None
    needs: Credential = "signing"
    description: Text = ""


class CapabilitySpec(_Frozen):
    """A capability tier chosen from the constitution in force: the first in its order that
    matches every given field."""

    protected: bool | None = None
    """Listed in the constitution's ``coalition.protected``."""
    served: bool | None = None
    """Has models the gateway serves under it."""
    break_glass: bool | None = None
    """Some break-glass rule reaches it."""
    approvals: bool | None = None
    """Some access rule to it needs approvals."""
    action: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] | None = None
    """One of the actions it grants (``chat``, ``escrow-read``, ``training-write``...)."""
    description: Text = ""


class Need(_Frozen):
    """A feature a step exercises: an API path the deployment must serve for the step to run."""

    feature: Annotated[str, Field(min_length=1, max_length=200)]
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_/{}.-]{0,200}$")]
    issue: int | None = Field(default=None, ge=1, le=100000)


class Expect(_Frozen):
    """The control expected to stop or reveal a step, and what proves it.

    ``result``: ``stopped`` (the action must not take effect), ``revealed`` (it may, but a log
    entry of one of ``evidence`` must record it), or ``none`` (a setup step: it must take effect
    and proves nothing). ``evidence`` lists log entry types; with ``stopped`` they are the
    entries that record the refusal, required when given.
    """

    control: Annotated[str, Field(min_length=1, max_length=300)] = "none"
    result: Result
    evidence: list[Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)+/v[0-9]+$")]] = Field(
        default_factory=list, max_length=20
    )
    outside_evidence: bool = False
    """Evidence held outside the log is required too (a witness's equivocation evidence)."""
    within_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long the evidence may take to appear in the log."""

    @model_validator(mode="after")
    def _revealed_needs_evidence(self) -> Expect:
        if self.result == "revealed" and not (self.evidence or self.outside_evidence):
            raise ValueError(
                "a step expected to be revealed names the evidence that does "
                "(log entry types, or outside_evidence)"
            )
        if self.result != "none" and self.control == "none":
            raise ValueError("a step expected to be stopped or revealed names its control")
        return self


class Step(_Frozen):
    """One attacker action (or a setup action), with its expectation."""

    id: Name
    title: Annotated[str, Field(min_length=1, max_length=300)]
    action: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    actor: Name | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    expect: Expect
    needs: list[Need] = Field(default_factory=list, max_length=10)
    after: list[Name] = Field(default_factory=list, max_length=MAX_STEPS)
    """Earlier steps this one builds on: if one of them could not run (or a setup step among
    them did not succeed), this one is not runnable."""


class Scenario(_Frozen):
    """A drill: actors and steps."""

    id: Name
    title: Annotated[str, Field(min_length=1, max_length=300)]
    order: int = Field(default=100, ge=0, le=10000)
    summary: Text = ""
    capabilities: dict[Name, CapabilitySpec] = Field(default_factory=dict, max_length=20)
    actors: dict[Name, ActorSpec] = Field(default_factory=dict, max_length=MAX_ACTORS)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        """Every name a scenario uses is defined: step ids once, a step's actor among the
        actors, ``after`` naming earlier steps only (so steps run in order, with no cycle),
        and each actor's organisation and capability references defined.

        Raises:
            _At: the first that is not (pydantic reports it with its path).
        """
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.id in seen:
                raise _At(("steps", i, "id"), f"step id {step.id!r} is used twice")
            if step.actor is not None and step.actor not in self.actors:
                raise _At(
                    ("steps", i, "actor"),
                    f"actor {step.actor!r} is not one of the scenario's actors "
                    f"({', '.join(sorted(self.actors)) or 'none'})",
                )
            for j, before in enumerate(step.after):
                if before not in seen:
                    raise _At(
                        ("steps", i, "after", j), f"step {before!r} does not come before this one"
                    )
            seen.add(step.id)
        for name, actor in self.actors.items():
            for other in [*actor.other_organisation_than, actor.same_organisation_as]:
                if other is not None and other not in self.actors:
                    raise _At(("actors", name), f"actor {other!r} is not defined")
            for cap in (actor.may_request, actor.may_approve, actor.may_break_glass):
                if cap is not None and cap not in self.capabilities:
                    raise _At(
                        ("actors", name),
                        f"capability {cap!r} is not one of the scenario's capabilities "
                        f"({', '.join(sorted(self.capabilities)) or 'none'})",
                    )
        return self


class _At(ValueError):
    """A reference problem at a path of the document."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


_SCENARIO_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}\.yaml$")


def read_scenario(text: str, *, name: str = "scenario") -> Scenario:
    """Read a scenario from YAML text.

    Raises:
        DrillError: the text is not a valid scenario; the message names the line and field.
    """
    located = load_located(text, name=name)
    try:
        return Scenario.model_validate(located.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            loc = tuple(err["loc"])
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, _At):
                loc, message = cause.path, str(cause)
            elif err["type"] == "string_pattern_mismatch":
                # The pattern itself is not shown: people read the rule, not the regex.
                message = f"{str(err['input'])[:60]!r} is not of the form this field takes: " + (
                    "lowercase letters, digits and '-', starting with a letter"
                    if err.get("ctx", {}).get("pattern") == _ID
                    else "see docs/drills.md"
                )
            else:
                message = err["msg"].removeprefix("Value error, ")
            line = located.line(loc)
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"line {line} ({field}): {message}" if line else f"{field}: {message}")
        more = len(exc.errors()) - len(problems)
        raise DrillError(
            f"{name}: not a valid drill scenario:\n  "
            + "\n  ".join(problems)
            + (f"\n  ... and {more} more" if more > 0 else ""),
            hint="see docs/drills.md for the scenario format",
        ) from None


def read_scenario_file(path: Path) -> Scenario:
    """Read a scenario file.

    Raises:
        DrillError: it cannot be read or is not a valid scenario.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise DrillError(f"cannot read the scenario {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DrillError(f"{path}: the scenario is not UTF-8 text") from None
    return read_scenario(text, name=str(path))


def builtin_scenarios() -> list[Scenario]:
    """The drills shipped with custodes, in their order.

    Raises:
        DrillError: a shipped scenario is invalid (a packaging defect, caught by the tests).
    """
    folder = resources.files("custodes.drills") / "scenarios"
    found = []
    for item in folder.iterdir():
        if _SCENARIO_NAME.match(item.name):
            found.append(read_scenario(item.read_text(encoding="utf-8"), name=item.name))
    return sorted(found, key=lambda s: (s.order, s.id))
