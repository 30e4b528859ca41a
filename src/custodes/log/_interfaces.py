"""The narrow interfaces other components depend on: appending to the log, and reading it.

A component that records what it does (the authority, custody, monitors, the gateway) needs only
:class:`LogWriter`; one that serves or checks the log (routes, receipts, the witness publisher)
needs :class:`LogReader`. The composition root hands each the :class:`TransparencyLog` typed as
the one it needs, so mypy sees every call and a test can pass a small fake of just that role.
:class:`~custodes.log.TransparencyLog` satisfies both.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal, Protocol, overload, runtime_checkable

from custodes.log._checkpoint import SignedCheckpoint
from custodes.log._entry import Entry

__all__ = ["Appended", "LogReader", "LogWriter"]


@dataclass(frozen=True)
class Appended:
    """Where an entry landed. Returned only once the entry is durable (invariant 1).

    Attributes:
        index: the entry's index in the log (0-based, consecutive).
        leaf_hash: its RFC 9162 leaf hash, ``SHA-256(0x00 || entry bytes)``.
    """

    index: int
    leaf_hash: bytes


@runtime_checkable
class LogWriter(Protocol):
    """Appends entries to the log: one, or a batch. The only two ways anything writes to it.

    Every append is durable before it is acknowledged, and a log that cannot write (or that
    refuses appends after a failed self-check or an alarm) raises, so "no log, no action" holds
    for every caller.
    """

    def append(self, entry: Entry, *, timeout: float | None = 30.0) -> Appended:
        """Append one entry and wait until it is durable.

        Raises:
            InputError: the entry is too large for a tlog-tiles entry bundle (64 KiB).
            LogWriteError: it could not be made durable; nothing was acknowledged.
        """
        ...

    @overload
    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        timeout: float | None = 30.0,
        wait: Literal[True] = True,
        inline_if_idle: bool = False,
    ) -> list[Appended]: ...

    @overload
    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        wait: Literal[False],
        inline_if_idle: bool = False,
    ) -> Future[list[Appended]]: ...

    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        timeout: float | None = 30.0,
        wait: bool = True,
        inline_if_idle: bool = False,
    ) -> list[Appended] | Future[list[Appended]]:
        """Append entries at consecutive indices, all durable or none.

        With ``wait=False`` it returns a future at once (for callers on an event loop).

        Raises:
            InputError: an entry is too large for a tlog-tiles entry bundle (64 KiB).
            LogWriteError: with ``wait``, the entries could not be made durable.
        """
        ...


@runtime_checkable
class LogReader(Protocol):
    """Reads the log: its size, checkpoints, entries, proofs and tiles (C2SP tlog-tiles)."""

    def size(self) -> int:
        """The integrated size (entries durable in the tree; a checkpoint may lag behind)."""
        ...

    def latest_checkpoint(self, *, fresh: bool = True) -> SignedCheckpoint:
        """The newest signed checkpoint; with ``fresh``, one covering every entry.

        Raises:
            LogWriteError: a needed checkpoint could not be recorded.
        """
        ...

    def checkpoint_text(self) -> str:
        """The newest signed checkpoint note, as served at ``/checkpoint``."""
        ...

    def checkpoint_size(self) -> int:
        """The size of the newest signed checkpoint (0 if there is none)."""
        ...

    def entry_data(self, index: int) -> bytes:
        """The exact canonical bytes of entry ``index``.

        Raises:
            NotFoundError: no such entry.
        """
        ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries ``start <= index < end`` (clipped to the log), as (index, bytes)."""
        ...

    def index_of(self, leaf: bytes) -> int:
        """The first index whose leaf hash is ``leaf``.

        Raises:
            NotFoundError: no entry has that leaf hash.
        """
        ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``.

        Raises:
            NotFoundError: ``size`` is not a size of this log or ``index`` is not below it.
        """
        ...

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Entry ``index``'s leaf hash and its inclusion proof in the tree of ``size``.

        Raises:
            NotFoundError: ``size`` is not a size of this log or ``index`` is not below it.
        """
        ...

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2``.

        Raises:
            NotFoundError: ``size2`` is not a size of this log, or not ``0 < size1 <= size2``.
        """
        ...

    def root_at(self, size: int) -> bytes:
        """The tree hash at ``size``.

        Raises:
            NotFoundError: ``size`` is not a size of this log.
        """
        ...

    def tile(self, level: int, index: int, width: int = ...) -> bytes:
        """The bytes of hash tile ``level/index`` at ``width``.

        Raises:
            NotFoundError: the log has no such tile (yet).
        """
        ...

    def entry_bundle(self, index: int, width: int = ...) -> bytes:
        """The tlog-tiles entry bundle ``index`` of ``width`` entries.

        Raises:
            NotFoundError: the log does not hold that many entries there (yet).
        """
        ...
