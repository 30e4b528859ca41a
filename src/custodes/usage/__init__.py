"""Who actually uses each capability tier: on-behalf-of chains from AI workloads to the persons
who direct them, concentration figures per tier and window, concentration rules (alarms and
gates), overseers' overrides of a gate, directors' signed delegations of workloads several may
direct, and the review clocks of restricted tiers.

Entry points: :class:`UsageTracker` (built by the composition root; the gateway calls its
``admit`` and ``observe``), :func:`resolve_chain`, :class:`Ledger` and :func:`tier_figures`
(the figures), :func:`count_entry` (which log entries count, and as whose). See
``docs/usage.md``.
"""

from custodes.usage._breaches import Breach, GrantHeld, evaluate_breaches
from custodes.usage._chains import MAX_CHAIN, Chain, resolve_chain
from custodes.usage._counting import GATEWAY_CALL, USE_OUTCOMES, count_entry
from custodes.usage._delegations import (
    DELEGATION_DOMAIN,
    MAX_DELEGATION,
    delegation_message,
    delegation_refusal,
)
from custodes.usage._entries import (
    ALARM,
    ALARM_ENDED,
    DELEGATION,
    OVERRIDE,
    REVIEW,
    AlarmBody,
    AlarmEndedBody,
    DelegationBody,
    OnBehalfOf,
    OverrideBody,
    ReviewApproval,
    ReviewBody,
)
from custodes.usage._figures import Concentration, Measure, TierFigures, concentration, tier_figures
from custodes.usage._ledger import Counted, Ledger, WindowView
from custodes.usage._overrides import OVERRIDE_DOMAIN, override_message, override_refusal
from custodes.usage._policy import FIGURE_WINDOWS, RuleKind, UsagePolicy, UsageRule
from custodes.usage._review_book import ReviewBook, ReviewState, StoredReview
from custodes.usage._reviews import (
    REVIEW_TYPE,
    Refused,
    ReviewClock,
    members_of,
    review_clocks,
    review_request,
)
from custodes.usage._service import (
    CoalitionSource,
    ConstitutionSource,
    Delegation,
    GrantSource,
    Override,
    StoredAlarm,
    UsageLog,
    UsageTracker,
)
from custodes.usage._svg import figures_svg

__all__ = [
    "CoalitionSource",
    "ALARM",
    "ALARM_ENDED",
    "DELEGATION",
    "DELEGATION_DOMAIN",
    "FIGURE_WINDOWS",
    "GATEWAY_CALL",
    "MAX_CHAIN",
    "MAX_DELEGATION",
    "OVERRIDE",
    "OVERRIDE_DOMAIN",
    "REVIEW",
    "REVIEW_TYPE",
    "USE_OUTCOMES",
    "AlarmBody",
    "AlarmEndedBody",
    "Breach",
    "Chain",
    "Concentration",
    "ConstitutionSource",
    "Counted",
    "Delegation",
    "DelegationBody",
    "GrantHeld",
    "GrantSource",
    "Ledger",
    "Measure",
    "OnBehalfOf",
    "Override",
    "OverrideBody",
    "Refused",
    "ReviewApproval",
    "ReviewBody",
    "ReviewBook",
    "ReviewClock",
    "ReviewState",
    "RuleKind",
    "StoredAlarm",
    "StoredReview",
    "TierFigures",
    "UsageLog",
    "UsagePolicy",
    "UsageRule",
    "UsageTracker",
    "WindowView",
    "concentration",
    "count_entry",
    "delegation_message",
    "delegation_refusal",
    "evaluate_breaches",
    "figures_svg",
    "members_of",
    "override_message",
    "override_refusal",
    "resolve_chain",
    "review_clocks",
    "review_request",
    "tier_figures",
]
