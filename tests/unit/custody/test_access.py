"""Who may do what with a finding: the constitution decides, and every refusal is logged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.custody import CustodyRegistry, DuplicateFindingError, KeyEncryptionKey
from custodes.errors import LogWriteError, NotFoundError, PolicyDenied
from custodes.log import Entry, TransparencyLog
from tests.unit.custody.conftest import FINDING, GrantBook, constitution


def last(log: TransparencyLog) -> Entry:
    return Entry.from_json(log.entry_data(log.size() - 1))


def denied(log: TransparencyLog) -> dict[str, Any]:
    e = last(log)
    assert e.type == "custody.denied/v1", e.type
    return {"actor": e.principal, **e.body}


def test_unknown_principal_is_refused_for_every_action_and_logged(
    registry: CustodyRegistry, transparency_log: TransparencyLog, grants: GrantBook
) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    grants.grants[("eve@nowhere", "exploit-details")] = "g"  # even a grant does not help
    actions: dict[str, Callable[[], Any]] = {
        "register": lambda: registry.register(FINDING, b"d", principal="eve@nowhere"),
        "list": lambda: registry.visible("eve@nowhere"),
        "read": lambda: registry.view(f.id, principal="eve@nowhere"),
        "notify": lambda: registry.notify_vendor(f.id, principal="eve@nowhere"),
        "event": lambda: registry.record_event(f.id, "fix-ready", principal="eve@nowhere"),
        "transition": lambda: registry.transition(f.id, "rm", "valid", principal="eve@nowhere"),
        "escrow-read": lambda: registry.read_details(f.id, reader="eve@nowhere"),
        "reveal": lambda: registry.reveal(f.id, principal="eve@nowhere", early=True),
        "alarms": lambda: registry.alarms_for("eve@nowhere"),
    }
    for action, run in actions.items():
        size = transparency_log.size()
        with pytest.raises(PolicyDenied, match="not a principal of constitution"):
            run()
        assert transparency_log.size() == size + 1, action
        d = denied(transparency_log)
        # Recorded as what it is: an invented name, never as an actor of the log.
        assert (d["action"], d["principal"], d["known"], d["actor"]) == (
            action,
            "eve@nowhere",
            False,
            "custodes",
        )
    assert [x.id for x in registry.list()] == [f.id]
    assert registry.get(f.id).events == ()


def test_invented_finder_and_other_organisations_finder_are_refused(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    with pytest.raises(PolicyDenied, match="finder 'zed@lab' is not a principal"):
        registry.register({**FINDING, "finder": "zed@lab"}, b"d", principal="alice@lab")
    assert denied(transparency_log)["action"] == "register"
    # A partner may not register a finding in the name of the lab's researcher...
    with pytest.raises(PolicyDenied, match="own organisation"):
        registry.register(FINDING, b"d", principal="pat@partner")
    assert denied(transparency_log)["known"] is True
    assert registry.list() == []
    # ...but its own, and a coordinator (the lab, by default) may register anyone's.
    assert registry.register({**FINDING, "finder": "pat@partner"}, b"d", principal="pat@partner")
    f = registry.register({**FINDING, "finder": "pat@partner"}, b"e", principal="mallory@lab")
    assert f.finder == "pat@partner" and f.registered_by == "mallory@lab"


def test_embargoed_record_is_need_to_know(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    f = registry.register({**FINDING, "finder": "pat@partner"}, b"d", principal="pat@partner")

    def readers() -> set[str]:
        return {
            p
            for p in ("pat@partner", "alice@lab", "bob@aisi", "vendor@example", "olga@othervendor")
            if f.id in {x.id for x in registry.visible(p).findings}
        }

    # The finder's organisation, the coordinators (lab) and the overseers; not yet the vendor.
    assert readers() == {"pat@partner", "alice@lab", "bob@aisi"}
    registry.notify_vendor(f.id, principal="pat@partner")
    assert readers() == {"pat@partner", "alice@lab", "bob@aisi", "vendor@example"}
    # Another vendor is told nothing, not even that the finding exists.
    size = transparency_log.size()
    with pytest.raises(NotFoundError) as hidden:
        registry.view(f.id, principal="olga@othervendor")
    assert transparency_log.size() == size + 1
    hidden_body = {k: v for k, v in denied(transparency_log).items() if k != "finding_id"}
    with pytest.raises(NotFoundError) as missing:
        registry.view("CUSTODES-2026-0999", principal="olga@othervendor")
    missing_body = {k: v for k, v in denied(transparency_log).items() if k != "finding_id"}
    # The same answer and the same log record for a hidden finding as for none at all.
    assert hidden.value.message.replace(f.id, "X") == missing.value.message.replace(
        "CUSTODES-2026-0999", "X"
    )
    assert hidden.value.expected == missing.value.expected
    assert hidden_body == missing_body
    assert registry.visible("olga@othervendor").existing == ()
    # Once disclosed, the record is public to every principal the constitution names.
    registry.record_event(f.id, "disclosed", principal="pat@partner")
    assert f.id in {x.id for x in registry.visible("olga@othervendor").findings}


def test_show_existence_shows_ids_only(
    engine: Engine, transparency_log: TransparencyLog, kek: KeyEncryptionKey, clock: FrozenClock
) -> None:
    reg = CustodyRegistry(
        engine,
        transparency_log,
        kek,
        clock=clock,
        constitution=constitution("custody: {show_existence: true}\n"),
    )
    f = reg.register(FINDING, b"d", principal="alice@lab")
    listing = reg.visible("pat@partner")
    assert listing.findings == () and listing.existing == (f.id,)
    with pytest.raises(PolicyDenied, match="embargoed"):
        reg.view(f.id, principal="pat@partner")
    assert denied(transparency_log)["finding_id"] == f.id


@pytest.mark.parametrize(
    "principal,change,allowed",
    [
        ("vendor@example", ("event", "vendor-acknowledged"), True),
        ("vendor@example", ("event", "fix-ready"), True),
        ("vendor@example", ("event", "grace-requested"), True),
        ("vendor@example", ("event", "grace-granted"), False),  # no granting itself time
        ("vendor@example", ("event", "disclosed"), False),
        ("vendor@example", ("em", "proposed"), True),
        ("vendor@example", ("rm", "valid"), False),
        ("bob@aisi", ("rm", "valid"), False),  # overseers see, they do not triage
        ("bob@aisi", ("event", "attacks-observed"), True),
        ("bob@aisi", ("event", "escalated"), True),
        ("bob@aisi", ("em", "proposed"), False),
        ("alice@lab", ("rm", "valid"), True),  # a coordinator
        ("alice@lab", ("event", "grace-granted"), True),
    ],
)
def test_each_change_needs_its_party(
    registry: CustodyRegistry,
    transparency_log: TransparencyLog,
    principal: str,
    change: tuple[str, str],
    allowed: bool,
) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    registry.notify_vendor(f.id, principal="alice@lab")
    machine, target = change

    def run() -> Any:
        if machine == "event":
            return registry.record_event(f.id, target, principal=principal)
        return registry.transition(f.id, machine, target, principal=principal)

    if allowed:
        run()
        return
    size = transparency_log.size()
    with pytest.raises(PolicyDenied, match="needs one of"):
        run()
    assert transparency_log.size() == size + 1 and denied(transparency_log)["actor"] == principal
    assert registry.get(f.id).events == registry.view(f.id, principal="alice@lab").events
    assert len(registry.get(f.id).events) == 1  # only the notice


def test_outsiders_cannot_change_what_they_cannot_see(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    for run in (
        lambda: registry.transition(f.id, "em", "proposed", principal="pat@partner"),
        lambda: registry.notify_vendor(f.id, principal="pat@partner"),
        lambda: registry.record_event(f.id, "fix-ready", principal="vendor@example"),  # not told
        lambda: registry.reveal(f.id, principal="pat@partner"),
    ):
        with pytest.raises(NotFoundError):
            run()
        assert denied(transparency_log)["known"] is True
    assert registry.get(f.id).events == () and registry.get(f.id).em_state == "none"


def test_no_constitution_refuses_everything(
    engine: Engine, transparency_log: TransparencyLog, kek: KeyEncryptionKey, clock: FrozenClock
) -> None:
    reg = CustodyRegistry(engine, transparency_log, kek, clock=clock, constitution=lambda: None)
    with pytest.raises(PolicyDenied, match="no constitution"):
        reg.register(FINDING, b"d", principal="alice@lab")
    with pytest.raises(PolicyDenied, match="no constitution"):
        reg.visible("alice@lab")
    assert reg.list() == []


def test_alarms_are_filtered_by_what_one_may_see(
    registry: CustodyRegistry, clock: FrozenClock
) -> None:
    f = registry.register(FINDING, b"d", principal="alice@lab")
    clock.advance(timedelta(days=8))  # the vendor was not notified within 7 days
    assert [a.kind for a in registry.raise_alarms()] == ["vendor-not-notified"]
    assert [r.alarm.subject for r in registry.alarms_for("bob@aisi")] == [f.id]
    assert [r.alarm.subject for r in registry.alarms_for("alice@lab")] == [f.id]
    assert registry.alarms_for("pat@partner") == []


def test_duplicate_fingerprint_is_refused_with_the_existing_id(
    registry: CustodyRegistry, transparency_log: TransparencyLog
) -> None:
    first = registry.register({**FINDING, "fingerprint": "crash:abc"}, b"d", principal="alice@lab")
    size = transparency_log.size()
    with pytest.raises(DuplicateFindingError) as err:
        registry.register({**FINDING, "fingerprint": "crash:abc"}, b"e", principal="alice@lab")
    assert err.value.existing_id == first.id and first.id in err.value.message
    assert transparency_log.size() == size and len(registry.list()) == 1
    # Another fingerprint is another finding, numbered next.
    nxt = registry.register({**FINDING, "fingerprint": "crash:def"}, b"d", principal="alice@lab")
    assert nxt.id == "CUSTODES-2026-0002"


def test_a_failed_registration_leaves_no_gap(
    registry: CustodyRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry.register(FINDING, b"d", principal="alice@lab").id == "CUSTODES-2026-0001"
    append = registry.log.append

    def broken(entries: Any, **_: Any) -> Any:
        raise LogWriteError("disk full")

    monkeypatch.setattr(registry.log, "append", broken)
    with pytest.raises(LogWriteError):
        registry.register(FINDING, b"d", principal="alice@lab")
    monkeypatch.setattr(registry.log, "append", append)
    assert registry.register(FINDING, b"d", principal="alice@lab").id == "CUSTODES-2026-0002"


def test_a_duplicate_is_refused_across_processes_and_a_failed_claim_is_given_back(
    registry: CustodyRegistry,
    transparency_log: TransparencyLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second registry on the same database stands for another process (a CLI beside the
    # server): the claim is in the database, not in memory.
    other = CustodyRegistry(
        registry.engine,
        transparency_log,
        registry.kek,
        clock=registry.clock,
        constitution=constitution(),
    )
    spec = {**FINDING, "fingerprint": "crash:shared"}
    append = registry.log.append

    def broken(entries: Any, **_: Any) -> Any:
        raise LogWriteError("disk full")

    monkeypatch.setattr(registry.log, "append", broken)
    with pytest.raises(LogWriteError):
        registry.register(spec, b"d", principal="alice@lab")
    monkeypatch.setattr(registry.log, "append", append)
    first = other.register(spec, b"d", principal="alice@lab")  # the failed claim was given back
    assert first.id == "CUSTODES-2026-0001"
    with pytest.raises(DuplicateFindingError) as err:
        registry.register(spec, b"e", principal="alice@lab")
    assert err.value.existing_id == first.id
    assert registry.register(FINDING, b"f", principal="alice@lab").id == "CUSTODES-2026-0002"
