"""Column types that hold custodes' invariants at the storage boundary.

:class:`UtcDateTime` is the one datetime column type (ARCHITECTURE.md invariant 6: UTC
everywhere). SQLite has no time zone type: SQLAlchemy writes ``DateTime(timezone=True)`` there as
text without an offset and reads it back naive, while PostgreSQL's ``timestamptz`` comes back
aware in the session's time zone. Either way a caller would have to remember to fix the value up;
this type does it once, so every stored time goes in as UTC and comes out aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime"]


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always returns aware UTC datetimes.

    The SQL type is exactly ``DateTime(timezone=True)`` (``timestamp with time zone`` on
    PostgreSQL, ``DATETIME`` on SQLite), so swapping it in needs no schema migration, and
    values already stored read back unchanged.

    Raises:
        ValueError: (wrapped by SQLAlchemy in ``StatementError``) a naive datetime is bound:
            its zone is unknown, and guessing would store a wrong instant.
    """

    impl = DateTime(timezone=True)
    # The type has no per-instance state, so SQLAlchemy may cache statements that use it.
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The value as an aware UTC datetime (``None`` stays ``None``).

        Raises:
            ValueError: ``value`` is naive, or not a datetime.
        """
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"a UtcDateTime column takes a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            # Fail closed (style: no naive datetimes): a naive time names no instant.
            raise ValueError(f"naive datetime {value.isoformat()} bound to a UTC column")
        # SQLite's DATETIME drops the offset when it writes text, so a non-UTC time would be
        # stored as the wrong instant; converting first makes both backends store the instant.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The stored time as an aware UTC datetime (``None`` stays ``None``)."""
        if value is None:
            return None
        if value.tzinfo is None:
            # SQLite: the naive text custodes wrote, which process_bind_param made UTC.
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
