"""Start the authority inside a server: load the stored constitution, or the configured file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from custodes.authority._service import Authority
from custodes.constitution import Constitution, read_constitution
from custodes.constitution._tables import constitution_versions
from custodes.errors import ConfigError

__all__ = ["current_constitution", "demo_constitution_path", "start_authority"]

_log = logging.getLogger(__name__)


def demo_constitution_path() -> Path | None:
    """``examples/constitution.yaml`` of the working directory or of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base / "examples" / "constitution.yaml"
        if candidate.is_file():
            return candidate
    return None


def start_authority(ctx: Any) -> Authority:
    """Build the authority for a server :class:`~custodes.server.Context`.

    The database's newest constitution wins; only an empty database adopts
    ``settings.constitution_file`` (or, in the demo, ``examples/constitution.yaml``) as
    version 1. With neither, the authority denies everything until one is loaded.

    Raises:
        ConfigError: the configured file is missing.
        ConstitutionError: the file is refused.
    """
    settings = ctx.settings
    authority = Authority(ctx.engine, ctx.log, clock=ctx.clock)
    path: Path | None = settings.constitution_file
    if path is None and settings.demo:
        path = demo_constitution_path()
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


def current_constitution(ctx: Any) -> Constitution | None:
    """The constitution a server on ``ctx`` runs under, read without adopting anything: the
    database's newest version, else the configured file (the demo's in the demo), else None.

    Raises:
        ConfigError: the configured file is missing.
        ConstitutionError: the stored version or the file is refused.
    """
    with ctx.engine.connect() as conn:
        row = conn.execute(
            sa.select(constitution_versions.c.version, constitution_versions.c.document)
            .order_by(constitution_versions.c.version.desc())
            .limit(1)
        ).first()
    if row is not None:
        return read_constitution(row.document, name=f"stored version {row.version}")
    path: Path | None = ctx.settings.constitution_file
    if path is None and ctx.settings.demo:
        path = demo_constitution_path()
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"constitution file {path} does not exist")
    return read_constitution(path)
