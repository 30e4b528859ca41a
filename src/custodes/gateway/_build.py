"""Build the gateway service of a running server from its settings and sibling services."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from custodes.errors import ConfigError, Denial, Error, PolicyDenied
from custodes.gateway._authorize import Authorizer, GrantCache
from custodes.gateway._keys import KeyStore
from custodes.gateway._models import ModelRoute, read_models_file
from custodes.gateway._monitors import DetectorMonitor, Monitor, MonitorRegistry
from custodes.gateway._scripted import ScriptedUpstream
from custodes.gateway._service import Gateway
from custodes.gateway._upstream import HttpUpstream, Upstream

__all__ = ["NoAuthority", "build_gateway", "upstreams_for"]

_log = logging.getLogger(__name__)


class NoAuthority:
    """Stands in when no authority service runs: denies everything (fail closed)."""

    def authorize(
        self, principal_id: str, capability_id: str, *, at: datetime | None = None
    ) -> Any:
        raise PolicyDenied(
            "no authority service is running, so no grant can cover this call",
            reasons=[Denial("gateway", "an authority service")],
        )


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


def _monitors(source: Any) -> MonitorRegistry:
    """Monitors from the monitors service, if it offers any for inline use."""
    registry = MonitorRegistry()
    offer = getattr(source, "gateway_monitors", None)
    for item in offer() if callable(offer) else offer or ():
        monitor: Monitor = item if isinstance(item, Monitor) else DetectorMonitor(item)
        registry.register(monitor)
    return registry


def _check_capabilities(routes: list[ModelRoute], authority: Any) -> None:
    """Refuse at start a models file that disagrees with the constitution's tiers."""
    try:
        constitution = authority.constitution
    except Error:
        return  # no constitution loaded yet: the authority denies every call (fail closed)
    if constitution is None or not hasattr(constitution, "capabilities_by_id"):
        return
    problems = []
    for route in routes:
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


def build_gateway(ctx: Any) -> Gateway:
    """The gateway for a server :class:`~custodes.server.Context`.

    Raises:
        ConfigError: the models file or a scripted replies file is malformed.
    """
    settings = ctx.settings
    models_file = settings.gateway_models_file or (demo_models_path() if settings.demo else None)
    routes = read_models_file(models_file) if models_file else []
    if models_file is not None and not settings.gateway_models_file:
        _log.warning("demo: the gateway serves %s (scripted replies, not a model)", models_file)
    authority: Authorizer | None = ctx.services.get("authority")
    if authority is None or not callable(getattr(authority, "authorize", None)):
        _log.warning("no authority service: the gateway denies every model call")
        authority = NoAuthority()
    monitors = ctx.services.get("gateway_monitors")
    registry = (
        monitors
        if isinstance(monitors, MonitorRegistry)
        else _monitors(ctx.services.get("monitors"))
    )
    grants = GrantCache(authority, ctx.clock, ttl=settings.gateway_grant_cache_ms / 1000)
    on_revoke = getattr(authority, "on_revoke", None)
    if callable(on_revoke):
        # A revoked grant must stop covering calls at once, not when the cache entry ages out.
        on_revoke(lambda _grant: grants.invalidate())
    _check_capabilities(routes, authority)
    return Gateway(
        log=ctx.log,
        keys=KeyStore(ctx.engine, ctx.log, ctx.clock),
        grants=grants,
        routes=routes,
        upstreams=upstreams_for(routes, max_connections=settings.gateway_upstream_connections),
        monitors=registry,
        clock=ctx.clock,
        max_body_bytes=settings.gateway_max_body_bytes,
        key_poll=settings.gateway_key_poll_ms / 1000,
    )
