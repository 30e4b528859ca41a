"""The registry on SQLite and PostgreSQL: every action is a log entry, appended first."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from custodes.clock import FrozenClock
from custodes.custody import (
    CustodyRegistry,
    EscrowIntegrityError,
    TransitionError,
    record_bytes,
    verify_commitment,
)
from custodes.custody._tables import custody_escrow
from custodes.errors import CustodyError, InputError, LogWriteError, PolicyDenied
from custodes.log import Entry, TransparencyLog
from tests.unit.custody.conftest import FINDING, GrantBook, constitution


def entry(log: TransparencyLog, index: int) -> Entry:
    return Entry.from_json(log.entry_data(index))


def test_register_logs_commitment_not_details(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    f = registry.register(FINDING, b"SECRET-POC", principal="alice@lab")
    assert f.id == "CUSTODES-2026-0001"
    assert (f.rm_state, f.em_state, f.flags) == ("received", "none", ())
    assert f.cvss_score == 8.8 and f.severity == "High"
    e = entry(transparency_log, f.log_index)
    assert e.type == "custody.finding.register/v2" and e.principal == "alice@lab"
    assert e.body["commitment"] == f.commitment
    data = transparency_log.entry_data(f.log_index)
    assert b"SECRET-POC" not in data
    # The public log holds no field of the embargoed case record, only a commitment to it
    # (it names its actor, the registrant, as every entry does)...
    for field in ("title", "description", "vendor", "product", "session", "evidence", "model"):
        assert str(FINDING[field]).encode() not in data, field
    assert b"CVSS:" not in data and b"exampleimg" not in data
    # ...which the record and its salt (given to those who may read the record) open.
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(f).items()}
    assert verify_commitment(e.body["record_commitment"], f.record_salt, record_bytes(record))
    assert not verify_commitment(
        e.body["record_commitment"], f.record_salt, record_bytes({**record, "product": "x"})
    )
    assert registry.register(FINDING, b"x", principal="alice@lab").id == "CUSTODES-2026-0002"


@pytest.mark.parametrize(
    "field,value,where",
    [
        ("cvss", "CVSS:3.1/AV:N/AC:L", "cvss"),
        ("cvss", "CVSS:4.0/AV:X/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "cvss"),
        ("policy", "project-one", "policy"),
        ("cwe", "787", "cwe"),
        ("versions", [], "versions"),
    ],
)
def test_bad_input_is_refused_and_nothing_logged(
    registry: CustodyRegistry, transparency_log: TransparencyLog, field: str, value: Any, where: str
) -> None:
    with pytest.raises(InputError) as err:
        registry.register({**FINDING, field: value}, b"d", principal="alice@lab")
    assert err.value.where == where
    assert transparency_log.size() == 0
    assert registry.list() == []


def test_no_log_no_registration(registry: CustodyRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(entries: Any, **_: Any) -> Any:
        raise LogWriteError("disk full")

    monkeypatch.setattr(registry.log, "append", broken)
    with pytest.raises(LogWriteError):
        registry.register(FINDING, b"d", principal="alice@lab")
    assert registry.list() == []


def test_escrow_read_needs_a_grant_and_is_logged_first(
    registry: CustodyRegistry,
    grants: GrantBook,
    transparency_log: TransparencyLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = registry.register(FINDING, b"SECRET-POC", principal="alice@lab")
    size = transparency_log.size()
    with pytest.raises(PolicyDenied):
        registry.read_details(f.id, reader="mallory@lab")
    # The refusal is logged as a denial, never as a read.
    assert transparency_log.size() == size + 1
    denied = entry(transparency_log, size)
    assert denied.type == "custody.denied/v1" and denied.principal == "mallory@lab"
    assert (denied.body["action"], denied.body["finding_id"]) == ("escrow-read", f.id)
    assert "mallory@lab holds no grant" in denied.body["reason"]
    grants.grants[("bob@aisi", "exploit-details")] = "grant-7"
    assert registry.read_details(f.id, reader="bob@aisi", purpose="triage") == b"SECRET-POC"
    e = entry(transparency_log, size + 1)
    assert e.type == "custody.escrow.read/v1"
    assert (e.body["reader"], e.body["grant"], e.principal) == ("bob@aisi", "grant-7", "bob@aisi")
    # The read entry is appended before decrypting: if it cannot be written, no read.
    opened: list[str] = []
    monkeypatch.setattr(registry.kek, "open", lambda *a: opened.append("x") or b"")

    def broken(entries: Any, **_: Any) -> Any:
        raise LogWriteError("log down")

    monkeypatch.setattr(registry.log, "append", broken)
    with pytest.raises(LogWriteError):
        registry.read_details(f.id, reader="bob@aisi")
    assert opened == []


def test_no_authority_fails_closed(registry: CustodyRegistry) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    registry.authority = None
    with pytest.raises(PolicyDenied):
        registry.read_details(f.id, reader="bob@aisi")


def test_tampered_ciphertext_is_detected(registry: CustodyRegistry, grants: GrantBook) -> None:
    f = registry.register(FINDING, b"SECRET-POC" * 10, principal="alice@lab")
    grants.grants[("bob@aisi", "exploit-details")] = "g"
    sealed = registry._sealed(f.id)
    tampered = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 0x80])
    import hashlib as h

    with registry.engine.begin() as conn:
        conn.execute(
            update(custody_escrow)
            .where(custody_escrow.c.finding_id == f.id)
            .values(ciphertext=tampered, ciphertext_sha256=h.sha256(tampered).hexdigest())
        )
    with pytest.raises(EscrowIntegrityError, match="failed authentication"):
        registry.read_details(f.id, reader="bob@aisi")


def test_vultron_transitions_are_logged(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    f = registry.transition(f.id, "rm", "valid", principal="mallory@lab", reason="reproduced")
    f = registry.transition(f.id, "rm", "accepted", principal="mallory@lab")
    assert f.rm_state == "accepted"
    e = entry(transparency_log, transparency_log.size() - 1)
    assert (e.body["from_state"], e.body["to_state"]) == ("valid", "accepted")
    with pytest.raises(TransitionError) as err:
        registry.transition(f.id, "rm", "received", principal="mallory@lab")
    assert "deferred" in err.value.allowed
    f = registry.transition(f.id, "em", "proposed", principal="alice@lab")
    f = registry.transition(f.id, "em", "active", principal="alice@lab")
    assert f.em_state == "active"
    with pytest.raises(InputError):
        registry.transition(f.id, "xx", "active", principal="alice@lab")


def test_case_flags_and_clock(registry: CustodyRegistry, clock: FrozenClock) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    assert registry.schedule(f) is None
    with pytest.raises(TransitionError, match="vendor-aware"):
        registry.record_event(f.id, "fix-ready", principal="alice@lab")
    f = registry.notify_vendor(f.id, principal="alice@lab")
    assert f.flags == ("vendor-aware",)
    s = registry.schedule(f)
    assert s is not None and s.day(s.disclose_at) >= 90
    clock.advance(timedelta(days=20))
    f = registry.record_event(f.id, "attacks-observed", principal="carol@aisi")
    s = registry.schedule(f)
    assert s is not None and s.in_the_wild and s.day(s.deadline) == 27
    with pytest.raises(TransitionError, match="already set"):
        registry.record_event(f.id, "attacks-observed", principal="carol@aisi")
    with pytest.raises(InputError, match="future"):
        registry.record_event(
            f.id, "fix-ready", principal="vendor@example", at=clock.now() + timedelta(1)
        )
    # No embargo once an exploit is public (Vultron EM).
    registry.record_event(f.id, "exploit-public", principal="carol@aisi")
    with pytest.raises(TransitionError):
        registry.transition(f.id, "em", "proposed", principal="alice@lab")


def test_reveal_opens_the_logged_commitment(
    registry: CustodyRegistry,
    grants: GrantBook,
    clock: FrozenClock,
    transparency_log: TransparencyLog,
) -> None:
    f = registry.register(FINDING, b"SECRET-POC", principal="alice@lab")
    with pytest.raises(CustodyError, match="cannot be revealed yet"):
        registry.reveal(f.id, principal="alice@lab")
    registry.notify_vendor(f.id, principal="alice@lab")
    clock.advance(timedelta(days=95))
    r = registry.reveal(f.id, principal="alice@lab")
    assert r.details == b"SECRET-POC"
    # Anyone holding the log can check the opening against the commitment logged at registration.
    committed = entry(transparency_log, f.log_index).body["commitment"]
    assert hashlib.sha256(bytes.fromhex(r.salt) + r.details).hexdigest() == committed
    e = entry(transparency_log, r.log_index)
    assert e.type == "custody.finding.reveal/v1" and e.body["salt"] == r.salt
    assert registry.get(f.id).revealed_at == clock.now()


def test_early_reveal_needs_a_grant(registry: CustodyRegistry, grants: GrantBook) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    with pytest.raises(PolicyDenied):
        registry.reveal(f.id, principal="alice@lab", early=True)
    grants.grants[("alice@lab", "exploit-details")] = "g"
    assert registry.reveal(f.id, principal="alice@lab", early=True).details == b"d"


def test_registered_finding_equals_what_is_read_back(registry: CustodyRegistry) -> None:
    f = registry.register(
        {**FINDING, "references": ["https://example.com/a"]}, b"d", principal="alice@lab"
    )
    assert registry.get(f.id) == f


def test_concurrent_registrations_get_distinct_ids(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        found = list(
            pool.map(
                lambda i: registry.register(FINDING, b"d%d" % i, principal="alice@lab"), range(24)
            )
        )
    ids = {f.id for f in found}
    assert ids == {f"CUSTODES-2026-{n:04d}" for n in range(1, 25)}  # distinct, and no gaps
    assert {f.id for f in registry.list()} == ids
    # A second registry (another process) continues with the next number, never reusing one.
    other = CustodyRegistry(
        registry.engine,
        transparency_log,
        registry.kek,
        clock=registry.clock,
        constitution=constitution(),
    )
    assert other.register(FINDING, b"x", principal="alice@lab").id == "CUSTODES-2026-0025"
    assert registry.register(FINDING, b"y", principal="alice@lab").id == "CUSTODES-2026-0026"
