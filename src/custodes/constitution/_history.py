"""The adopted versions of the constitution, as stored: every version ever in force, in order.

A version is only ever inserted (by the authority, once its adoption or amendment is durable in
the log); these functions only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.constitution._tables import constitution_versions
from custodes.errors import NotFoundError

__all__ = [
    "AdoptedVersion",
    "StoredDocument",
    "adopted_versions",
    "newest_document",
    "newest_version",
    "stored_document",
]


@dataclass(frozen=True)
class AdoptedVersion:
    """One adopted version, without its text.

    Attributes:
        version: its number (1 for the first adopted).
        digest: the SHA-256 of its document, as the log's adoption entry names it.
        adopted_at: when it came into force (UTC).
        request_id: the amendment request that adopted it (None for version 1).
        log_index: the index of its adoption entry in the log.
    """

    version: int
    digest: str
    adopted_at: datetime
    request_id: str | None
    log_index: int


@dataclass(frozen=True)
class StoredDocument:
    """A stored version's number and YAML text."""

    version: int
    document: str


def adopted_versions(engine: Engine) -> list[AdoptedVersion]:
    """Every adopted version, oldest first."""
    c = constitution_versions.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.version, c.digest, c.adopted_at, c.request_id, c.log_index).order_by(
                c.version
            )
        ).all()
    return [
        AdoptedVersion(
            version=r.version,
            digest=r.digest,
            adopted_at=r.adopted_at,  # UtcDateTime: aware UTC
            request_id=r.request_id,
            log_index=r.log_index,
        )
        for r in rows
    ]


def stored_document(engine: Engine, version: int) -> str:
    """The YAML text of ``version``, exactly as adopted.

    Raises:
        NotFoundError: no such version was adopted.
    """
    c = constitution_versions.c
    with engine.connect() as conn:
        document = conn.execute(sa.select(c.document).where(c.version == version)).scalar()
    if document is None:
        raise NotFoundError(f"no constitution version {version}", where="version")
    return str(document)


def newest_document(engine: Engine) -> StoredDocument | None:
    """The newest adopted version's text, or None when none was ever adopted."""
    c = constitution_versions.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(c.version, c.document).order_by(c.version.desc()).limit(1)
        ).first()
    return None if row is None else StoredDocument(version=row.version, document=row.document)


def newest_version(engine: Engine) -> int | None:
    """The newest adopted version's number (one indexed read: other processes poll it), or
    None when none was ever adopted."""
    with engine.connect() as conn:
        version = conn.execute(sa.select(sa.func.max(constitution_versions.c.version))).scalar()
    return None if version is None else int(version)
