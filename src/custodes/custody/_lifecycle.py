"""The CERT/CC Vultron case model: report management (RM), embargo management (EM), case flags.

The transition tables follow the Vultron process models (CERTCC/Vultron,
``docs/process_models/``): RM is a DFA over Received, Valid, Invalid, Accepted, Deferred,
Closed (the Start state is implicit in registration); EM over None, Proposed, Active, Revise,
eXited. The case state is six flags that only ever go from unset to set (Vultron's lower-case
to upper-case ``vfdpxa`` -> ``VFDPXA``), with the model's order constraints: a fix can only be
ready once the vendor is aware, and deployed once it is ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal, get_args

from custodes.custody._errors import TransitionError
from custodes.errors import InputError

__all__ = [
    "CASE_FLAGS",
    "EM_STATES",
    "EM_TRANSITIONS",
    "RM_STATES",
    "RM_TRANSITIONS",
    "CaseFlag",
    "EmState",
    "RmState",
    "check_em",
    "check_flag",
    "check_rm",
]

RmState = Literal["received", "valid", "invalid", "accepted", "deferred", "closed"]
EmState = Literal["none", "proposed", "active", "revise", "exited"]
CaseFlag = Literal[
    "vendor-aware",
    "fix-ready",
    "fix-deployed",
    "public-aware",
    "exploit-public",
    "attacks-observed",
]

RM_STATES: tuple[str, ...] = get_args(RmState)
EM_STATES: tuple[str, ...] = get_args(EmState)
CASE_FLAGS: tuple[str, ...] = get_args(CaseFlag)

# Vultron RM DFA: R->{I,V} (validate/invalidate), I->{V,C} (revalidate, close), V->{A,D}
# (prioritise), A->{D,C}, D->{A,C}; Closed is final.
RM_TRANSITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "received": ("valid", "invalid"),
        "invalid": ("valid", "closed"),
        "valid": ("accepted", "deferred"),
        "accepted": ("deferred", "closed"),
        "deferred": ("accepted", "closed"),
        "closed": (),
    }
)

# Vultron EM DFA: N->P (propose), P->{N,A,P} (reject, accept, counter-propose), A->{R,X}
# (revise, terminate), R->{A,R,X} (accept or reject the revision, counter-propose, terminate);
# eXited is final.
EM_TRANSITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "none": ("proposed",),
        "proposed": ("none", "active", "proposed"),
        "active": ("revise", "exited"),
        "revise": ("active", "revise", "exited"),
        "exited": (),
    }
)

# A flag may be set only once its prerequisites are set (Vultron CS: F needs V, D needs F).
_FLAG_REQUIRES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "fix-ready": ("vendor-aware",),
        "fix-deployed": ("fix-ready",),
    }
)


def _check(machine: str, table: Mapping[str, tuple[str, ...]], current: str, target: str) -> None:
    """Refuse a move of ``machine`` from ``current`` to ``target`` that ``table`` (its
    Vultron transitions) does not allow.

    Raises:
        InputError: ``target`` is not a state of the machine.
        TransitionError: the move is not allowed from ``current``.
    """
    if target not in table:
        raise InputError(
            f"unknown {machine} state {target!r}",
            where=machine,
            expected="one of: " + ", ".join(table),
            actual=repr(target),
        )
    allowed = table[current]
    if target not in allowed:
        raise TransitionError(
            f"the Vultron {machine} model does not allow {current} -> {target}",
            machine=machine,
            current=current,
            requested=target,
            allowed=allowed,
        )


def check_rm(current: str, target: str) -> None:
    """Raise unless ``current -> target`` is an RM transition.

    Raises:
        InputError: ``target`` is not an RM state.
        TransitionError: the transition is not in the model.
    """
    _check("rm", RM_TRANSITIONS, current, target)


def check_em(current: str, target: str, *, flags: Iterable[str] = ()) -> None:
    """Raise unless ``current -> target`` is an EM transition.

    Vultron: participants SHALL NOT negotiate an embargo once the vulnerability or an exploit
    is public, so proposing or accepting one then is refused.

    Raises:
        InputError: ``target`` is not an EM state.
        TransitionError: the transition is not in the model or the case is already public.
    """
    _check("em", EM_TRANSITIONS, current, target)
    public = {"public-aware", "exploit-public"} & set(flags)
    if public and target in ("proposed", "active", "revise"):
        raise TransitionError(
            f"no embargo can be negotiated once the case is {', '.join(sorted(public))}",
            machine="em",
            current=current,
            requested=target,
            allowed=("exited",) if current in ("active", "revise") else (),
        )


def check_flag(flag: str, flags: Iterable[str]) -> None:
    """Raise unless ``flag`` may be set given the flags already set.

    Raises:
        InputError: not a case flag.
        TransitionError: already set, or its prerequisite is not.
    """
    have = set(flags)
    if flag not in CASE_FLAGS:
        raise InputError(
            f"unknown case flag {flag!r}",
            where="flag",
            expected="one of: " + ", ".join(CASE_FLAGS),
            actual=repr(flag),
        )
    if flag in have:
        raise TransitionError(
            f"case flag {flag} is already set (flags never unset)",
            machine="case",
            current=flag,
            requested=flag,
            allowed=(),
        )
    missing = [f for f in _FLAG_REQUIRES.get(flag, ()) if f not in have]
    if missing:
        raise TransitionError(
            f"case flag {flag} needs {', '.join(missing)} first",
            machine="case",
            current=",".join(sorted(have)) or "none",
            requested=flag,
            allowed=tuple(missing),
        )
