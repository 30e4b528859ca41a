"""The one check that a grant approves a registration (a training run or a promotion).

Both are approved the same way: a grant of the constitution's capability for them, bound to
the one resource they are (a run's plan digest, a promotion's tier and weights), given by
approvals beforehand, not revoked and in force at the moment that counts. Each grant is
spent by the one registration it approves; the spending is checked by the caller, which
knows its table.
"""

from __future__ import annotations

from datetime import datetime

from custodes.authority import Grant
from custodes.errors import NotFoundError, ProvenanceError
from custodes.provenance._model import RunApprovals

__all__ = ["approving_grant"]


def approving_grant(
    approvals: RunApprovals,
    grant_id: str,
    *,
    what: str,
    capability: str,
    resource: str,
    at: datetime,
    bound_to: str,
    when: str | None = None,
) -> Grant:
    """The grant ``grant_id``, checked to approve this ``what`` (``run`` or ``promotion``).

    Args:
        approvals: the authority the grant is read from.
        grant_id: the grant the registration names.
        what: what is registered, as messages name it.
        capability: the capability the constitution requires of the grant.
        resource: the resource the grant must be bound to.
        at: the time the grant must be in force at.
        bound_to: ``resource`` as messages name it (``this run's plan``).
        when: ``at`` as messages name it (``when the run started``); None for now.

    Returns:
        The grant (its ``principal`` is the requester).

    Raises:
        ProvenanceError: there is no such grant, or it is of another capability, bound to
            another resource (or to none), a break-glass grant, revoked, or not in force at
            ``at``; every reason is named at once.
    """
    try:
        grant = approvals.grant(grant_id)
    except NotFoundError as exc:
        raise ProvenanceError(f"no grant {grant_id!r}: the {what} is not approved") from exc
    problems = []
    if grant.capability != capability:
        problems.append(f"it is a grant of {grant.capability}, not {capability}")
    if grant.resource != resource:
        problems.append(
            f"it approves {grant.resource or 'no particular ' + what}, not {bound_to} ({resource})"
        )
    # Break-glass is taken first and reviewed afterwards: a run or a promotion must have its
    # approvals before it happens, so an emergency grant never stands in for them.
    if grant.break_glass:
        problems.append(f"it is a break-glass grant: a {what} needs approvals beforehand")
    if grant.revoked_at is not None:
        problems.append(f"it was revoked by {grant.revoked_by}")
    elif not grant.covers(at, grant.resource):
        problems.append(f"it was not in force {when}" if when else "it is not in force")
    if problems:
        raise ProvenanceError(
            f"grant {grant_id} does not approve this {what}: " + "; ".join(problems),
            hint=f"request {capability} with resource {resource} and have it approved",
        )
    return grant
