"""What the log page shows: the newest checkpoint as served, its cosignatures, and a window of
entries (newest first) filtered by type, read through the log's own methods.

The page shows what the server says; static/verify.js checks it in the browser against keys
the overseer configured, so a lying server is caught by the page instead of believed by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custodes.errors import Error, InputError
from custodes.log import Entry
from custodes.wiring import Deployment

__all__ = ["EntryRow", "LogView", "log_view"]

WINDOW = 500  # entries scanned per page: a type filter looks at this many, newest first
_SHOWN = 50
_MAX_TYPE = 128


@dataclass(frozen=True)
class EntryRow:
    """One log entry as the page lists it (a summary of its body, never all of it)."""

    index: int
    type: str
    time: datetime | None
    principal: str
    summary: str


@dataclass(frozen=True)
class LogView:
    """Everything the log page shows: the checkpoint as served, its cosignatures, a window."""

    origin: str
    size: int
    checkpoint_text: str
    log_key: str
    cosigned_size: int | None
    cosigners: tuple[str, ...]
    quorum: str | None
    quorum_met: bool
    witness_keys: tuple[str, ...]  # the constitution's witness vkeys, to compare out of band
    entries: tuple[EntryRow, ...]
    entry_type: str | None
    window_start: int  # the scanned window is [window_start, window_end)
    window_end: int
    types_seen: tuple[str, ...]
    target: int | None = None  # the entry a link from another page points at, marked


def _summary(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    parts = [f"{k}={v}" for k, v in body.items() if isinstance(v, str | int) and len(str(v)) < 80]
    text = ", ".join(parts[:4])
    return text if len(text) <= 200 else text[:199] + "…"


def log_view(
    ctx: Deployment,
    *,
    entry_type: str | None = None,
    before: int | None = None,
    index: int | None = None,
) -> LogView:
    """The log page's content: entries of ``entry_type`` (any type when None) among the
    :data:`WINDOW` entries below index ``before`` (default: the log's size).

    Args:
        ctx: the deployment.
        entry_type: show only entries of this type.
        before: the window ends below this index.
        index: one entry to show and mark (a link from another page to the entry that
            records an object): the window is the one that ends with it, unless ``before``
            says otherwise.

    Raises:
        InputError: ``entry_type`` is over 128 characters, ``before`` or ``index`` is
            negative, or ``index`` is not below the log's size.
    """
    if entry_type is not None and len(entry_type) > _MAX_TYPE:
        raise InputError("the entry type is too long", where="type", expected="<= 128 chars")
    if before is not None and before < 0:
        raise InputError("before must not be negative", where="before", actual=str(before))
    if index is not None and index < 0:
        raise InputError("index must not be negative", where="index", actual=str(index))
    log = ctx.log
    text = log.checkpoint_text()
    size = log.checkpoint_size()
    limit = size
    if index is not None:
        # A link from another page may name an entry appended a moment ago that no
        # checkpoint covers yet (checkpoints follow appends): show it, marked as such.
        limit = max(size, log.size())
        if index >= limit:
            raise InputError(
                f"there is no entry {index}: the log has {limit} entries",
                where="index",
                expected=f"0 to {limit - 1}",
                actual=str(index),
            )
        if before is None:
            before = index + 1
    end = size if before is None else min(before, limit)
    start = max(0, end - WINDOW)
    rows: list[EntryRow] = []
    types: set[str] = set()
    for at, data in reversed(log.entries(start, end)):
        try:
            entry = Entry.from_json(data)
        except Error:
            rows.append(EntryRow(at, "(not a custodes entry)", None, "", f"{len(data)} bytes"))
            continue
        types.add(entry.type)
        if entry_type is None or entry.type == entry_type:
            if len(rows) < _SHOWN:
                rows.append(
                    EntryRow(at, entry.type, entry.time, entry.principal, _summary(entry.body))
                )
    publisher = ctx.witness
    cosigned = None
    quorum = None
    if publisher is not None:
        quorum = publisher.policy.describe()
        try:
            cosigned = publisher.cosigned(require_quorum=False)
        except Error:
            cosigned = None
    witness_keys: tuple[str, ...] = ()
    try:
        constitution = ctx.authority.constitution
        witness_keys = tuple(w.key for w in constitution.witnesses.witnesses)
    except Error:
        pass  # none loaded: no witness keys to show
    return LogView(
        origin=log.origin,
        size=size,
        checkpoint_text=text,
        log_key=log.signer.verifier.to_key(),
        cosigned_size=cosigned.checkpoint.checkpoint.size if cosigned else None,
        cosigners=cosigned.witnesses if cosigned else (),
        quorum=quorum,
        quorum_met=bool(cosigned and cosigned.quorum_met),
        witness_keys=witness_keys,
        entries=tuple(rows),
        entry_type=entry_type,
        window_start=start,
        window_end=end,
        types_seen=tuple(sorted(types)),
        target=index,
    )
