"""What the log page shows: the newest checkpoint as served, its cosignatures, and entries
(newest first) searched by type, principal, organisation and time, read through the log's own
methods.

The log has no index by principal or type (it is an append-only Merkle tree of opaque leaves).
The dashboard keeps one of its own (:class:`~custodes.dashboard._log_index.LogIndex`, derived
from the entries); entries it does not cover yet are scanned backwards, at most :data:`SCAN`
per page, and the page says which range it looked at and links to the next older one. A time
bound is found by binary search over entry times (entries are appended in time order: each
carries its append time), so "until" costs ~log2(size) reads, not a scan.

The page shows what the server says; static/verify.js checks it in the browser against keys
the overseer configured (the checkpoint, its consistency with the last one seen, and that every
entry shown is in it, from the entry's raw bytes), so a lying server is caught by the page
instead of believed by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from custodes.dashboard._log_index import LogIndex
from custodes.errors import Error, InputError
from custodes.log import Entry, format_time
from custodes.wiring import Deployment

__all__ = ["EntryRow", "LogQuery", "LogView", "log_view", "older_href"]

WINDOW = 500  # entries read from the log at a time
SCAN = 5000  # entries a search looks at per page, newest first, before it says "older"
_SHOWN = 50
_MAX_TYPE = 128
_MAX_NAME = 256


@dataclass(frozen=True)
class LogQuery:
    """What the overseer searches the log for (every field optional; all must match).

    Attributes:
        type: the entry type, exactly (``authority.approval/v1``) or a prefix ending in ``.``
            or ``/`` (``authority.``).
        principal: who made the entry.
        organisation: the organisation of who made it (under the constitution in force), or
            named in its body's ``organisation`` field.
        since: entries at or after this time.
        until: entries at or before this time.
        about: an id (a request's, grant's, finding's, detection's...): entries whose body
            names it in a top-level field (``id``, ``request_id``, ``finding_id``...) or list.
            What other pages link to, so that every object leads to the entries recording it.
    """

    type: str | None = None
    principal: str | None = None
    organisation: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    about: str | None = None

    def params(self) -> dict[str, str]:
        """The query as the page's URL parameters (times RFC 3339, UTC)."""
        out = {
            "type": self.type,
            "principal": self.principal,
            "organisation": self.organisation,
            "since": format_time(self.since) if self.since else None,
            "until": format_time(self.until) if self.until else None,
            "about": self.about,
        }
        return {k: v for k, v in out.items() if v is not None}

    @property
    def any(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in self.__dict__.values())

    def matches(self, entry: Entry, organisation_of: Mapping[str, str]) -> bool:
        """Whether ``entry`` matches every filter set."""
        if self.type is not None and not (
            entry.type == self.type
            or (self.type.endswith((".", "/")) and entry.type.startswith(self.type))
        ):
            return False
        if self.principal is not None and entry.principal != self.principal:
            return False
        if self.organisation is not None:
            body = entry.body if isinstance(entry.body, Mapping) else {}
            if (
                organisation_of.get(entry.principal) != self.organisation
                and body.get("organisation") != self.organisation
            ):
                return False
        if self.since is not None and entry.time < self.since:
            return False
        if self.until is not None and entry.time > self.until:
            return False
        return self.about is None or _names(entry.body, self.about)


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
    # The witness policy the log publishes with (C2SP tlog-policy text), to compare with the
    # one the overseer got out of band; None: it publishes to no witnesses.
    witness_policy: str | None
    entries: tuple[EntryRow, ...]
    entry_type: str | None
    query: LogQuery
    window_start: int  # the scanned window is [window_start, window_end)
    window_end: int
    types_seen: tuple[str, ...]
    more: bool  # older entries may still match (the page links to them)
    organisations: tuple[str, ...] = ()  # the constitution's, for the search form
    target: int | None = None  # the entry a link from another page points at, marked


def _names(body: Any, about: str) -> bool:
    """Whether a top-level field of ``body`` is ``about``, or a list holding it."""
    if not isinstance(body, Mapping):
        return False
    return any(v == about or (isinstance(v, list) and about in v) for v in body.values())


def _summary(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    parts = [f"{k}={v}" for k, v in body.items() if isinstance(v, str | int) and len(str(v)) < 80]
    text = ", ".join(parts[:4])
    return text if len(text) <= 200 else text[:199] + "…"


def log_view(
    ctx: Deployment,
    *,
    query: LogQuery | None = None,
    before: int | None = None,
    index: int | None = None,
    search_index: LogIndex | None = None,
) -> LogView:
    """The log page's content: up to 50 entries matching ``query``, newest first, among at
    most :data:`SCAN` entries below index ``before`` (default: the log's size, or the
    first entry after ``query.until``).

    Args:
        ctx: the deployment.
        query: what to search for (default: everything).
        before: the scan starts below this index.
        index: one entry to show and mark (a link from another page to the entry that
            records an object): the window is the one that ends with it, unless ``before``
            says otherwise.
        search_index: the dashboard's index of the log: a search scans only the entries it
            does not cover yet (after bringing it up to date by a bounded step) and finds
            the rest through it, each candidate read from the log and checked again.

    Raises:
        InputError: the type is over 128 characters or a name over 256, ``since`` is after
            ``until``, ``before`` or ``index`` is negative, or ``index`` is not below the
            log's size.
    """
    query = query or LogQuery()
    entry_type = query.type
    if entry_type is not None and len(entry_type) > _MAX_TYPE:
        raise InputError("the entry type is too long", where="type", expected="<= 128 chars")
    for where, name in (
        ("principal", query.principal),
        ("organisation", query.organisation),
        ("about", query.about),
    ):
        if name is not None and len(name) > _MAX_NAME:
            raise InputError(f"the {where} is too long", where=where, expected="<= 256 chars")
    if query.since is not None and query.until is not None and query.since > query.until:
        raise InputError(
            "since is after until", where="since", expected="a time at or before until"
        )
    if before is not None and before < 0:
        raise InputError("before must not be negative", where="before", actual=str(before))
    if index is not None and index < 0:
        raise InputError("index must not be negative", where="index", actual=str(index))
    log = ctx.log
    text = log.checkpoint_text()
    size = log.checkpoint_size()
    # The entries go up to the log's size, not the checkpoint's: an entry appended a moment
    # ago (checkpoints follow appends) is shown at once, marked "not in a checkpoint yet", so
    # what someone just did is on the page as soon as the server says it is done.
    limit = max(size, log.size())
    if index is not None:
        if index >= limit:
            raise InputError(
                f"there is no entry {index}: the log has {limit} entries",
                where="index",
                expected=f"0 to {limit - 1}",
                actual=str(index),
            )
        if before is None:
            before = index + 1
    if before is None and query.until is not None:
        before = _first_after(log, limit, query.until)
    end = limit if before is None else min(before, limit)
    organisation_of: dict[str, str] = {}
    try:
        organisation_of = {p.id: p.organisation for p in ctx.authority.constitution.principals}
    except Error:
        pass  # none loaded: organisations are matched in entry bodies only
    rows: list[EntryRow] = []
    types: set[str] = set()
    start = end  # the scan has looked at [start, end)
    reached_since = False
    budget = SCAN if query.any else WINDOW
    covered = search_index.catch_up() if search_index is not None and query.any else 0
    floor = min(covered, end)  # below it, the index answers the search
    while start > floor and end - start < budget and len(rows) < _SHOWN and not reached_since:
        chunk_start = max(floor, start - WINDOW, end - budget)
        for at, data in reversed(log.entries(chunk_start, start)):
            start = at
            try:
                entry = Entry.from_json(data)
            except Error:
                if not query.any:
                    rows.append(
                        EntryRow(at, "(not a custodes entry)", None, "", f"{len(data)} bytes")
                    )
            else:
                types.add(entry.type)
                if query.since is not None and entry.time < query.since:
                    reached_since = True  # the rest is older (entries are in time order)
                    break
                if query.matches(entry, organisation_of):
                    rows.append(
                        EntryRow(at, entry.type, entry.time, entry.principal, _summary(entry.body))
                    )
            if len(rows) == _SHOWN:
                break
        else:
            start = chunk_start
    if search_index is not None and floor > 0 and start == floor and len(rows) < _SHOWN:
        if not reached_since:
            start = _from_index(log, search_index, query, organisation_of, start, rows, types)
    publisher = ctx.witness
    cosigned = None
    quorum = None
    witness_policy = None
    if publisher is not None:
        policy = publisher.policy
        quorum = policy.describe()
        witness_policy = policy.to_text()
        try:
            cosigned = publisher.cosigned(require_quorum=False)
        except Error:
            cosigned = None
    return LogView(
        origin=log.origin,
        size=size,
        checkpoint_text=text,
        log_key=log.signer.verifier.to_key(),
        cosigned_size=cosigned.checkpoint.checkpoint.size if cosigned else None,
        cosigners=cosigned.witnesses if cosigned else (),
        quorum=quorum,
        quorum_met=bool(cosigned and cosigned.quorum_met),
        witness_policy=witness_policy,
        entries=tuple(rows),
        entry_type=entry_type,
        query=query,
        window_start=start,
        window_end=end,
        types_seen=tuple(sorted(types)),
        more=start > 0 and not reached_since,
        organisations=tuple(sorted(set(organisation_of.values()))),
        target=index,
    )


def _from_index(
    log: Any,
    search_index: LogIndex,
    query: LogQuery,
    organisation_of: Mapping[str, str],
    below: int,
    rows: list[EntryRow],
    types: set[str],
) -> int:
    """Fill ``rows`` (up to 50) with the entries below ``below`` the index finds, each read
    from the log and matched again; the index the next older page starts below (0: none)."""
    wanted = _SHOWN - len(rows)
    members = [p for p, o in organisation_of.items() if o == query.organisation]
    found = search_index.search(
        below=below,
        type=query.type,
        principal=query.principal,
        principals=members,
        organisation=query.organisation,
        since=query.since,
        until=query.until,
        about=query.about,
        limit=wanted + 1,
    )
    for at in found[:wanted]:
        try:
            entry = Entry.from_json(log.entry_data(at))
        except Error:
            continue
        if query.matches(entry, organisation_of):  # the log, not the index, decides
            types.add(entry.type)
            rows.append(EntryRow(at, entry.type, entry.time, entry.principal, _summary(entry.body)))
    return found[wanted - 1] if len(found) > wanted else 0


def _first_after(log: Any, size: int, until: datetime) -> int:
    """The index of the first entry later than ``until`` (``size`` if none): a binary search
    over entry times, which follow the append order."""
    low, high = 0, size
    while low < high:
        mid = (low + high) // 2
        try:
            later = Entry.from_json(log.entry_data(mid)).time > until
        except Error:
            later = False  # not a custodes entry: no time to go by, look further on
        if later:
            high = mid
        else:
            low = mid + 1
    return low


def older_href(view: LogView) -> str:
    """The link to the next older page of the same search."""
    return "/dashboard/log?" + urlencode({**view.query.params(), "before": str(view.window_start)})
