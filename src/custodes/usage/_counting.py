"""Which log entries count as use of a tier, and as whose: the one definition both the live
ledger and a recomputation from the log apply.

A ``gateway.call/v1`` entry counts when the model was used: the call was answered, or a stream
was cut by a monitor or abandoned by its client after the upstream began answering (tokens
were spent either way). Refusals, blocks before the upstream and upstream errors do not. The
call counts as the use of the person at the end of its recorded on-behalf-of chain; an entry
recorded without one (before custodes.usage was in front of the gateway) counts as the use of
its principal's person in the constitution in force. Tokens are ``total_tokens``, else prompt
plus completion tokens, else zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from custodes.usage._ledger import Counted

__all__ = ["GATEWAY_CALL", "USE_OUTCOMES", "Resolve", "count_entry", "entry_time"]

GATEWAY_CALL = "gateway.call/v1"
"""The gateway's call entry type (custodes.gateway records it; usage sits below the gateway
and reads entries by their type name, the log's wire format)."""

USE_OUTCOMES = frozenset({"answered", "cut", "abandoned"})

# (principal) -> (person, organisation) for entries recorded without a chain.
Resolve = Callable[[str], tuple[str, str]]

_CALL_MARK = b'"type":"gateway.call/v1"'


def entry_time(text: str) -> float:
    """POSIX seconds of an entry's RFC 3339 ``...Z`` time (the log's one time format)."""
    return datetime.fromisoformat(text).timestamp()


def count_entry(index: int, data: bytes, resolve: Resolve) -> Counted | None:
    """The use an entry counts as, or ``None`` if it counts as none."""
    if _CALL_MARK not in data:  # cheap: most entries of a busy log are not calls
        return None
    try:
        entry: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or entry.get("type") != GATEWAY_CALL:
        return None
    body = entry.get("body")
    if not isinstance(body, dict) or body.get("outcome") not in USE_OUTCOMES:
        return None
    capability = body.get("capability")
    if not isinstance(capability, str):
        return None
    chain = body.get("on_behalf_of")
    if isinstance(chain, dict):
        person, organisation = str(chain.get("person")), str(chain.get("organisation"))
    else:
        person, organisation = resolve(str(entry.get("principal")))
    total = body.get("total_tokens")
    if not isinstance(total, int):
        parts = [body.get("prompt_tokens"), body.get("completion_tokens")]
        total = sum(p for p in parts if isinstance(p, int))
    return Counted(
        index=index,
        time=entry_time(str(entry["time"])),
        capability=capability,
        person=person,
        organisation=organisation,
        tokens=max(0, total),
    )
