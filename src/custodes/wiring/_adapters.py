"""What the composition root puts between components, so that none imports another's types
for a role it only needs a part of.

The gateway speaks :class:`custodes.gateway.Authorizer` (a typed :class:`GrantDecision`); the
authority answers with its own :class:`~custodes.authority.Grant`. Several components follow
the constitution in force (an amendment applies at once) through a plain callable, not the
authority. The monitors' review queue and the custody registry need each other (a detection is
linked to a finding; a stockpiling alarm reads discovery detections): :class:`Later` breaks
that construction cycle explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Engine

from custodes.authority import Authority
from custodes.constitution import Constitution
from custodes.entry_audit import EntryAuditor, stored_documents
from custodes.errors import NotFoundError
from custodes.gateway import DetectorMonitor, GrantDecision, MonitorRegistry
from custodes.monitors import MonitorsService
from custodes.provenance import grant_bodies

__all__ = [
    "GatewayAuthority",
    "GrantAuditor",
    "Later",
    "constitution_in_force",
    "gateway_monitors",
]

T = TypeVar("T")

ConstitutionSource = Callable[[], Constitution | None]


class GatewayAuthority:
    """The authority as the gateway's :class:`~custodes.gateway.Authorizer`.

    Args:
        authority: the deployment's authority.
    """

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    def authorize(self, principal_id: str, capability_id: str, *, at: datetime) -> GrantDecision:
        """The grant covering the call, as the gateway keeps it.

        Raises:
            PolicyDenied: no active grant covers it.
        """
        grant = self._authority.authorize(principal_id, capability_id, at=at)
        # covers_until, not expires_at: a break-glass grant under review stops covering calls
        # at its review deadline, and no cached decision may outlive that.
        return GrantDecision(
            grant_id=grant.id,
            principal=grant.principal,
            capability=grant.capability,
            covers_until=grant.covers_until,
        )

    def on_revoke(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every revocation."""
        self._authority.on_revoke(lambda _grant: callback())


class GrantAuditor:
    """The entry auditor as the model registry's :class:`~custodes.provenance.GrantAudit`.

    Args:
        engine: the database whose stored constitution texts the auditor checks against.
    """

    # The entry types a grant's verdict depends on: the constitutions in force, the requests,
    # approvals, renewals, grants, break-glass uses and revocations. Call entries are checked
    # against grants, never the other way round, so they are left out (most of a log).
    _FEEDS = (b'"authority.', b'"constitution.')

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def grant_problems(self, entries: Mapping[int, bytes]) -> dict[str, str | None]:
        """Each logged grant's problem, by grant id, as the entry auditor finds it.

        Args:
            entries: the log's entries by index, read once by the caller (in any order:
                they are audited in index order, as the auditor needs).

        Returns:
            By grant id, None when the grant's approvals check out against the constitution
            in force at its index, else what is wrong; a grant with no entry is absent.
        """
        auditor = EntryAuditor(stored_documents(self._engine))
        out: dict[str, str | None] = {}
        for index in sorted(entries):
            data = entries[index]
            if not any(tag in data for tag in self._FEEDS):
                continue
            problem = auditor.check(index, data)
            if b'"authority.grant/v1"' in data:
                out.update(dict.fromkeys(grant_bodies({index: data}), problem))
        return out


def constitution_in_force(authority: Authority) -> ConstitutionSource:
    """A callable answering the authority's active constitution, or None when none is loaded."""

    def current() -> Constitution | None:
        try:
            return authority.constitution
        except NotFoundError:
            return None

    return current


def gateway_monitors(monitors: MonitorsService) -> MonitorRegistry:
    """The monitors' rules-tier detectors, run inline by the gateway.

    Observing, not gating: a discovery must reach a reviewer, not vanish with a refusal.
    """
    return MonitorRegistry(
        DetectorMonitor(d, mode="observing") for d in monitors.inline_detectors()
    )


class Later(Generic[T]):
    """A component that is built after one that needs it.

    Args:
        what: the component's name, for the error before it is set.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._value: T | None = None

    def set(self, value: T) -> None:
        """Bind the component (once it is built)."""
        self._value = value

    def get(self) -> T:
        """The component.

        Raises:
            NotFoundError: it is not built yet.
        """
        if self._value is None:
            raise NotFoundError(f"{self._what} is not running")
        return self._value
