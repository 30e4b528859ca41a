"""Build the gateway from its settings and the typed parts the composition root hands it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from custodes.clock import Clock
from custodes.config import Settings
from custodes.constitution import Constitution
from custodes.errors import ConfigError, Denial, PolicyDenied
from custodes.gateway._attested import AttestationSource, AttestedServing
from custodes.gateway._authorize import Authorizer, GrantCache, GrantDecision
from custodes.gateway._keys import KeyStore
from custodes.gateway._models import ModelRoute, read_models_file
from custodes.gateway._monitors import MonitorRegistry
from custodes.gateway._scripted import ScriptedUpstream
from custodes.gateway._service import Gateway
from custodes.gateway._serving import ServingCheck, ServingGate
from custodes.gateway._serving_states import ServingStates
from custodes.gateway._upstream import HttpUpstream, Upstream
from custodes.gateway._usage import UsageGate
from custodes.log import TransparencyLog

__all__ = ["NoAuthority", "build_gateway", "upstreams_for"]

_log = logging.getLogger(__name__)


class NoAuthority:
    """Stands in when no authority runs: denies every call (fail closed, invariant 5)."""

    def authorize(self, principal_id: str, capability_id: str, *, at: datetime) -> GrantDecision:
        """Deny.

        Raises:
            PolicyDenied: always.
        """
        raise PolicyDenied(
            "no authority service is running, so no grant can cover this call",
            reasons=[Denial("gateway", "an authority service")],
        )

    def on_revoke(self, callback: Callable[[], None]) -> None:
        """Nothing is ever granted, so nothing is ever revoked."""


def demo_models_path() -> Path | None:
    """``examples/gateway-models.yaml`` of the working directory or of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base / "examples" / "gateway-models.yaml"
        if candidate.is_file():
            return candidate
    return None


def upstreams_for(routes: list[ModelRoute], *, max_connections: int = 200) -> dict[str, Upstream]:
    """One shared HTTP upstream for every real model, the scripted one for scripted models."""
    http: HttpUpstream | None = None
    scripted: ScriptedUpstream | None = None
    chosen: dict[str, Upstream] = {}
    for route in routes:
        if route.base_url is not None:
            http = http or HttpUpstream(max_connections=max_connections)
            chosen[route.name] = http
        else:
            scripted = scripted or ScriptedUpstream()
            chosen[route.name] = scripted
    return chosen


def _weights_models(routes: list[ModelRoute]) -> dict[tuple[str, str], list[str]]:
    """The models that name each weights digest, by (digest, tier)."""
    out: dict[tuple[str, str], list[str]] = {}
    for route in routes:
        if route.weights is not None:
            out.setdefault((route.weights, route.capability), []).append(route.name)
    return out


def _attestation_sources(
    routes: list[ModelRoute], constitution: Constitution | None
) -> dict[tuple[str, str], AttestationSource]:
    """Each attesting route's sidecar, with its signer's key from the constitution.

    Raises:
        ConfigError: no constitution is loaded, the signer is not a principal with a key, or
            two routes of one (weights, tier) name different sidecars.
    """
    out: dict[tuple[str, str], AttestationSource] = {}
    attesting = {(r.weights, r.capability) for r in routes if r.attestation_url is not None}
    for r in routes:
        if r.attestation_url is None and (r.weights, r.capability) in attesting:
            # One verdict per (weights, tier): an unattested twin would share the attested one.
            raise ConfigError(
                f"model {r.name!r}: another model of the same weights and tier names an "
                "attesting sidecar; give every such model the same attestation"
            )
        if r.attestation_url is None or r.weights is None or r.attestation_signer is None:
            continue
        signer = (
            None
            if constitution is None
            else constitution.principals_by_id.get(r.attestation_signer)
        )
        if signer is None or signer.public_key is None:
            raise ConfigError(
                f"model {r.name!r}: its attestation signer {r.attestation_signer!r} is not a "
                "principal of the constitution with a key",
                hint="the model server's workload principal, with its public key",
            )
        source = AttestationSource(r.attestation_url, signer.id, signer.public_key)
        if out.setdefault((r.weights, r.capability), source) != source:
            raise ConfigError(
                f"model {r.name!r}: another model of the same weights and tier names another "
                "attesting sidecar"
            )
    return out


def check_capabilities(routes: list[ModelRoute], constitution: Constitution) -> None:
    """Refuse a models file that disagrees with the constitution's capability tiers.

    Raises:
        ConfigError: a model names a capability the constitution lacks, a tier lists other
            models only, the constitution puts the model in another tier, or the model is in a
            tier that serves only promoted weights (``provenance.tiers``) and names none.
    """
    problems = []
    served = constitution.provenance.tiers_by_capability
    for route in routes:
        if route.capability in served and route.weights is None:
            # Fail closed: without a digest there is nothing to check against the registry,
            # and the tier would serve whatever its upstream loaded.
            problems.append(
                f"model {route.name!r}: capability {route.capability!r} serves only weights "
                "promoted to it (provenance.tiers), but the model names no weights "
                "(add weights: sha256:..., the digest custodes provenance hash prints)"
            )
        tier = constitution.capabilities_by_id.get(route.capability)
        if tier is None:
            problems.append(
                f"model {route.name!r}: the constitution has no capability {route.capability!r}"
            )
        elif tier.models and route.name not in tier.models:
            problems.append(
                f"model {route.name!r}: capability {route.capability!r} lists "
                f"only the models {', '.join(tier.models)}"
            )
        else:
            others = [
                c.id
                for c in constitution.capabilities_for_model(route.name)
                if c.id != route.capability
            ]
            if others:
                problems.append(
                    f"model {route.name!r} belongs to {', '.join(others)} in the "
                    f"constitution, not {route.capability!r}"
                )
    if problems:
        raise ConfigError(
            "the gateway models file disagrees with the constitution: " + "; ".join(problems)
        )


def build_gateway(
    settings: Settings,
    *,
    engine: Engine,
    log: TransparencyLog,
    clock: Clock,
    authorizer: Authorizer | None,
    constitution: Constitution | None,
    monitors: MonitorRegistry,
    usage: UsageGate | None = None,
    serving: ServingCheck | None = None,
    constitution_source: Callable[[], Constitution | None] | None = None,
) -> Gateway:
    """The gateway of a deployment.

    Args:
        settings: the deployment's settings (``gateway_*``; the demo serves
            ``examples/gateway-models.yaml`` when no models file is set).
        engine: the migrated database (API keys).
        log: the transparency log every call is recorded in.
        clock: the deployment's clock.
        authorizer: the authority; None denies every model call (fail closed).
        constitution: the constitution in force at start, checked against the models file;
            None (nothing loaded yet) skips the check, as every call is denied anyway.
        monitors: the inline monitors.
        usage: chains of direction and gating concentration rules (custodes.usage).
        serving: the model registry, asked whether the weights a route names may serve
            (custodes.provenance; a verdict per digest, re-checked every
            ``gateway_serving_check_s``). None: calls to such routes are refused.
        constitution_source: the constitution in force as it is amended (the authority's):
            the gateway follows ``provenance.tiers`` without a restart. None: the models
            file is checked against ``constitution`` at start only.

    Raises:
        ConfigError: the models file or a scripted replies file is malformed, or the models
            file disagrees with the constitution.
    """
    models_file = settings.gateway_models_file or (demo_models_path() if settings.demo else None)
    routes = read_models_file(models_file) if models_file else []
    if models_file is not None and not settings.gateway_models_file:
        _log.warning("demo: the gateway serves %s (scripted replies, not a model)", models_file)
    if authorizer is None:
        _log.warning("no authority service: the gateway denies every model call")
        authorizer = NoAuthority()
    grants = GrantCache(authorizer, clock, ttl=settings.gateway_grant_cache_ms / 1000)
    # A revoked grant must stop covering calls at once, not when the cache entry ages out.
    authorizer.on_revoke(grants.invalidate)
    if constitution is not None:
        check_capabilities(routes, constitution)
    if serving is not None and any(r.attestation_url for r in routes):
        serving = AttestedServing(serving, _attestation_sources(routes, constitution), clock=clock)
    return Gateway(
        log=log,
        keys=KeyStore(engine, log, clock),
        grants=grants,
        routes=routes,
        upstreams=upstreams_for(routes, max_connections=settings.gateway_upstream_connections),
        monitors=monitors,
        clock=clock,
        max_body_bytes=settings.gateway_max_body_bytes,
        key_poll=settings.gateway_key_poll_ms / 1000,
        usage=usage,
        serving=(
            None
            if serving is None
            else ServingGate(
                serving,
                interval=settings.gateway_serving_check_s,
                log=log,
                clock=clock,
                models=_weights_models(routes),
                states=ServingStates(engine, clock=clock),
            )
        ),
        constitution=constitution_source,
    )
