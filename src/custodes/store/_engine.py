"""Engines for SQLite (WAL, durable commits) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from custodes.errors import ConfigError

__all__ = ["create_db_engine", "is_sqlite", "writer"]

_WRITE_OPTION = "custodes_write_lock"


def is_sqlite(engine: Engine) -> bool:
    """Is ``engine`` SQLite (one writer at a time, no ``FOR UPDATE``)?"""
    return engine.dialect.name == "sqlite"


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with custodes' durability settings.

    SQLite gets WAL, ``synchronous=FULL`` (a commit is on disk before it returns: invariant 1
    acknowledges nothing that is not durable), foreign keys and a busy timeout so several
    processes can share one file. PostgreSQL gets ``psycopg`` and a pool.

    Raises:
        ConfigError: the URL cannot be parsed or names an unsupported backend.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database URL {url!r} cannot be parsed",
            hint="use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            # check_same_thread off: the pool hands connections across threads (SQLAlchemy
            # serialises use).
            connect_args={"timeout": 30, "check_same_thread": False},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        # psycopg 3 is the one driver installed; a bare postgresql:// means it.
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        # pre_ping: a connection dropped by a PostgreSQL restart is replaced, not handed out.
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    raise ConfigError(
        f"database backend {backend!r} is not supported",
        hint="custodes stores its data in SQLite or PostgreSQL",
    )


def _configure_sqlite(engine: Engine) -> None:
    """Set every SQLite connection up for a log that must not lose an acknowledged entry.

    WAL lets readers run beside the one writer; ``synchronous=FULL`` syncs the WAL at every
    commit, so an entry acknowledged as durable survives a power loss (in WAL mode NORMAL
    could lose the last commits); foreign keys are off by default in SQLite and turned on;
    a writer waits up to 30 s for the lock instead of failing at once.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is disabled so that SQLAlchemy's BEGIN
        # (emitted below) is the only one, as the SQLAlchemy docs recommend for SQLite.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers (see `writer`) take the write lock at BEGIN, so two processes never both read
        # a log size and then race to append at it; readers stay concurrent under WAL.
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take the database's write lock at BEGIN.

    Use it for read-then-write transactions (the log sequencer): on SQLite it issues
    ``BEGIN IMMEDIATE``; PostgreSQL callers lock rows explicitly (``SELECT ... FOR UPDATE``).
    """
    return engine.execution_options(**{_WRITE_OPTION: True})
