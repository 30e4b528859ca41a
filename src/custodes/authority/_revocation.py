"""Revocation: a signed statement that ends a grant at once, and the callbacks that make every
cache (the gateway's) drop it in the same moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from custodes.authority._grants import GrantBook
from custodes.authority._model import Grant
from custodes.authority._signed import check_signed
from custodes.authority._state import AuthorityState
from custodes.authority._tables import authority_grants
from custodes.constitution import Notify
from custodes.errors import Denial, InputError, PolicyDenied

__all__ = ["Revocations"]

_log = logging.getLogger(__name__)


class Revocations:
    """Revoking grants, and telling listeners of each revocation.

    Args:
        state: the authority's shared state.
        grants: the stored grants and their index.
    """

    def __init__(self, state: AuthorityState, grants: GrantBook) -> None:
        self._state = state
        self._grants = grants
        self._listeners: list[Callable[[Grant], None]] = []

    def on_revoke(self, callback: Callable[[Grant], None]) -> None:
        """Call ``callback(grant)`` after every revocation (caches drop the grant at once)."""
        self._listeners.append(callback)

    def announce(self, grant: Grant) -> None:
        """Tell the :meth:`on_revoke` listeners of ``grant`` if it is revoked (a change another
        process made); called outside the state's lock, as a listener may call back."""
        if grant.revoked_at is not None:
            for listener in self._listeners:
                listener(grant)

    def revoke(self, revocation: Mapping[str, Any], signature: str) -> Grant:
        """Revoke a grant at once. Signed by the revoker: the holder, an approver of its rule,
        or anyone of an overseer organisation.

        Raises:
            NotFoundError: no such grant, or the revoker is not a principal.
            InputError: the statement is malformed or stale, or the grant is already revoked
                or expired.
            ApprovalError: the revoker's signature does not verify.
            PolicyDenied: the revoker may not revoke this grant.
            LogWriteError: the revocation could not be logged (the grant stands).
        """
        state = self._state
        with state.lock:
            signed = check_signed(state, revocation, signature, kinds=("revocation",))
            req, revoker = signed.request, signed.signer
            grant_id = req.get("grant")
            if not isinstance(grant_id, str):
                raise InputError("the revocation names no grant", where="request.grant")
            grant = self._grants.get(grant_id)
            now = state.clock.now()
            if grant.revoked_at is not None:
                raise InputError(f"grant {grant_id} is already revoked", where="request.grant")
            # Revoking an expired grant would log an action that changes nothing.
            if grant.expires_at is not None and grant.expires_at <= now:
                raise InputError(f"grant {grant_id} has already expired", where="request.grant")
            c = state.constitution
            org = c.organisations_by_id[revoker.organisation]
            rule = c.access_rules_by_id.get(grant.rule)
            bg = c.break_glass_by_id.get(grant.rule)
            # A break-glass grant's approvers are its reviewers: they may end it early.
            approver_roles = (
                rule.approver_roles if rule else bg.review.approver_roles if bg else frozenset()
            )
            if not (
                revoker.id == grant.principal
                or org.kind == "overseer"
                or revoker.roles & approver_roles
            ):
                raise PolicyDenied(
                    f"{revoker.id} may not revoke grant {grant_id}",
                    reasons=[
                        Denial(
                            grant.rule,
                            "only the holder, an approver of the rule or an "
                            "overseer organisation may revoke",
                        )
                    ],
                )
            # Bounded: the reason goes into the log entry and every overseer's view of it.
            reason = str(req.get("reason", ""))[:2000]
            notify = state.notified(rule.notify if rule else bg.notify if bg else Notify())
            # The holder always learns their grant ended, whatever the rule's notify says.
            if grant.principal not in notify["principals"]:
                notify["principals"] = sorted({*notify["principals"], grant.principal})
            index = state.append(
                "authority.revocation/v1",
                time=now,
                principal=revoker.id,
                body={
                    "grant_id": grant_id,
                    "by": revoker.id,
                    "reason": reason,
                    "digest": signed.digest,
                    "signature": signature,
                    "notify": notify,
                },
            )
            with state.engine.begin() as conn:
                conn.execute(
                    authority_grants.update()
                    .where(authority_grants.c.id == grant_id)
                    .values(revoked_at=now, revoked_by=revoker.id, revoke_reason=reason)
                )
            _log.info("grant %s revoked by %s (log index %d)", grant_id, revoker.id, index)
            revoked = self._grants.get(grant_id)
            self._grants.remember(revoked)
        # Outside the lock: a listener may call back into the authority.
        for listener in self._listeners:
            listener(revoked)
        return revoked
