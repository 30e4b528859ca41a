"""The gateway: an OpenAI-compatible front door that enforces the constitution per request.

Entry points: :class:`Gateway` (the service), :func:`build_gateway` (from a server context),
:class:`KeyStore` (API keys), :class:`MonitorRegistry` / :class:`Monitor` (inline monitors),
:class:`Upstream` with :class:`HttpUpstream` and :class:`ScriptedUpstream` (NOT a model), and
:class:`GatewayGuard` (the raw-path guard in front of routing). See ``docs/gateway.md``.
"""

from custodes.gateway._asgi import GatewayGuard, answer_exact
from custodes.gateway._authorize import Authorizer, GrantCache, GrantRef
from custodes.gateway._build import NoAuthority, build_gateway, upstreams_for
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
from custodes.gateway._monitors import DetectorMonitor, Monitor, MonitorRegistry, Screening
from custodes.gateway._scripted import ScriptedUpstream, read_script
from custodes.gateway._service import (
    RECEIPT_INDEX,
    RECEIPT_LEAF,
    REQUEST_ID,
    Gateway,
    KeyCache,
)
from custodes.gateway._upstream import HttpUpstream, Upstream, UpstreamReply, UpstreamTimeout
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
    "RECEIPT_INDEX",
    "RECEIPT_LEAF",
    "REQUEST_ID",
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
    "GatewayGuard",
    "answer_exact",
    "GrantCache",
    "GrantRef",
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
    "Upstream",
    "UpstreamReply",
    "UpstreamTimeout",
    "build_gateway",
    "canonical_path",
    "classify",
    "hash_key",
    "openai_error",
    "parse_chat",
    "parse_embeddings",
    "read_models_file",
    "read_script",
    "upstreams_for",
]
