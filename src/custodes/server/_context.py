"""Everything a running server holds, built once from Settings and passed to routes.

Routes read it from ``request.app.state.context``; nothing lives in module globals.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from custodes.clock import Clock, SystemClock
from custodes.config import Settings
from custodes.errors import ConfigError, InputError
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine, migrate

__all__ = ["Context", "build_context", "load_or_create_log_key"]

_log = logging.getLogger(__name__)


@dataclass
class Context:
    """The live parts of a custodes deployment."""

    settings: Settings
    engine: Engine
    log: TransparencyLog
    clock: Clock
    # Components attach their services here by name (e.g. "authority", "gateway").
    services: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for service in reversed(list(self.services.values())):
            closer = getattr(service, "close", None)
            if callable(closer):
                closer()
        self.log.close()
        self.engine.dispose()


def load_or_create_log_key(settings: Settings) -> NoteSigner:
    """Read the log's signing key; generate one only in the demo.

    Raises:
        ConfigError: no key file outside the demo, or the file is malformed.
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
    """Create ``path`` readable only by its owner; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def build_context(settings: Settings, *, clock: Clock | None = None) -> Context:
    """Open the database (migrating it), the log and its key.

    Raises:
        ConfigError, StoreError: the deployment cannot start.
    """
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.resolved_database_url)
    migrate(engine)
    signer = load_or_create_log_key(settings)
    log = TransparencyLog(
        engine,
        signer,
        clock=clock,
        batch_max=settings.log_batch_max,
        batch_wait=settings.log_batch_wait_ms / 1000,
        checkpoint_interval=settings.log_checkpoint_interval_ms / 1000,
    )
    log.start()
    return Context(settings=settings, engine=engine, log=log, clock=clock)
