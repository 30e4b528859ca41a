"""The base every component is built on: settings, the migrated database, the log, the clock."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from custodes.clock import Clock, StagingClock
from custodes.config import Settings
from custodes.errors import ConfigError, InputError, LogIntegrityError
from custodes.log import NoteSigner, TransparencyLog
from custodes.staging import check_staging_allowed, follow_log
from custodes.store import create_db_engine, migrate

__all__ = ["Core", "load_or_create_log_key", "open_core", "write_private_file"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Core:
    """What every component of one deployment shares.

    Attributes:
        settings: the deployment's settings.
        engine: the migrated database.
        log: the running transparency log (its sequencer started).
        clock: the one clock (invariant 6: tests control it).
    """

    settings: Settings
    engine: Engine
    log: TransparencyLog
    clock: Clock

    def close(self) -> None:
        """Drain and stop the log's sequencer, then close the database's connections."""
        self.log.close()
        self.engine.dispose()


def load_or_create_log_key(settings: Settings) -> NoteSigner:
    """Read the log's signing key; generate one only in the demo.

    Raises:
        ConfigError: no key file outside the demo, the file is malformed, or it is named for
            another origin than ``log_origin``.
    """
    path = settings.resolved_log_key_file
    if not path.exists():
        if not settings.demo:
            raise ConfigError(
                f"log signing key {path} does not exist",
                hint="create one with `custodes log keygen`, or run with --demo",
            )
        signer = NoteSigner.generate(settings.log_origin)
        write_private_file(path, signer.to_key() + "\n")
        _log.warning("generated a new log signing key at %s (demo)", path)
        return signer
    try:
        signer = NoteSigner.from_key(path.read_text())
    except InputError as exc:
        raise ConfigError(f"log signing key {path} is malformed: {exc.message}") from exc
    if signer.name != settings.log_origin:
        raise ConfigError(
            f"log signing key {path} is named {signer.name!r}, "
            f"but log_origin is {settings.log_origin!r}"
        )
    return signer


def write_private_file(path: Path, text: str) -> None:
    """Create ``path`` readable only by its owner.

    Raises:
        FileExistsError: the file exists (a key is never overwritten).
        OSError: it cannot be created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def open_core(settings: Settings, *, clock: Clock | None = None) -> Core:
    """Open the database (migrating it), the log and its key, and start the log's sequencer.

    Raises:
        ConfigError: the log's key is missing or malformed.
        StoreError: the database cannot be opened or migrated.
    """
    if clock is None and settings.staging_clock:
        check_staging_allowed(
            demo=settings.demo, log_origin=settings.log_origin, log_replicas=settings.log_replicas
        )
        _log.warning(
            "STAGING CLOCK ON: the operator may advance this deployment's clock; every entry "
            "made while it runs ahead is marked staging_clock in the log. Never in production."
        )
    own_clock = clock is None
    if clock is None:
        # A deployment's time is where its log left it: a log that ran ahead on a staging
        # clock is never appended to behind its newest entry (by a restarted server, or by a
        # CLI command writing records itself while the server's clock runs ahead). On a log
        # that never ran ahead this clock is the real one.
        clock = StagingClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if settings.log_replicas and not url.startswith("postgresql"):
        raise ConfigError(
            "log_replicas needs PostgreSQL: replicas share one database, "
            f"and database_url is {url.split(':', 1)[0]}"
        )
    engine = create_db_engine(url)
    migrate(engine)
    signer = load_or_create_log_key(settings)
    log = TransparencyLog(
        engine,
        signer,
        clock=clock,
        batch_max=settings.log_batch_max,
        batch_wait=settings.log_batch_wait_ms / 1000,
        checkpoint_interval=settings.log_checkpoint_interval_ms / 1000,
        replicas=settings.log_replicas,
        leader_poll=settings.log_leader_poll_ms / 1000,
    )
    if own_clock:
        try:
            ahead = follow_log(clock, log)
        except LogIntegrityError as exc:
            # The log's own self-check at start judges a damaged log (it halts appends).
            _log.error("cannot read the staging clock's mark from the log: %s", exc.message)
            ahead = timedelta(0)
        if ahead > timedelta(0) and not settings.staging_clock:
            _log.warning(
                "this deployment's log ran on a staging clock %s ahead of the real time: its "
                "clock stays that far ahead (time never runs backwards for the log)",
                ahead,
            )
    log.start()
    return Core(settings=settings, engine=engine, log=log, clock=clock)
