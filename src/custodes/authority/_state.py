"""What every part of the authority shares: the database, the log, the clock, one lock, and the
active constitution with its compiled policies.

The parts (requests, approvals, grants, break-glass, amendments) each hold the same
:class:`AuthorityState`, so an amendment adopted by one is the constitution every other part
decides under from the next call on.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from custodes.authority import _decide
from custodes.clock import Clock
from custodes.constitution import (
    CompiledPolicies,
    Constitution,
    Notify,
    Principal,
    compile_policies,
)
from custodes.errors import NotFoundError
from custodes.log import Entry, TransparencyLog

__all__ = ["AuthorityState"]


class AuthorityState:
    """The database, log, clock and active constitution that the authority's parts share.

    Args:
        engine: the migrated database.
        log: the transparency log every action is appended to first.
        clock: the one clock (grant expiry is exact to it).
        request_skew: how far a signed object's time may be from the server's clock.
    """

    def __init__(
        self, engine: Engine, log: TransparencyLog, *, clock: Clock, request_skew: timedelta
    ) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock
        self.request_skew = request_skew
        # Mutations are serialised by one lock per process (the deployment runs one authority
        # per database); re-entrant because an approval that meets a quorum goes on to grant.
        self.lock = threading.RLock()
        # None until a constitution is loaded: then every authorization is denied (fail closed).
        self._constitution: Constitution | None = None
        self._compiled: CompiledPolicies | None = None

    def activate(self, c: Constitution) -> None:
        """Make ``c`` the constitution every part decides under.

        Raises:
            ConstitutionError: its policies do not compile.
        """
        # Compile first: a constitution whose policies cannot compile never becomes active.
        self._compiled = compile_policies(c)
        self._constitution = c

    def deactivate(self) -> None:
        """Decide under no constitution: every authorization is denied (fail closed) until
        :meth:`activate` succeeds."""
        self._constitution = None
        self._compiled = None

    @property
    def loaded(self) -> Constitution | None:
        """The active constitution, or ``None`` before one is loaded."""
        return self._constitution

    @property
    def constitution(self) -> Constitution:
        """The active constitution.

        Raises:
            NotFoundError: none is loaded.
        """
        c = self._constitution
        if c is None:
            raise NotFoundError(
                "no constitution is loaded",
                hint="start the server with --constitution FILE (or --demo)",
            )
        return c

    @property
    def compiled(self) -> CompiledPolicies:
        """The active constitution's compiled (Cedar) policies.

        Raises:
            NotFoundError: no constitution is loaded.
        """
        if self._compiled is None:
            raise NotFoundError("no constitution is loaded")
        return self._compiled

    def principal(self, principal_id: str) -> Principal:
        """A principal of the active constitution.

        Raises:
            NotFoundError: no such principal (or no constitution).
        """
        p = self.constitution.principals_by_id.get(principal_id)
        if p is None:
            raise NotFoundError(
                f"unknown principal {principal_id!r}",
                where="principal",
                expected=f"a principal of constitution version {self.constitution.version}",
            )
        return p

    def notified(self, *notifies: Notify) -> dict[str, list[str]]:
        """Who the active constitution says is told (invariant 8), as a log entry's ``notify``.

        Raises:
            NotFoundError: no constitution is loaded.
        """
        return _decide.notified(self.constitution, *notifies).to_json()

    def append(
        self, entry_type: str, *, time: datetime, principal: str, body: Mapping[str, Any]
    ) -> int:
        """Append one entry to the log and return its index: the action may take effect now.

        Raises:
            LogWriteError: it could not be made durable (the caller must not act).
        """
        appended = self.log.append(
            Entry.create(entry_type, time=time, principal=principal, body=body)
        )
        return appended.index
