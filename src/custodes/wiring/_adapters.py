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

import hashlib
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

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

    Incremental: the serving check asks again at every interval, over the same log with a few
    entries more. The auditor reads entries in index order and a later entry never changes an
    earlier one's verdict, so the auditor that read entries ``0..n`` is kept, and a later call
    feeds it only the entries after ``n`` — when the first ``n`` entries are, byte for byte,
    the ones it read (their SHA-256 is compared at every call, so an entry changed in the
    database is audited anew) and the stored constitution texts are the same. Otherwise (or
    for entries that do not start at 0 or have gaps) it audits from the start.

    Args:
        engine: the database whose stored constitution texts the auditor checks against.
    """

    # The entry types a grant's verdict depends on: the constitutions in force, the requests,
    # approvals, renewals, grants, break-glass uses and revocations. Call entries are checked
    # against grants, never the other way round, so they are left out (most of a log).
    _FEEDS = (b'"authority.', b'"constitution.')

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._documents: dict[int, str] | None = None
        self._auditor: EntryAuditor | None = None
        self._read = 0  # entries 0.._read - 1 were read by self._auditor
        self._read_sha256 = b""  # ... and hash to this (see _update)
        self._problems: dict[str, str | None] = {}
        self.audited = 0  # entries fed to an auditor by the last call (for tests)

    def grant_problems(self, entries: Mapping[int, bytes]) -> dict[str, str | None]:
        """Each logged grant's problem, by grant id, as the entry auditor finds it.

        Args:
            entries: the log's entries by index, read once by the caller (in any order:
                they are audited in index order, as the auditor needs).

        Returns:
            By grant id, None when the grant's approvals check out against the constitution
            in force at its index, else what is wrong; a grant with no entry is absent.
        """
        documents = stored_documents(self._engine)
        indexes = sorted(entries)
        contiguous = indexes == list(range(len(indexes)))
        with self._lock:
            start = self._read if contiguous and _start_ok(self._read, len(indexes)) else 0
            # One pass of SHA-256 over the log: up to what was read (to compare), then on.
            h = hashlib.sha256()
            for i in range(start):
                _update(h, entries[i])
            if not (
                start
                and self._auditor is not None
                and documents == self._documents
                and h.digest() == self._read_sha256
            ):
                self._auditor, self._problems, start = EntryAuditor(documents), {}, 0
                h = hashlib.sha256()
            auditor = self._auditor
            self.audited = 0
            try:
                for index in indexes[start:]:
                    data = entries[index]
                    if contiguous:
                        _update(h, data)
                    if not any(tag in data for tag in self._FEEDS):
                        continue
                    self.audited += 1
                    problem = auditor.check(index, data)
                    if b'"authority.grant/v1"' in data:
                        self._problems.update(dict.fromkeys(grant_bodies({index: data}), problem))
            except BaseException:
                # Fed part of the way: the next call must not feed those entries twice.
                self._auditor, self._read = None, 0
                raise
            out = dict(self._problems)
            if contiguous:
                self._documents, self._read, self._read_sha256 = documents, len(indexes), h.digest()
            else:
                self._auditor = None  # not a prefix of the log: nothing to continue from
            return out


def _start_ok(read: int, size: int) -> bool:
    """Whether a log of ``size`` entries can continue one of ``read`` (it is no shorter)."""
    return 0 < read <= size


def _update(h: Any, data: bytes) -> None:
    """Add one entry to a running SHA-256, length-prefixed (so no two logs collide)."""
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)


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
