"""API keys: issued to principals, stored only as SHA-256 hashes, revocable at once.

A key looks like ``cust_<key id>_<secret>``; the key id is public (it is logged and listed), the
secret is 32 random bytes shown once. Creating and revoking a key are actions: their log entry is
made durable first (invariant 1), then the table changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock
from custodes.errors import InputError, NotFoundError, StoreError
from custodes.gateway._entries import KEY_CREATED, KEY_REVOKED, KeyCreated, KeyRevoked
from custodes.gateway._tables import gateway_keys, gateway_state
from custodes.log import Entry, TransparencyLog

__all__ = ["ApiKey", "IssuedKey", "KeyStore", "hash_key"]

_PREFIX = "cust_"
_KEY_RE = re.compile(r"^cust_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def hash_key(key: str) -> bytes:
    """SHA-256 of the whole key string: what the store keeps and looks keys up by."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key (without its secret)."""

    key_id: str
    principal: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedKey:
    """A newly issued key: ``secret`` is the only copy of the key and is never stored."""

    key: ApiKey
    secret: str


class KeyStore:
    """Issue, list, revoke and look up API keys in the database.

    Args:
        engine: the migrated database.
        log: the transparency log key changes are recorded in.
        clock: the time source.
    """

    def __init__(self, engine: Engine, log: TransparencyLog, clock: Clock) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock

    def create(self, principal: str, *, name: str = "") -> IssuedKey:
        """Issue a new key to ``principal``.

        Raises:
            InputError: the principal or name is malformed.
            LogWriteError: the log could not record it (no key is issued).
        """
        if not principal or len(principal) > 256 or principal.strip() != principal:
            raise InputError(
                "principal must be a non-empty id of at most 256 characters",
                where="principal",
                actual=repr(principal),
            )
        if len(name) > 200:
            raise InputError(
                "name is too long",
                where="name",
                expected="at most 200 characters",
                actual=f"{len(name)} characters",
            )
        key_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        self.log.append(
            Entry.create(
                KEY_CREATED,
                time=now,
                principal=principal,
                body=KeyCreated(key_id=key_id, name=name),
            )
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(gateway_keys).values(
                        key_id=key_id,
                        principal=principal,
                        name=name,
                        key_hash=hash_key(secret),
                        created_at=now,
                        revoked_at=None,
                    )
                )
                _bump_version(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store the new key: {exc}") from exc
        return IssuedKey(ApiKey(key_id, principal, name, now, None), secret)

    def revoke(self, key_id: str, *, reason: str = "") -> ApiKey:
        """Revoke a key; every server process refuses it from its next key check.

        Raises:
            NotFoundError: no such key, or it is already revoked.
            LogWriteError: the log could not record it (the key stays valid).
        """
        key = self.get(key_id)
        if not key.active:
            raise NotFoundError(
                f"key {key_id} is already revoked",
                where="key_id",
                expected="an active key id (see `custodes keys list`)",
            )
        now = self.clock.now()
        self.log.append(
            Entry.create(
                KEY_REVOKED,
                time=now,
                principal=key.principal,
                body=KeyRevoked(key_id=key_id, reason=reason),
            )
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(gateway_keys).where(gateway_keys.c.key_id == key_id).values(revoked_at=now)
            )
            _bump_version(conn)
        return ApiKey(key.key_id, key.principal, key.name, key.created_at, now)

    def get(self, key_id: str) -> ApiKey:
        """The key with id ``key_id``.

        Raises:
            NotFoundError: there is none.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(gateway_keys).where(gateway_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFoundError(
                f"no API key with id {key_id!r}",
                where="key_id",
                expected="a key id from `custodes keys list`",
            )
        return _to_key(row)

    def list(self, *, principal: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
        """Keys, oldest first."""
        query = select(gateway_keys).order_by(gateway_keys.c.created_at, gateway_keys.c.key_id)
        if principal is not None:
            query = query.where(gateway_keys.c.principal == principal)
        if not include_revoked:
            query = query.where(gateway_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_to_key(r) for r in conn.execute(query)]

    def version(self) -> int:
        """The key change counter (0 before any key exists)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(gateway_state.c.version).where(gateway_state.c.id == 1)
            ).scalar()
        return int(value or 0)

    def snapshot(self) -> tuple[int, dict[bytes, ApiKey]]:
        """The change counter and every active key by hash, read in one transaction."""
        with self.engine.begin() as conn:
            version = conn.execute(
                select(gateway_state.c.version).where(gateway_state.c.id == 1)
            ).scalar()
            rows = conn.execute(
                select(gateway_keys).where(gateway_keys.c.revoked_at.is_(None))
            ).all()
        return int(version or 0), {bytes(r.key_hash): _to_key(r) for r in rows}

    def find(self, key: str) -> ApiKey | None:
        """The active key matching ``key``, or None (malformed keys never reach the database)."""
        if not _KEY_RE.match(key):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(gateway_keys).where(
                    gateway_keys.c.key_hash == hash_key(key), gateway_keys.c.revoked_at.is_(None)
                )
            ).first()
        return _to_key(row) if row is not None else None


def well_formed(key: str) -> bool:
    """Whether ``key`` has the shape of a custodes API key."""
    return _KEY_RE.match(key) is not None


def _bump_version(conn: Connection) -> None:
    changed = conn.execute(
        update(gateway_state)
        .where(gateway_state.c.id == 1)
        .values(version=gateway_state.c.version + 1)
    ).rowcount
    if not changed:
        conn.execute(insert(gateway_state).values(id=1, version=1))


def _to_key(row: Row[Any]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        m["key_id"],
        m["principal"],
        m["name"],
        m["created_at"],
        m["revoked_at"],
    )
