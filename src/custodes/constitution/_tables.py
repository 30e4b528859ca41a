"""Adopted constitution versions. Rows are only inserted: a version never changes."""

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from custodes.store import UtcDateTime, metadata

__all__ = ["constitution_versions"]

constitution_versions = Table(
    "constitution_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("adopted_at", UtcDateTime(), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("log_index", BigInteger, nullable=False),
)
