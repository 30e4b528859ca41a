"""API keys on SQLite and PostgreSQL: hashes only, logged, revocable."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, select

from custodes.clock import FrozenClock
from custodes.errors import InputError, LogWriteError, NotFoundError
from custodes.gateway import KEY_CREATED, KEY_REVOKED, KeyStore
from custodes.gateway._tables import gateway_keys
from custodes.log import Entry, TransparencyLog


@pytest.fixture
def store(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> KeyStore:
    return KeyStore(engine, transparency_log, clock)


def test_keys_are_stored_only_as_sha256(store: KeyStore, engine: Engine) -> None:
    issued = store.create("alice@lab", name="laptop")
    with engine.connect() as conn:
        row = conn.execute(select(gateway_keys)).one()
    assert bytes(row.key_hash) == hashlib.sha256(issued.secret.encode()).digest()
    assert issued.secret.encode() not in repr(tuple(row)).encode()
    assert store.find(issued.secret) == issued.key
    assert store.find(issued.secret + "x") is None
    assert store.find("sk-not-ours") is None


def test_create_and_revoke_are_logged_first(
    store: KeyStore, transparency_log: TransparencyLog
) -> None:
    issued = store.create("alice@lab")
    store.revoke(issued.key.key_id, reason="lost")
    entries = [Entry.from_json(transparency_log.entry_data(i)) for i in range(2)]
    assert [(e.type, e.principal) for e in entries] == [
        (KEY_CREATED, "alice@lab"),
        (KEY_REVOKED, "alice@lab"),
    ]
    assert entries[1].body == {"key_id": issued.key.key_id, "reason": "lost"}
    assert issued.secret not in transparency_log.entry_data(0).decode()


def test_revoked_keys_stop_matching_and_bump_the_version(store: KeyStore) -> None:
    assert store.version() == 0
    issued = store.create("alice@lab")
    other = store.create("bob@lab")
    assert store.version() == 2
    revoked = store.revoke(issued.key.key_id)
    assert revoked.revoked_at is not None and store.version() == 3
    assert store.find(issued.secret) is None
    version, active = store.snapshot()
    assert version == 3 and [k.key_id for k in active.values()] == [other.key.key_id]
    assert [k.key_id for k in store.list(include_revoked=False)] == [other.key.key_id]
    assert len(store.list()) == 2 and len(store.list(principal="alice@lab")) == 1
    with pytest.raises(NotFoundError, match="already revoked"):
        store.revoke(issued.key.key_id)
    with pytest.raises(NotFoundError, match="no API key"):
        store.revoke("000000000000")


@pytest.mark.parametrize("principal", ["", " alice", "x" * 257])
def test_malformed_principals_are_refused(store: KeyStore, principal: str) -> None:
    with pytest.raises(InputError):
        store.create(principal)


def test_no_key_without_its_log_entry(
    sqlite_engine: Engine, log_signer: object, clock: FrozenClock
) -> None:
    class FailingLog:
        def append(self, entry: object) -> object:
            raise LogWriteError("disk full")

    store = KeyStore(sqlite_engine, FailingLog(), clock)  # type: ignore[arg-type]
    with pytest.raises(LogWriteError):
        store.create("alice@lab")
    assert store.list() == [] and store.version() == 0
