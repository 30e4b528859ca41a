"""What the gateway asks of the usage component (custodes.usage), as a typed role.

Before a call goes upstream the gateway asks whom it is made for (:meth:`UsageGate.admit`: the
chain of direction from an AI workload to its directing person, and whether a gating
concentration rule refuses it); once the call's entry is durable it hands the entry over
(:meth:`UsageGate.observe`), so the figures and the gate stay current without reading the log.
"""

from __future__ import annotations

from typing import Protocol

from custodes.usage import OnBehalfOf

__all__ = ["ON_BEHALF_OF", "UsageGate"]

ON_BEHALF_OF = "x-custodes-on-behalf-of"
"""The request header a workload names its directors in, nearest first (comma-separated),
when the constitution lets more than one principal direct it."""


class UsageGate(Protocol):
    """Chains of direction, gating concentration rules, and the call entries that count."""

    def admit(self, principal: str, capability: str, directors: str | None) -> OnBehalfOf:
        """Whom the call is for; ``directors`` is the :data:`ON_BEHALF_OF` header, if sent.

        Raises:
            PolicyDenied: the chain is not one the constitution allows, or a gating rule
                refuses the person's (or organisation's) next call.
        """
        ...

    def observe(self, index: int, entry: bytes) -> None:
        """A gateway entry is durable at ``index`` (its canonical bytes)."""
        ...
