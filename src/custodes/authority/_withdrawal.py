"""Withdrawal: a requester (or an amendment's proposer) takes back their own pending request,
with a signed statement that is logged before the request stops taking approvals.

A withdrawn request is decided (status ``withdrawn``): no approval counts towards it any more
and it can never be granted or adopted. Only the requester may withdraw, and only a request
they made: a break-glass review is opened by custodes, not by the grant's holder, so nobody can
withdraw one (it would let the holder escape the review).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from custodes.authority._requests import RequestBook
from custodes.authority._signed import check_signed
from custodes.authority._state import AuthorityState
from custodes.errors import ApprovalError, InputError, NotFoundError

__all__ = ["WITHDRAWABLE_KINDS", "Withdrawals"]

_log = logging.getLogger(__name__)

WITHDRAWABLE_KINDS: tuple[str, ...] = ("grant", "escrow-read", "amendment")
"""The kinds of request their requester may withdraw (the kinds a client submits)."""

_MAX_REASON = 2000


class Withdrawals:
    """Withdrawing pending requests and amendment proposals.

    Args:
        state: the authority's shared state.
        requests: the stored requests.
    """

    def __init__(self, state: AuthorityState, requests: RequestBook) -> None:
        self._state = state
        self._requests = requests

    def withdraw(self, withdrawal: Mapping[str, Any], signature: str) -> str:
        """Withdraw the pending request the signed ``withdrawal`` names.

        Returns:
            The id of the request withdrawn.

        Raises:
            NotFoundError: no such request, or the signer is not a principal.
            InputError: the statement is malformed or stale, or the request is not pending
                (decided, superseded or withdrawn already) or is of a kind nobody withdraws.
            ApprovalError: the signature does not verify, or the signer is not the requester.
            LogWriteError: the withdrawal could not be logged (the request stays pending).
        """
        state = self._state
        with state.lock:
            signed = check_signed(state, withdrawal, signature, kinds=("withdrawal",))
            req, signer = signed.request, signed.signer
            request_id = req.get("request_id")
            if not isinstance(request_id, str):
                raise InputError(
                    "the withdrawal names no request",
                    where="request.request_id",
                    expected="the id of a pending request",
                )
            row = self._requests.row(request_id)
            if row.kind not in WITHDRAWABLE_KINDS:
                raise InputError(
                    f"request {request_id} is a {row.kind} request, which nobody withdraws",
                    where="request.request_id",
                    expected="a grant, escrow-read or amendment request",
                )
            if row.requester != signer.id:
                # The requester alone: approvers who no longer agree do not approve, and an
                # overseer who wants a grant ended revokes it once granted.
                raise ApprovalError(
                    f"request {request_id} was made by {row.requester}; only its requester "
                    f"withdraws it, not {signer.id}"
                )
            if row.status != "pending":
                raise InputError(
                    f"request {request_id} is {row.status}: only a pending request is withdrawn",
                    where="request.request_id",
                )
            reason = req.get("reason", "")
            if not isinstance(reason, str) or len(reason) > _MAX_REASON:
                raise InputError(
                    f"reason must be a string of at most {_MAX_REASON} characters",
                    where="request.reason",
                )
            approvers = sorted({a.approver for a in self._requests.approvals(request_id)})
            now = state.clock.now()
            index = state.append(
                "authority.withdrawal/v1",
                time=now,
                principal=signer.id,
                body={
                    "request_id": request_id,
                    "kind": row.kind,
                    "by": signer.id,
                    "reason": reason,
                    "withdrawal": req,
                    "digest": signed.digest,
                    "signature": signature,
                    "notify": self._notify(row, approvers),
                },
            )
            with state.engine.begin() as conn:
                self._requests.set_status(conn, request_id, "withdrawn", decided_at=now)
            _log.info("request %s withdrawn by %s (log index %d)", request_id, signer.id, index)
            return request_id

    def _notify(self, row: Any, approvers: list[str]) -> dict[str, list[str]]:
        """Who was told of the request (its own entry's ``notify``), and everyone who approved
        it: their approvals no longer count."""
        told: dict[str, list[str]] = {"organisations": [], "principals": []}
        try:
            entry = orjson.loads(self._state.log.entry_data(row.log_index))
            told = {k: list(v) for k, v in entry["body"]["notify"].items()}
        except (NotFoundError, KeyError, TypeError, ValueError, AttributeError):
            # A request entry always carries its notify; an unreadable one still leaves the
            # approvers told.
            pass
        told["principals"] = sorted({*told.get("principals", []), *approvers})
        told["organisations"] = sorted(set(told.get("organisations", [])))
        return told
