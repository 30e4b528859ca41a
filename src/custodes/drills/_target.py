"""The deployment a drill runs against, over HTTP only: its constitution, its log (entries read
and each one proven by its receipt) and the API paths it serves.

Evidence is never taken on the server's word: an entry cited on a scorecard is one whose C2SP
tlog-proof receipt verifies with the log's key against a signed checkpoint, and whose bytes are
the entry the drill read.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from custodes.clock import SystemClock
from custodes.errors import DrillError, Error
from custodes.log import NoteVerifier, canonical_json, leaf_hash, verify_receipt

__all__ = ["LogEntry", "Target"]

_PAGE = 1000  # the most entries GET /log/entries answers at once


@dataclass(frozen=True)
class LogEntry:
    """One entry as read from the log."""

    index: int
    type: str
    principal: str | None
    body: Mapping[str, Any]
    data: bytes

    def mentions(self, needle: str) -> bool:
        """Whether ``needle`` (an id the drill holds) occurs anywhere in the entry."""
        return needle.encode() in self.data


class Target:
    """A running custodes deployment at ``base_url``.

    Args:
        base_url: the server (``http://127.0.0.1:8080``).
        log_key: the log's verifier key, pinned; None fetches it from the server (trust on
            first use, said on the scorecard).
        timeout: per request, in seconds.
    """

    def __init__(self, base_url: str, *, log_key: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._log_key_text = log_key
        self._verifier: NoteVerifier | None = None
        self.log_key_pinned = log_key is not None
        self._paths: frozenset[str] | None = None
        self._real = SystemClock()
        self.clock_offset = timedelta(0)
        """How far the deployment's staging clock runs ahead of the real time (0 on a real
        clock): requests the drill signs are dated by the deployment's time."""

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get_json(self, path: str, **params: Any) -> Any:
        """GET ``path`` and its JSON answer.

        Raises:
            DrillError: the server cannot be reached or answered an error.
        """
        try:
            r = self.http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise DrillError(
                f"cannot reach the deployment at {self.base_url}: {exc}",
                hint="is `custodes serve` running there? (--server URL)",
            ) from None
        if r.status_code >= 400:
            raise DrillError(f"GET {path} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def now(self) -> datetime:
        """The deployment's time: the real time plus its staging clock's offset, as last
        read (:meth:`read_clock`) or set by an advance."""
        return self._real.now() + self.clock_offset

    def read_clock(self) -> timedelta:
        """Read the deployment's staging clock's offset (0 when it has none).

        Raises:
            DrillError: the server cannot be reached or answered an error.
        """
        if self.serves("/staging/clock"):
            shown = self.get_json("/staging/clock")
            self.clock_offset = timedelta(seconds=int(shown["offset_seconds"]))
        return self.clock_offset

    def constitution(self) -> dict[str, Any]:
        """``GET /constitution``: the version in force (``version``, ``document``, ``text``)."""
        shown: dict[str, Any] = self.get_json("/constitution")
        return shown

    def serves(self, path: str) -> bool:
        """Whether the deployment's API has ``path`` (as its OpenAPI document names it)."""
        if self._paths is None:
            self._paths = frozenset(self.get_json("/openapi.json").get("paths", {}))
        return path in self._paths

    @property
    def verifier(self) -> NoteVerifier:
        """The log's verifier key (pinned, or fetched once from ``/log/key``).

        Raises:
            DrillError: the key is not a signed-note verifier key.
        """
        if self._verifier is None:
            text = self._log_key_text
            if text is None:
                try:
                    r = self.http.get("/log/key")
                    r.raise_for_status()
                except httpx.HTTPError as exc:
                    raise DrillError(f"cannot fetch the log's key: {exc}") from None
                text = r.text
            try:
                self._verifier = NoteVerifier.from_key(text.strip())
            except Error as exc:
                raise DrillError(f"the log's key is not a verifier key: {exc.message}") from None
        return self._verifier

    def log_size(self) -> int:
        """The number of entries in the log now (integrated or not, as listed)."""
        start = 0
        while True:
            got = self._page(start)
            if got is None:
                return start
            if len(got) < _PAGE:
                return start + len(got)
            start += _PAGE

    def entries(self, start: int, end: int | None = None) -> Iterator[LogEntry]:
        """Entries from ``start`` (to ``end``, or the end of the log)."""
        while end is None or start < end:
            got = self._page(start, end)
            if not got:
                return
            for item in got:
                yield _entry(item)
            start += len(got)
            if len(got) < _PAGE:
                return

    def _page(self, start: int, end: int | None = None) -> list[dict[str, Any]] | None:
        """One page of ``GET /log/entries`` from ``start`` (None: past the log's end).

        Raises:
            DrillError: the log cannot be read.
        """
        stop = start + _PAGE if end is None else min(end, start + _PAGE)
        try:
            r = self.http.get("/log/entries", params={"start": start, "end": stop})
        except httpx.HTTPError as exc:
            raise DrillError(f"cannot read the log at {self.base_url}: {exc}") from None
        if r.status_code == 404:
            return None
        if r.status_code >= 400:
            raise DrillError(f"GET /log/entries answered {r.status_code}: {r.text[:200]}")
        entries: list[dict[str, Any]] = r.json()["entries"]
        return entries

    def prove(self, entry: LogEntry, *, timeout: float = 30.0) -> str | None:
        """Check that ``entry`` is in the log: its receipt verifies with the log's key.

        The newest checkpoint may not cover a fresh entry yet; the receipt is asked for again
        until one does or ``timeout`` passes.

        Returns:
            None if proven, else why not.
        """
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                r = self.http.get(f"/log/receipt/{entry.index}")
            except httpx.HTTPError as exc:
                return f"no receipt: {exc}"
            if r.status_code == 200:
                try:
                    verified = verify_receipt(r.text, self.verifier, entry_data=entry.data)
                except Error as exc:
                    return f"the receipt does not verify: {exc.message}"
                if verified.index != entry.index:
                    return f"the receipt is for index {verified.index}"
                return None
            if time.monotonic() > deadline:
                return f"no receipt in {timeout:.0f} s: {r.status_code} {r.text[:200]}"
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _entry(item: Mapping[str, Any]) -> LogEntry:
    """One listed entry, with its canonical bytes.

    Raises:
        DrillError: the listed leaf hash is not the hash of those bytes.
    """
    entry = item["entry"]
    # The entry's bytes are its RFC 8785 form; the leaf hash the server listed must match them,
    # and the receipt is checked against these bytes, not against the server's listing.
    data = canonical_json(entry)
    listed = item.get("leaf_hash", "")
    if listed and base64.b64decode(listed) != leaf_hash(data):
        raise DrillError(
            f"log entry {item['index']}: the listed leaf hash is not the hash of its canonical "
            "bytes (the log's listing disagrees with itself)"
        )
    return LogEntry(
        index=int(item["index"]),
        type=str(entry.get("type", "")),
        principal=entry.get("principal"),
        body=entry.get("body") or {},
        data=data,
    )
