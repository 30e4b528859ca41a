"""Multi-party authority: requests, approvals (Ed25519 signatures by the approvers' own keys),
quorum decisions, time-bound grants, revocation, break-glass with review, and amendments.

Entry points: :class:`Authority` (``authorize(principal, capability)`` is what the gateway and
custody call), :func:`evaluate_quorum` (the pure decision), :class:`SigningKey` (approver keys).
"""

from custodes.authority._client import (
    AuthorityClient,
    new_request,
    sign_approval,
    sign_renewal,
    sign_request,
)
from custodes.authority._decide import (
    AmendmentNeed,
    Notified,
    amendment_need,
    approver_refusal,
    break_glass_notified,
    break_glass_refusal,
    eligible_requesters,
    entries_clauses,
    entry_clauses,
    may_approve,
    may_break_glass,
    may_request,
    may_sign_amendment,
    notified,
    persons,
    requester_refusal,
    tells_outsiders,
)
from custodes.authority._model import (
    REQUEST_KINDS,
    CaughtUp,
    Grant,
    RequestRecord,
    RuleStatus,
)
from custodes.authority._quorum import (
    ApprovalFacts,
    QuorumOutcome,
    RequestFacts,
    evaluate_quorum,
    explain_missing,
)
from custodes.authority._service import Authority
from custodes.authority._signing import (
    APPROVAL_DOMAIN,
    REQUEST_DOMAIN,
    SigningKey,
    approval_message,
    decode_signature,
    renewal_message,
    request_digest,
    request_message,
    verify_signature,
)
from custodes.authority._start import current_constitution, demo_constitution_path, start_authority

__all__ = [
    "AmendmentNeed",
    "Notified",
    "amendment_need",
    "approver_refusal",
    "break_glass_notified",
    "break_glass_refusal",
    "eligible_requesters",
    "entries_clauses",
    "entry_clauses",
    "may_approve",
    "may_break_glass",
    "may_request",
    "may_sign_amendment",
    "notified",
    "persons",
    "requester_refusal",
    "tells_outsiders",
    "APPROVAL_DOMAIN",
    "REQUEST_DOMAIN",
    "REQUEST_KINDS",
    "ApprovalFacts",
    "Authority",
    "CaughtUp",
    "Grant",
    "QuorumOutcome",
    "RequestFacts",
    "RequestRecord",
    "RuleStatus",
    "SigningKey",
    "approval_message",
    "demo_constitution_path",
    "current_constitution",
    "start_authority",
    "decode_signature",
    "evaluate_quorum",
    "explain_missing",
    "renewal_message",
    "request_digest",
    "request_message",
    "verify_signature",
    "AuthorityClient",
    "new_request",
    "sign_approval",
    "sign_renewal",
    "sign_request",
]
