"""Alembic migrations, run programmatically (no alembic.ini to find)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from custodes.errors import StoreError

__all__ = ["alembic_config", "current_heads", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the database to every branch's head.

    Raises:
        StoreError: the database cannot be reached or a migration fails.
    """
    try:
        command.upgrade(alembic_config(engine), "heads")
    except OperationalError as exc:
        raise StoreError(f"cannot migrate the database: {exc.orig}") from exc


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
