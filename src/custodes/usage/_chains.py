"""On-behalf-of chains: whom a workload's call is made for, as the constitution allows it.

A workload principal (an AI agent, a service) names in the constitution who may direct it
(``principals[].directed_by``: persons, or workloads directed in turn); the reader refuses
unknown directors, cycles and chains that end at no person. A call's chain runs from the
calling principal to the person at its end, whose use the call counts as. When a step has one
allowed director it is taken; when it has several, the caller names them, nearest first, in
the ``x-custodes-on-behalf-of`` header, and each named director must be allowed and, where the
gateway asks (``delegated``), hold a signed delegation in force (custodes.usage._delegations):
a header alone would let a workload count its calls to whichever director it likes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from custodes.constitution import Constitution
from custodes.errors import Denial, PolicyDenied

__all__ = ["MAX_CHAIN", "Chain", "resolve_chain"]

MAX_CHAIN = 32
"""The longest chain of direction followed (and the most directors a header may name)."""


@dataclass(frozen=True)
class Chain:
    """The calling principal first, the directing person's principal last."""

    principals: tuple[str, ...]
    person: str
    organisation: str


def _denied(message: str, missing: str) -> PolicyDenied:
    return PolicyDenied(message, reasons=[Denial("usage.on_behalf_of", missing)])


def resolve_chain(
    c: Constitution,
    principal_id: str,
    directors: str | None = None,
    delegated: Callable[[str, str], bool] | None = None,
) -> Chain:
    """The chain from ``principal_id`` to the person who directs it.

    Args:
        c: the constitution in force.
        principal_id: the calling principal.
        directors: the ``x-custodes-on-behalf-of`` header: comma-separated principal ids,
            nearest director first; needed where a workload may be directed by several.
        delegated: ``(workload, director)`` -> whether the director's signed delegation of
            the workload is in force; where a workload may be directed by several, only such
            a director counts (``None``: the header is taken as it is).

    Raises:
        PolicyDenied: the principal or a named director is unknown, a director is not one the
            constitution allows, a person names directors, the chain is ambiguous and no
            director was named, a named director holds no delegation in force, or it is
            longer than :data:`MAX_CHAIN`.
    """
    by_id = c.principals_by_id
    named = [d.strip() for d in directors.split(",")] if directors is not None else []
    if directors is not None and (not all(named) or len(named) > MAX_CHAIN):
        raise _denied(
            f"the x-custodes-on-behalf-of header {directors[:200]!r} is malformed",
            f"at most {MAX_CHAIN} comma-separated principal ids, nearest director first",
        )
    p = by_id.get(principal_id)
    if p is None:
        raise _denied(
            f"principal {principal_id!r} is not in constitution version {c.version}",
            "a principal the constitution names",
        )
    chain = [p.id]
    seen = {p.id}
    while p.kind == "workload":
        if not p.directed_by:
            raise _denied(
                f"workload {p.id!r} has no directing person in the constitution, so its "
                "use cannot be counted to anyone",
                f"principals[{p.id}].directed_by",
            )
        several = len(p.directed_by) > 1
        in_force = (
            [d for d in p.directed_by if delegated(p.id, d)]
            if several and delegated is not None
            else list(p.directed_by)
        )
        if named:
            nxt = named.pop(0)
            if nxt not in p.directed_by:
                raise _denied(
                    f"{nxt!r} may not direct workload {p.id!r}"
                    if nxt in by_id
                    else f"unknown principal {nxt!r} named as the director of {p.id!r}",
                    f"one of {', '.join(p.directed_by)} (principals[{p.id}].directed_by)",
                )
            if nxt not in in_force:
                raise _denied(
                    f"{nxt} has no delegation of {p.id} in force: a workload several may direct "
                    "counts as the use of a director who signed that they direct it",
                    f"a delegation signed by {nxt} (POST /usage/delegations; docs/usage.md)"
                    + (f", or one of {', '.join(in_force)}" if in_force else ""),
                )
        elif len(in_force) == 1:
            nxt = in_force[0]
        else:
            raise _denied(
                f"workload {p.id!r} may be directed by {', '.join(p.directed_by)}: name the "
                "director in the x-custodes-on-behalf-of header"
                + ("" if delegated is None else " (one with a delegation in force)"),
                "x-custodes-on-behalf-of: one of " + ", ".join(in_force or p.directed_by),
            )
        if nxt in seen or len(chain) >= MAX_CHAIN:
            # The reader refuses cycles; a constitution built otherwise still must not loop.
            raise _denied(
                f"the chain of direction {' -> '.join([*chain, nxt])} does not end at a person",
                "a chain ending at a person",
            )
        seen.add(nxt)
        chain.append(nxt)
        p = by_id[nxt]
    if named:
        raise _denied(
            f"{chain[-1]!r} is a person and is directed by nobody, but the header names "
            f"{', '.join(named)} after it",
            "directors up to the first person only",
        )
    return Chain(tuple(chain), p.person_id, p.organisation)
