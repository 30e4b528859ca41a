"""End to end with the real authority, monitors and log: a discovery in a transcript is
scanned, reviewed by another organisation and linked to a new finding; the vendor is
notified; an escrow read is refused without a grant and succeeds with a two-organisation
approval; the clock runs; the finding is exported, revealed, and every step verifies in the log.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import Engine

from custodes.authority import Authority, SigningKey, new_request, sign_approval, sign_request
from custodes.clock import FrozenClock
from custodes.constitution import encode_public_key, read_constitution
from custodes.custody import AlarmWindows, CustodyRegistry, KeyEncryptionKey, export_finding
from custodes.errors import NotFoundError, PolicyDenied
from custodes.log import Entry, TransparencyLog, leaf_hash, verify_inclusion
from custodes.monitors import (
    ConstitutionDirectory,
    ReviewQueue,
    TranscriptScanner,
    VulnDiscoveryDetector,
)

CONSTITUTION = """\
version: 1
name: custody end-to-end
log: {{enabled: true}}
organisations:
  - {{id: lab, kind: developer}}
  - {{id: asi, kind: overseer}}
  - {{id: auditor, kind: overseer}}
  - {{id: osvendor, name: Operating System Vendor, kind: vendor}}
criteria:
  - id: cleared-researcher
    applies_to: principal
    description: cyber-cleared individuals only
    condition: principal.attributes has clearance && principal.attributes.clearance == "cyber"
principals:
  - {{id: alice@lab, organisation: lab, roles: [researcher], attributes: {{clearance: cyber}},
     key: "{alice}"}}
  - {{id: bob@lab, organisation: lab, roles: [approver, amendment-signer], key: "{bob}"}}
  - {{id: dana@asi, organisation: asi, roles: [approver, reviewer, amendment-signer],
     key: "{dana}"}}
  - {{id: erin@auditor, organisation: auditor, roles: [approver, reviewer], key: "{erin}"}}
  - {{id: vera@osvendor, organisation: osvendor, roles: [vendor-contact]}}
capabilities:
  - {{id: exploit-details, description: read escrowed exploit details, actions: [escrow-read]}}
access:
  - id: exploit-details-read
    capability: exploit-details
    requesters: {{roles: [researcher], criteria: [cleared-researcher]}}
    approvers: {{roles: [approver]}}
    quorum: {{approvals: 2, organisations: 2}}
    max_duration: 2h
    purpose_required: true
amendment: {{signers: [bob@lab, dana@asi], threshold: 2}}
"""

TRANSCRIPT = [
    {"role": "user", "content": "Fuzz the PNG decoder and report anything you find."},
    {
        "role": "assistant",
        "content": (
            "==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000011 at "
            "pc 0x4f5a1b bp 0x7ffd sp 0x7ffd\nREAD of size 4 at 0x602000000011 thread T0\n"
            "    #0 0x4f5a1a in png_read_row /src/libpng/pngread.c:512:9\n"
            "    #1 0x4f3b2c in main /src/fuzz.c:20:5\n"
            "I found a heap overflow in png_read_row; here is the PoC input that triggers it."
        ),
    },
]

FINDING = {
    "title": "Heap overflow in png_read_row",
    "vendor": "Operating System Vendor",
    "product": "libpng",
    "purl": "pkg:pypi/libpng",
    "versions": ["< 1.6.44"],
    "cwe": "CWE-787",
    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
    "finder": "alice@lab",
    "model": "frontier-cyber",
    "session": "sess-7",
    "policy": "project-zero",
}
POC = b"\x89PNG\r\n\x1a\n" + b"A" * 4096


@pytest.fixture
def keys() -> dict[str, SigningKey]:
    return {name: SigningKey.generate() for name in ("alice", "bob", "dana", "erin")}


def test_end_to_end(
    sqlite_engine: Engine,
    log_signer: Any,
    clock: FrozenClock,
    keys: dict[str, SigningKey],
    tmp_path: Path,
    data_dir: Path,
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    try:
        _run(sqlite_engine, log, clock, keys, tmp_path, data_dir)
    finally:
        log.close()


def _run(
    engine: Engine,
    log: TransparencyLog,
    clock: FrozenClock,
    keys: dict[str, SigningKey],
    tmp_path: Path,
    data_dir: Path,
) -> None:
    path = tmp_path / "constitution.yaml"
    path.write_text(
        CONSTITUTION.format(**{n: encode_public_key(k.public_bytes) for n, k in keys.items()})
    )
    constitution = read_constitution(path)
    authority = Authority(engine, log, clock=clock)
    authority.start(constitution, source=str(path))
    registry = CustodyRegistry(
        engine,
        log,
        KeyEncryptionKey.generate(),
        authority=authority,
        clock=clock,
        windows=AlarmWindows(stockpiling=timedelta(hours=72)),
        constitution=lambda: authority.constitution,  # an amendment applies at once
    )
    queue = ReviewQueue(
        engine, log, ConstitutionDirectory(constitution), clock=clock, validate_finding=registry.get
    )
    registry.detections = queue
    steps: dict[str, int] = {}

    # 1. A transcript with a discovery is scanned; the detection goes to reviewers outside
    #    the finder's organisation.
    transcript = tmp_path / "sess-7.jsonl"
    transcript.write_text(json.dumps({"messages": TRANSCRIPT}) + "\n")
    TranscriptScanner([VulnDiscoveryDetector()], queue, actor="alice@lab").scan([transcript])
    (det,) = queue.list(category="vuln_discovery")
    assert "alice@lab" not in det.reviewers and "dana@asi" in det.reviewers
    steps["detection"] = det.log_index

    # 2. The finding is registered and dana (asi) links the detection to it within the window.
    clock.advance(timedelta(hours=5))
    with pytest.raises(NotFoundError) as missing:
        registry.register({**FINDING, "detection_id": "det-nope"}, POC, principal="alice@lab")
    assert missing.value.where == "detection_id"
    finding = registry.register(
        {**FINDING, "detection_id": det.id, "evidence": f"{transcript.name} line 1"},
        POC,
        principal="alice@lab",
    )
    assert finding.fingerprint == det.fingerprint  # taken from the detection
    steps["register"] = finding.log_index
    linked = queue.resolve(det.id, reviewer="dana@asi", finding_id=finding.id)
    assert linked.finding_id == finding.id

    # 3. The vendor is notified: day 0 of the Project Zero clock.
    finding = registry.notify_vendor(finding.id, principal="alice@lab", note="security@")
    steps["notify"] = finding.events[-1].log_index
    schedule = registry.schedule(finding)
    assert schedule is not None and schedule.day(schedule.disclose_at) >= 90

    # 4. Reading the escrow without a grant is refused, and logged as a denial, never a read.
    size = log.size()
    with pytest.raises(PolicyDenied):
        registry.read_details(finding.id, reader="alice@lab")
    assert log.size() == size + 1
    refused = Entry.from_json(log.entry_data(size))
    assert refused.type == "custody.denied/v1" and refused.body["action"] == "escrow-read"
    assert registry.get(finding.id).events[-1].kind == "vendor-notified"

    # 5. alice asks; dana (asi) and erin (auditor) approve: two organisations, so a grant.
    request = new_request(
        "escrow-read",
        constitution_version=1,
        requester="alice@lab",
        created=clock.now(),
        capability="exploit-details",
        resource=finding.id,
        purpose="write the vendor's regression test",
        duration_seconds=3600,
    )
    record = authority.submit_request(request, sign_request(request, keys["alice"]))
    for who, key in (("dana@asi", keys["dana"]), ("erin@auditor", keys["erin"])):
        _, signature = sign_approval(request, key)
        record = authority.approve(record.id, who, signature)
    details = registry.read_details(finding.id, reader="alice@lab", purpose="regression test")
    assert details == POC
    read_index = log.size() - 1
    read_entry = Entry.from_json(log.entry_data(read_index))
    assert read_entry.type == "custody.escrow.read/v1"
    assert read_entry.body["reader"] == "alice@lab" and read_entry.body["grant"]
    steps["read"] = read_index
    # The read is followed up (Vultron RM: validated and accepted), so it raises no alarm.
    clock.advance(timedelta(hours=20))
    registry.transition(
        finding.id, "rm", "valid", principal="alice@lab", reason="reproduced from the escrowed PoC"
    )
    finding = registry.transition(finding.id, "rm", "accepted", principal="alice@lab")
    steps["transition"] = finding.events[-1].log_index

    # 6. The clock runs: the vendor ships a fix on day 40; nothing is due until day 70.
    clock.advance(timedelta(days=40))
    finding = registry.record_event(finding.id, "fix-ready", principal="vera@osvendor")
    steps["fix"] = finding.events[-1].log_index
    schedule = registry.schedule(finding)
    assert schedule is not None and schedule.rule.startswith("fix within the deadline")
    assert registry.raise_alarms() == []  # linked in time, notified in time, read followed up
    clock.set(schedule.disclose_at)
    (due,) = registry.raise_alarms()
    assert due.kind == "deadline-passed" and due.subject == finding.id

    # 7. Disclosed, exported (validated against the official OSV schema) and revealed.
    finding = registry.record_event(finding.id, "disclosed", principal="alice@lab")
    osv = export_finding(finding, "osv", registry.schedule(finding), now=clock.now())
    schema = json.loads((data_dir / "schemas/osv/schema.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(osv)) == []
    assert osv["id"] == f"x_{finding.id}"
    revealed = registry.reveal(finding.id, principal="alice@lab")
    steps["reveal"] = revealed.log_index

    # 8. Anyone with the log verifies the opening against the commitment logged at
    #    registration, and every step's entry against the signed checkpoint.
    committed = Entry.from_json(log.entry_data(steps["register"])).body["commitment"]
    assert hashlib.sha256(bytes.fromhex(revealed.salt) + revealed.details).hexdigest() == committed
    checkpoint = log.latest_checkpoint().checkpoint
    for step, index in steps.items():
        data = log.entry_data(index)
        verify_inclusion(
            leaf_hash(data),
            index,
            checkpoint.size,
            log.inclusion_proof(index, checkpoint.size),
            checkpoint.root_hash,
        )
        assert Entry.from_json(data).type.split("/")[0] in {
            "monitors.detection",
            "custody.finding.register",
            "custody.finding.event",
            "custody.escrow.read",
            "custody.finding.reveal",
            "custody.finding.transition",
        }, step


def test_a_discovery_never_registered_raises_the_alarm_exactly_at_the_window(
    sqlite_engine: Engine,
    log_signer: Any,
    clock: FrozenClock,
    keys: dict[str, SigningKey],
    tmp_path: Path,
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    try:
        path = tmp_path / "constitution.yaml"
        path.write_text(
            CONSTITUTION.format(**{n: encode_public_key(k.public_bytes) for n, k in keys.items()})
        )
        constitution = read_constitution(path)
        window = timedelta(hours=72)
        registry = CustodyRegistry(
            sqlite_engine,
            log,
            KeyEncryptionKey.generate(),
            clock=clock,
            windows=AlarmWindows(stockpiling=window),
        )
        queue = ReviewQueue(
            sqlite_engine,
            log,
            ConstitutionDirectory(constitution),
            clock=clock,
            validate_finding=registry.get,
        )
        registry.detections = queue
        transcript = tmp_path / "sess-8.jsonl"
        transcript.write_text(json.dumps({"messages": TRANSCRIPT}) + "\n")
        TranscriptScanner([VulnDiscoveryDetector()], queue, actor="alice@lab").scan([transcript])
        (det,) = queue.list(category="vuln_discovery")
        closes = det.detected_at + window
        clock.set(closes - timedelta(microseconds=1))
        assert registry.raise_alarms() == []
        clock.set(closes)
        (alarm,) = registry.raise_alarms()
        assert (alarm.kind, alarm.subject, alarm.due_at) == ("stockpiling", det.id, closes)
        entry = Entry.from_json(log.entry_data(log.size() - 1))
        assert entry.type == "custody.alarm/v1" and entry.body["subject"] == det.id
        assert [r.alarm.id for r in registry.alarms()] == [f"stockpiling:{det.id}"]
    finally:
        log.close()
