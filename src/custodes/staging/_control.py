"""Advancing a staging deployment's clock: who may (whoever holds the deployment's staging-clock
token, the operator's file in its data folder), by how much, what is logged, and which
clock-bound sweeps then run at once.

A staging clock is refused where it could be mistaken for the real time of a real deployment:
with log replicas (each process would keep its own offset, and their entries would disagree),
and with a log whose origin does not say it is a staging or local log (the origin is in every
checkpoint the witnesses cosign, so a staging log can never pass for a production one).
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from custodes.clock import StagingClock
from custodes.errors import ConfigError, Forbidden, InputError
from custodes.log import Entry, TransparencyLog, format_time

__all__ = ["Advanced", "StagingClockControl", "check_staging_allowed", "staging_token"]

_log = logging.getLogger(__name__)

# RFC 6761 / 6762 special-use names: nobody's production log is named under them.
_LOCAL_SUFFIXES = ("local", "localhost", "test", "invalid", "example")
_TOKEN_BYTES = 32


def check_staging_allowed(*, demo: bool, log_origin: str, log_replicas: bool) -> None:
    """Refuse a staging clock on a production-like deployment.

    Raises:
        ConfigError: log replicas are on, or (outside the demo) the log's origin names no
            staging or local log.
    """
    if log_replicas:
        raise ConfigError(
            "staging_clock is refused with log_replicas: each replica would keep its own clock",
            hint="run the staging deployment as one server",
        )
    if demo:
        return
    host, _, path = log_origin.partition("/")
    labels = [*host.lower().split("."), *path.lower().replace("-", "/").split("/")]
    if "staging" in labels or host.lower().split(".")[-1] in _LOCAL_SUFFIXES:
        return
    raise ConfigError(
        f"staging_clock is refused: the log's origin {log_origin!r} does not say it is a "
        "staging log, so its entries could pass for a production deployment's",
        hint="give a staging deployment a log_origin with a 'staging' label "
        "(e.g. staging.example.org/log) or a .local/.test name",
    )


def staging_token(path: Path) -> str:
    """The staging clock's token at ``path``, made (readable only by its owner) if missing.

    Raises:
        ConfigError: the file cannot be read or made, or holds no token.
    """
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = path.open("x", encoding="utf-8")
            path.chmod(0o600)
            with fd:
                fd.write(secrets.token_urlsafe(_TOKEN_BYTES) + "\n")
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"the staging clock's token file {path}: {exc}") from exc
    if len(token) < 32:
        raise ConfigError(f"the staging clock's token file {path} holds no token")
    return token


@dataclass(frozen=True)
class Advanced:
    """The staging clock after an advance.

    Attributes:
        offset: how far ahead of the real clock it is.
        now: the staging clock's time.
        real_time: the real time.
        log_index: the ``staging.clock/v1`` entry (None: only read, not advanced).
    """

    offset: timedelta
    now: datetime
    real_time: datetime
    log_index: int | None = None


class StagingClockControl:
    """Advance a staging deployment's clock, log it, and run the clock-bound sweeps.

    Args:
        clock: the deployment's one clock (a staging clock).
        log: the log the advance is recorded in.
        token: the operator's token, which an advance must present.
        max_step: the most one advance may move the clock.
    """

    def __init__(
        self,
        clock: StagingClock,
        log: TransparencyLog,
        token: str,
        *,
        max_step: timedelta = timedelta(days=60),
    ) -> None:
        self.clock = clock
        self._log = log
        self._token = token
        self._max_step = max_step
        self._sweeps: list[tuple[str, Callable[[], object]]] = []

    def on_advance(self, name: str, sweep: Callable[[], object]) -> None:
        """Run ``sweep`` after every advance: a clock-bound control records what is now due
        at once, as its periodic run would have (``name`` says which in the server's log)."""
        self._sweeps.append((name, sweep))

    def state(self) -> Advanced:
        """Where the staging clock stands now."""
        real = self.clock.real_now()
        return Advanced(offset=self.clock.offset, now=self.clock.now(), real_time=real)

    def advance(self, by: timedelta, *, token: str, reason: str = "") -> Advanced:
        """Move the clock ``by`` ahead (logged first), then run every registered sweep.

        Raises:
            Forbidden: ``token`` is not the deployment's staging-clock token.
            InputError: ``by`` is not positive, is longer than one advance may be, would take
                the clock past its limit, or ``reason`` is too long.
            LogWriteError: the advance could not be logged (the clock does not move).
        """
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            raise Forbidden(
                "not the staging clock's token",
                where="Authorization",
                expected="Bearer <the token in the deployment's staging-clock.token file>",
            )
        if by <= timedelta(0) or by > self._max_step:
            raise InputError(
                "the staging clock moves forward by a positive duration",
                where="advance",
                expected=f"at most {self._max_step} at a time",
                actual=str(by),
            )
        if self.clock.offset + by > self.clock.max_offset:
            raise InputError(
                f"the staging clock may run at most {self.clock.max_offset} ahead",
                where="advance",
                actual=f"{self.clock.offset} ahead now",
            )
        if len(reason) > 500:
            raise InputError("reason too long", where="reason", expected="at most 500 characters")
        real = self.clock.real_now()
        after = self.clock.offset + by
        # Logged first (no log, no action), under the time the clock will show: the entry is
        # marked as a staging clock's like every entry after it.
        appended = self._log.append(
            Entry.create(
                "staging.clock/v1",
                time=real + after,
                principal="custodes",
                body={
                    "advanced_seconds": math.ceil(by.total_seconds()),
                    "offset_seconds": math.ceil(after.total_seconds()),
                    "real_time": format_time(real),
                    "reason": reason,
                },
            ).on_staging_clock(math.ceil(after.total_seconds()))
        )
        offset = self.clock.advance(by)
        _log.warning(
            "STAGING CLOCK advanced by %s: now %s ahead of the real time (log index %d)",
            by,
            offset,
            appended.index,
        )
        for name, sweep in self._sweeps:
            try:
                sweep()
            except Exception:  # a sweep that fails still leaves its periodic run to retry
                _log.exception("the %s sweep after the staging clock's advance failed", name)
        return Advanced(
            offset=offset,
            now=self.clock.now(),
            real_time=self.clock.real_now(),
            log_index=appended.index,
        )
