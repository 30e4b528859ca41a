"""The gateway: an OpenAI-compatible front door that enforces the constitution per request.

Entry points: :class:`Gateway` (the service), :func:`build_gateway` (from settings and the typed
parts the composition root hands it: an :class:`Authorizer` answering a :class:`GrantDecision`,
the inline monitors), :class:`KeyStore` (API keys), :class:`MonitorRegistry` /
:class:`Monitor` / :class:`TextDetector` (inline monitors), :class:`Upstream` with
:class:`HttpUpstream` and :class:`ScriptedUpstream` (NOT a model), and
:class:`GatewayEntrance` (the one way in: the raw-path guard in front of all routing, and the
gateway's request lines). See ``docs/gateway.md``.
"""

from custodes.gateway._asgi import OPENAPI_PATHS, GatewayEntrance
from custodes.gateway._attested import AttestationSource, AttestedServing
from custodes.gateway._authorize import Authorizer, GrantCache, GrantDecision
from custodes.gateway._build import NoAuthority, build_gateway, check_capabilities, upstreams_for
from custodes.gateway._entries import (
    CALL,
    CALL_START,
    KEY_CREATED,
    KEY_REVOKED,
    CallRecord,
    CallStart,
    DetectionRecord,
    KeyCreated,
    KeyRevoked,
    MonitorVerdict,
)
from custodes.gateway._guard import ROUTES, Decision, canonical_path, classify
from custodes.gateway._keys import ApiKey, IssuedKey, KeyStore, hash_key
from custodes.gateway._models import ModelRoute, read_models_file
from custodes.gateway._monitors import (
    DetectorMonitor,
    Monitor,
    MonitorRegistry,
    Screening,
    TextDetection,
    TextDetector,
)
from custodes.gateway._scripted import ScriptedUpstream, read_script
from custodes.gateway._service import (
    RECEIPT_INDEX,
    RECEIPT_LEAF,
    REQUEST_ID,
    Gateway,
    KeyCache,
)
from custodes.gateway._serving import WEIGHTS_REFUSED, ServingCheck, ServingGate, WeightsRefused
from custodes.gateway._serving_states import ServingState, ServingStates
from custodes.gateway._upstream import HttpUpstream, Upstream, UpstreamReply, UpstreamTimeout
from custodes.gateway._usage import ON_BEHALF_OF, UsageGate
from custodes.gateway._wire import (
    AuthenticationFailed,
    MonitorBlocked,
    Refused,
    openai_error,
    parse_chat,
    parse_embeddings,
)

__all__ = [
    "CALL",
    "CALL_START",
    "KEY_CREATED",
    "KEY_REVOKED",
    "ON_BEHALF_OF",
    "OPENAPI_PATHS",
    "RECEIPT_INDEX",
    "RECEIPT_LEAF",
    "REQUEST_ID",
    "WEIGHTS_REFUSED",
    "ROUTES",
    "ApiKey",
    "AuthenticationFailed",
    "Authorizer",
    "CallRecord",
    "CallStart",
    "Decision",
    "DetectionRecord",
    "DetectorMonitor",
    "Gateway",
    "GatewayEntrance",
    "GrantCache",
    "GrantDecision",
    "HttpUpstream",
    "IssuedKey",
    "KeyCache",
    "KeyCreated",
    "KeyRevoked",
    "KeyStore",
    "ModelRoute",
    "Monitor",
    "MonitorBlocked",
    "MonitorRegistry",
    "MonitorVerdict",
    "NoAuthority",
    "Refused",
    "Screening",
    "ScriptedUpstream",
    "AttestationSource",
    "AttestedServing",
    "ServingCheck",
    "ServingGate",
    "ServingState",
    "ServingStates",
    "TextDetection",
    "TextDetector",
    "Upstream",
    "UpstreamReply",
    "UpstreamTimeout",
    "UsageGate",
    "WeightsRefused",
    "build_gateway",
    "canonical_path",
    "check_capabilities",
    "classify",
    "hash_key",
    "openai_error",
    "parse_chat",
    "parse_embeddings",
    "read_models_file",
    "read_script",
    "upstreams_for",
]
