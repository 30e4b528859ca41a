"""Start a deployment's authority: load the stored constitution, or adopt the configured file."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine

from custodes.authority._service import Authority
from custodes.clock import Clock
from custodes.config import Settings
from custodes.constitution import Constitution, newest_document, read_constitution
from custodes.errors import ConfigError
from custodes.log import TransparencyLog

__all__ = ["current_constitution", "demo_constitution_path", "start_authority"]

_log = logging.getLogger(__name__)


def demo_constitution_path() -> Path | None:
    """``examples/constitution.yaml`` of the working directory or of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base / "examples" / "constitution.yaml"
        if candidate.is_file():
            return candidate
    return None


def _configured_file(settings: Settings) -> Path | None:
    """``constitution_file``, or in the demo ``examples/constitution.yaml``."""
    path: Path | None = settings.constitution_file
    if path is None and settings.demo:
        path = demo_constitution_path()
    return path


def start_authority(
    settings: Settings, *, engine: Engine, log: TransparencyLog, clock: Clock
) -> Authority:
    """Build a deployment's authority over its database and log.

    The database's newest constitution wins; only an empty database adopts
    ``settings.constitution_file`` (or, in the demo, ``examples/constitution.yaml``) as
    version 1. With neither, the authority denies everything until one is loaded.

    Raises:
        ConfigError: the configured file is missing.
        ConstitutionError: the file is refused.
        LogWriteError: the adoption of version 1 could not be logged.
    """
    authority = Authority(engine, log, clock=clock)
    path = _configured_file(settings)
    initial = None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"constitution file {path} does not exist")
        initial = read_constitution(path)
    active = authority.start(initial, source=str(path or ""))
    if active is None:
        _log.warning("no constitution loaded: every authorization is denied")
    elif initial is not None and initial.digest != active.digest:
        _log.warning(
            "the database holds constitution version %d; %s is ignored (amend it "
            "with `custodes constitution propose`)",
            active.version,
            path,
        )
    return authority


def current_constitution(settings: Settings, engine: Engine) -> Constitution | None:
    """The constitution a server on ``engine`` runs under, read without adopting anything: the
    database's newest version, else the configured file (the demo's in the demo), else None.

    Raises:
        ConfigError: the configured file is missing.
        ConstitutionError: the stored version or the file is refused.
    """
    stored = newest_document(engine)
    if stored is not None:
        return read_constitution(stored.document, name=f"stored version {stored.version}")
    path = _configured_file(settings)
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"constitution file {path} does not exist")
    return read_constitution(path)
