"""Signed delegations: a director's own word that they direct a workload, for a while.

A workload the constitution lets several principals direct (``directed_by`` with more than one)
could otherwise name any of them in the ``x-custodes-on-behalf-of`` header, and so count its
calls to whichever director's share is lowest (a person above a gating share laundering use
through a colleague). At such a step the named director must hold a delegation in force: the
director signs, with their own Ed25519 key (the key the constitution lists for them),
``custodes-usage-delegation/v1\\n`` followed by the RFC 8785 canonical JSON of
``{"director", "until", "workload"}``; ``until`` is an RFC 3339 UTC time at most
:data:`MAX_DELEGATION` ahead. A step with one allowed director needs none: the constitution
fixes it. With no header and exactly one director in force, that director is taken.
"""

from __future__ import annotations

from datetime import timedelta

import rfc8785

from custodes.constitution import Constitution

__all__ = ["DELEGATION_DOMAIN", "MAX_DELEGATION", "delegation_message", "delegation_refusal"]

DELEGATION_DOMAIN = "custodes-usage-delegation/v1"
MAX_DELEGATION = timedelta(days=30)
"""The longest a delegation holds: direction is re-stated at least monthly."""


def delegation_message(workload: str, director: str, until: str) -> bytes:
    """What ``director`` signs to direct ``workload`` until ``until``."""
    body = {"director": director, "until": until, "workload": workload}
    return f"{DELEGATION_DOMAIN}\n".encode() + rfc8785.dumps(body)


def delegation_refusal(c: Constitution, workload: str, director: str) -> str | None:
    """Why ``director`` may not sign a delegation of ``workload`` (``None``: they may)."""
    w = c.principals_by_id.get(workload)
    if w is None:
        return f"unknown principal {workload!r}"
    if w.kind != "workload":
        return f"{workload} is a person: only workloads are directed"
    if director not in w.directed_by:
        return (
            f"{director} may not direct {workload}: the constitution allows "
            f"{', '.join(w.directed_by) or 'nobody'} (principals[{workload}].directed_by)"
        )
    d = c.principals_by_id[director]
    if d.public_key is None:
        return f"{director} has no key in the constitution to sign with"
    return None
