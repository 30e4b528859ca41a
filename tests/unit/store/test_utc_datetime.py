"""UtcDateTime: aware UTC in, aware UTC out, the same SQL type as DateTime(timezone=True)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from custodes.store import UtcDateTime, create_db_engine

_PLUS_5 = timezone(timedelta(hours=5, minutes=30))


def _table(engine: Engine) -> tuple[sa.Table, sa.Table]:
    md = sa.MetaData()
    typed = sa.Table(
        "times", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UtcDateTime())
    )
    # The same table read through the plain column type: what is actually stored.
    raw = sa.Table(
        "times",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True)),
    )
    md.create_all(engine)
    return typed, raw


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


def test_a_time_in_any_zone_is_stored_as_its_utc_instant_and_read_back_aware_utc(
    db: Engine,
) -> None:
    typed, raw = _table(db)
    local = datetime(2026, 11, 22, 17, 30, 0, 123456, tzinfo=_PLUS_5)
    with db.begin() as conn:
        conn.execute(typed.insert().values(id=1, at=local))
        conn.execute(typed.insert().values(id=2, at=None))
    with db.connect() as conn:
        got = conn.execute(sa.select(typed.c.at).where(typed.c.id == 1)).scalar_one()
        stored = conn.execute(sa.select(raw.c.at).where(raw.c.id == 1)).scalar_one()
        none = conn.execute(sa.select(typed.c.at).where(typed.c.id == 2)).scalar_one()
    assert got == local
    assert got.tzinfo is UTC
    assert got.isoformat() == "2026-11-22T12:00:00.123456+00:00"
    # What the plain type reads is the UTC wall time (naive on SQLite, aware on PostgreSQL).
    assert stored.replace(tzinfo=None) == datetime(2026, 11, 22, 12, 0, 0, 123456)
    assert stored.tzinfo is None or stored.utcoffset() is not None
    assert none is None


def test_comparisons_bind_through_the_type(db: Engine) -> None:
    typed, _ = _table(db)
    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    with db.begin() as conn:
        conn.execute(typed.insert().values(id=1, at=at))
    just_after_in_another_zone = (at + timedelta(microseconds=1)).astimezone(_PLUS_5)
    with db.connect() as conn:
        found = conn.execute(
            sa.select(typed.c.id).where(typed.c.at < just_after_in_another_zone)
        ).all()
        not_found = conn.execute(
            sa.select(typed.c.id).where(typed.c.at > just_after_in_another_zone)
        ).all()
    assert [r.id for r in found] == [1]
    assert not_found == []


def test_a_naive_time_is_refused_and_nothing_is_written(db: Engine) -> None:
    typed, _ = _table(db)
    with pytest.raises(StatementError, match="naive datetime"), db.begin() as conn:
        conn.execute(typed.insert().values(id=1, at=datetime(2026, 11, 22, 12, 0)))
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(typed)).scalar() == 0


def test_the_sql_type_is_datetime_with_time_zone(db: Engine) -> None:
    # Same DDL as DateTime(timezone=True): swapping the type in needs no migration.
    typed_ddl = str(sa.schema.CreateTable(_table(db)[0]).compile(db))
    plain = sa.Table(
        "times",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True)),
    )
    assert typed_ddl == str(sa.schema.CreateTable(plain).compile(db))
