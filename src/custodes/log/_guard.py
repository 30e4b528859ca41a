"""What makes the log refuse appends: a failed self-check, or an alarm an operator must clear.

Trillian refuses to integrate when its stored tree does not match its last signed root; custodes
does the same. The :class:`WriteGuard` runs the self-check (:mod:`custodes.log._selfcheck`)
before the first write in a process, and halts appends for good once the stored tree disagrees
with itself or with what the log signed, or once a witness raises an alarm (a split view, a
checkpoint it cannot prove consistent). Reads go on being served, so the log can be inspected.
Only ``custodes log unsafe-resume`` lifts an alarm's halt; a failed self-check stays until the
store is repaired and the process restarted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock
from custodes.errors import LogIntegrityError, LogWriteError
from custodes.log._note import NoteVerifier
from custodes.log._selfcheck import SelfCheck, self_check
from custodes.log._tables import log_alarms, log_state
from custodes.store import writer

__all__ = ["KnownSize", "WriteGuard"]

_log = logging.getLogger(__name__)


class KnownSize:
    """A lower bound on the log's integrated size, shared by its writer and reader.

    Sizes only grow, so a stored size below it means entries were removed (truncation or a
    restored backup); and a proof for a size below it needs no database read to be in range.
    """

    def __init__(self) -> None:
        self.value = 0

    def raise_to(self, size: int) -> None:
        """Record that the log has reached ``size`` (a smaller value changes nothing)."""
        if size > self.value:
            self.value = size


class WriteGuard:
    """Decides whether this process may write to the log, and records why not.

    Args:
        engine: the log's database.
        verifier: the log's checkpoint verifier key (the self-check checks signatures).
        clock: the time source of alarm records.
        known: the shared lower bound on the size, raised by every passing self-check.
        on_halt: called whenever appends are halted (the writer drops its cached right edge,
            so nothing built before the halt is reused after an operator resumes).

    The caller serialises :meth:`check` with writing (the writer's lock): a self-check reads
    several rows and must not see a half-integrated batch of this process.
    """

    def __init__(
        self,
        engine: Engine,
        verifier: NoteVerifier,
        clock: Clock,
        known: KnownSize,
        *,
        on_halt: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.clock = clock
        self.known = known
        self.on_halt = on_halt
        self.checked = False  # the self-check passed in this process
        self.reason: str | None = None  # why appends are refused, once they are
        self.alarm = False  # the halt is an alarm an operator may resolve

    @property
    def halted(self) -> str | None:
        """Why appends are refused, or None; an alarm's halt is lifted once it is resolved."""
        if self.reason is not None and self.alarm:
            self._recheck_alarms()
        return self.reason

    def check(self) -> SelfCheck:
        """Run the self-check now; halt appends if it fails (the caller holds the write lock).

        Raises:
            LogIntegrityError: the stored log disagrees with itself or with what it signed, or
                an alarm is unresolved.
            LogWriteError: the database could not be read.
        """
        try:
            result = self_check(self.engine, self.verifier)
        except LogIntegrityError as exc:
            # The self-check reports an unresolved alarm as "alarm #N: ...": that halt is one
            # an operator may lift, unlike a tree that disagrees with itself.
            self.halt(exc.message, alarm=exc.message.startswith("alarm #"))
            raise
        except SQLAlchemyError as exc:
            raise LogWriteError(f"the log's self-check could not read the store: {exc}") from exc
        self.checked = True
        self.known.raise_to(result.size)
        _log.info(
            "log self-check passed: size %d, newest checkpoint %d, %d checkpoints, %.1f ms",
            result.size,
            result.checkpoint_size,
            result.checkpoints,
            result.seconds * 1000,
        )
        return result

    def halt(self, reason: str, *, alarm: bool = False) -> None:
        """Refuse every append from now on, saying ``reason`` (logged as CRITICAL once)."""
        if self.reason is None:
            _log.critical("the log REFUSES APPENDS: %s", reason)
        self.reason = reason
        self.alarm = alarm
        self.on_halt()

    def refuse_if_halted(self) -> None:
        """Check the store first if this process has not yet; then refuse if halted.

        Raises:
            LogWriteError: the log refuses appends (the reason is in the message).
        """
        if not self.checked and self.reason is None:
            # A failure halts (and is logged) inside check; the refusal below reports it.
            with contextlib.suppress(LogIntegrityError):
                self.check()
        reason = self.halted
        if reason is not None:
            raise LogWriteError(
                f"the log refuses appends: {reason}",
                hint="nothing was written; run `custodes log verify`, and see "
                "docs/verify-the-log.md (Self-check and alarms)",
            )

    def _recheck_alarms(self) -> None:
        """Lift an alarm's halt once ``custodes log unsafe-resume`` has resolved it."""
        try:
            with self.engine.connect() as conn:
                open_alarm = conn.execute(
                    select(log_alarms.c.id).where(log_alarms.c.resolved_at.is_(None)).limit(1)
                ).first()
        except SQLAlchemyError:
            return  # still halted: an unreadable store is no reason to resume
        if open_alarm is None:
            _log.critical("alarms resolved by an operator: the log accepts appends again")
            self.reason = None
            self.alarm = False
            self.checked = False  # check again before the next write

    def raise_alarm(
        self,
        kind: str,
        detail: str,
        *,
        witness: str | None = None,
        witness_size: int | None = None,
    ) -> bool:
        """Stop appends and record an alarm that only ``custodes log unsafe-resume`` clears.

        An alarm an operator already resolved (same kind and witness size: the same condition,
        whichever witness reports it) is not raised again.

        Args:
            kind: what was seen (e.g. ``split-view``).
            detail: the evidence, for the operator.
            witness: the witness that reported it, if one did.
            witness_size: the tree size the witness holds, if it reported one.

        Returns:
            Whether the log is now halted by it.

        Raises:
            LogWriteError: the alarm could not be recorded (appends are halted anyway).
        """
        size = self.known.value
        try:
            with writer(self.engine).begin() as conn:
                # One alarm transaction at a time (PostgreSQL row lock; SQLite's writer lock
                # already serialises), so witnesses reporting together record one alarm.
                conn.execute(select(log_state.c.id).where(log_state.c.id == 1).with_for_update())
                same = conn.execute(
                    select(log_alarms.c.id, log_alarms.c.resolved_at)
                    .where(
                        log_alarms.c.kind == kind,
                        log_alarms.c.witness_size.is_(None)
                        if witness_size is None
                        else log_alarms.c.witness_size == witness_size,
                    )
                    .order_by(log_alarms.c.id.desc())
                    .limit(1)
                ).first()
                if same is not None and same.resolved_at is not None:
                    return False  # accepted by an operator (custodes log unsafe-resume)
                if same is None:
                    conn.execute(
                        insert(log_alarms).values(
                            kind=kind,
                            detail=detail,
                            log_size=size,
                            witness=witness,
                            witness_size=witness_size,
                            raised_at=self.clock.now(),
                        )
                    )
                alarm_id = same.id if same is not None else None
        except SQLAlchemyError as exc:
            # Fail closed: an alarm that cannot be recorded still stops appends here.
            self.halt(detail, alarm=True)
            raise LogWriteError(f"cannot record the log alarm: {exc}") from exc
        self.halt(f"alarm{'' if alarm_id is None else f' #{alarm_id}'}: {detail}", alarm=True)
        return True
