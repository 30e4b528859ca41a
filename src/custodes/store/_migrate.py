"""Alembic migrations, run programmatically (no alembic.ini to find).

The migration scripts under ``migrations/versions/`` are self-contained (``op.create_table``
with their own columns), so upgrading needs no table definitions and ``store`` imports no
domain package: each package defines its tables on :data:`custodes.store.metadata` and has an
Alembic branch of its own. ``metadata`` holds a package's tables once that package is imported;
only comparing the schema with the definitions (autogenerate, the migration tests) needs them
all, and the caller that wants that imports the packages first.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from custodes.errors import StoreError
from custodes.store._metadata import metadata

__all__ = ["alembic_config", "current_heads", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that migrates ``engine`` against :data:`metadata`.

    Args:
        engine: the database to migrate; ``migrations/env.py`` takes it from the configuration
            rather than from a URL, so the caller's engine (and its pragmas) is the one used.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["target_metadata"] = metadata
    return cfg


def migrate(engine: Engine, *, branch: str | None = None) -> None:
    """Upgrade the database to every branch's head, or to one branch's head only.

    Args:
        engine: the database to upgrade.
        branch: an Alembic branch label (a package name, such as ``"witness"``) to upgrade
            only that package's tables, as a witness does in its own database; ``None``
            upgrades every branch.

    Raises:
        StoreError: the database cannot be reached, a migration fails, or ``branch`` names no
            branch.
    """
    target = "heads" if branch is None else f"{branch}@head"
    what = "the database" if branch is None else f"the {branch} tables of the database"
    try:
        command.upgrade(alembic_config(engine), target)
    except OperationalError as exc:
        raise StoreError(f"cannot migrate {what}: {exc.orig}") from exc
    except CommandError as exc:
        # An unknown branch label: name the branches that exist, so the caller can fix the call.
        raise StoreError(f"cannot migrate {what}: {exc}") from exc


def current_heads(engine: Engine) -> set[str]:
    """The Alembic revisions the database is at (one per migrated branch).

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
