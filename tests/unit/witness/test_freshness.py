"""Fresh cosignatures, the constitution's key forms in policy files, evidence that proves."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from custodes.cli import main
from custodes.errors import InputError, VerificationError
from custodes.log import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    Receipt,
    SignedCheckpoint,
    inclusion_proof,
    leaf_hash,
    parse_max_age,
    sign_note,
    tree_hash,
    verify_receipt,
)
from custodes.log import (
    WitnessPolicy as ReceiptPolicy,
)
from custodes.witness import Evidence, WitnessPolicy, verify_evidence
from custodes.witness._run import cosignature_signer
from tests.unit.witness.helpers import FakeLog

ROOT = Path(__file__).resolve().parents[3]
LEAVES = [f'{{"n":{i}}}'.encode() for i in range(5)]
HOUR = 3600


@pytest.fixture
def log_key() -> NoteSigner:
    return NoteSigner.generate("fresh.example/log")


@pytest.fixture
def witnesses() -> list[NoteSigner]:
    return [NoteSigner.generate(f"w{i}.fresh.example", alg=ALG_COSIGNATURE_V1) for i in range(2)]


def _cosigned(log_key: NoteSigner, witnesses: list[NoteSigner], ages: list[int]) -> str:
    """A checkpoint of LEAVES cosigned by each witness ``ages[i]`` seconds ago."""
    signed = Checkpoint(log_key.name, len(LEAVES), tree_hash([leaf_hash(d) for d in LEAVES]))
    note = signed.sign(log_key).note
    now = int(time.time())
    for w, age in zip(witnesses, ages, strict=True):
        note = sign_note(note, [w], timestamp=now - age)
    return note.to_text()


def _policy_text(log_key: NoteSigner, witnesses: list[NoteSigner]) -> str:
    lines = [f"log {log_key.verifier.to_key()}"]
    lines += [f"witness {w.name} {w.verifier.to_key()}" for w in witnesses]
    return "\n".join([*lines, "group g all " + " ".join(w.name for w in witnesses), "quorum g"])


@pytest.mark.parametrize("parse", [WitnessPolicy.from_text, ReceiptPolicy.from_text])
def test_a_stale_cosignature_does_not_count_under_a_max_age(
    log_key: NoteSigner, witnesses: list[NoteSigner], parse: object
) -> None:
    policy = parse(_policy_text(log_key, witnesses) + "\n")  # type: ignore[operator]
    text = _cosigned(log_key, witnesses, [60, 3 * HOUR])
    note = SignedCheckpoint.from_text(text, log_key.verifier).note
    assert policy.check(note)  # no max age: any age counts
    strict = policy.with_max_age(HOUR)
    with pytest.raises(VerificationError, match="too old to count") as refused:
        strict.check(note)
    assert witnesses[1].name in refused.value.message
    assert witnesses[0].name not in refused.value.message.split("(")[-1]
    assert policy.with_max_age(4 * HOUR).check(note)
    # A cosignature from the future (beyond clock skew) does not count either.
    future = _cosigned(log_key, witnesses, [60, -2 * HOUR])
    with pytest.raises(VerificationError):
        strict.check(SignedCheckpoint.from_text(future, log_key.verifier).note)


def test_receipts_refuse_stale_cosignatures_under_a_max_age(
    log_key: NoteSigner, witnesses: list[NoteSigner]
) -> None:
    text = _cosigned(log_key, witnesses, [2 * HOUR, 2 * HOUR])
    signed = SignedCheckpoint.from_text(text, log_key.verifier)
    proof = inclusion_proof(2, len(LEAVES), [leaf_hash(d) for d in LEAVES])
    receipt = Receipt.build(2, proof, signed, entry_data=LEAVES[2]).to_text()
    policy = ReceiptPolicy.from_text(_policy_text(log_key, witnesses) + "\n")
    assert verify_receipt(receipt, log_key.verifier, witness_policy=policy).index == 2
    with pytest.raises(VerificationError, match="newer than 3600 s"):
        verify_receipt(receipt, log_key.verifier, witness_policy=policy.with_max_age(HOUR))


def test_witness_and_log_verify_are_strict_by_default(
    tmp_path: Path,
    log_key: NoteSigner,
    witnesses: list[NoteSigner],
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = tmp_path / "overseer.policy"
    policy.write_text(_policy_text(log_key, witnesses) + "\n")
    vkey = log_key.verifier.to_key()
    stale = tmp_path / "stale.txt"
    stale.write_text(_cosigned(log_key, witnesses, [2 * HOUR, 90]))
    fresh = tmp_path / "fresh.txt"
    fresh.write_text(_cosigned(log_key, witnesses, [30, 90]))
    base = ["witness", "verify", "--log-key", vkey, "--policy", str(policy)]
    assert main([*base, str(stale)]) == 1  # default --max-age 1h
    err = capsys.readouterr().err
    assert "too old to count" in err and witnesses[0].name in err
    assert main([*base, str(fresh)]) == 0
    assert main([*base, "--max-age", "3h", str(stale)]) == 0
    assert main([*base, "--max-age", "none", str(stale)]) == 0
    assert main([*base, "--max-age", "soon", str(stale)]) == 1
    assert "malformed maximum cosignature age" in capsys.readouterr().err
    # log verify --receipt --policy: the same default.
    signed = SignedCheckpoint.from_text(stale.read_text(), log_key.verifier)
    proof = inclusion_proof(1, len(LEAVES), [leaf_hash(d) for d in LEAVES])
    receipt = tmp_path / "receipt.tlog-proof"
    receipt.write_text(Receipt.build(1, proof, signed, entry_data=LEAVES[1]).to_text())
    verify = ["log", "verify", "--key", vkey, "--receipt", str(receipt), "--policy", str(policy)]
    assert main(verify) == 1
    assert "too old to count" in capsys.readouterr().err
    assert main([*verify, "--max-age", "1d"]) == 0


def test_parse_max_age() -> None:
    assert parse_max_age("90s") == 90
    assert parse_max_age("10m") == 600
    assert parse_max_age("1h") == 3600
    assert parse_max_age("2d") == 172800
    assert parse_max_age("45") == 45
    assert parse_max_age("none") is None
    for bad in ("", "0", "-5", "1w", "1.5h", "h"):
        with pytest.raises(InputError, match="malformed maximum cosignature age"):
            parse_max_age(bad)


@pytest.mark.parametrize("parse", [WitnessPolicy.from_text, ReceiptPolicy.from_text])
def test_a_policy_file_takes_the_constitutions_witness_keys(parse: object) -> None:
    doc = yaml.safe_load((ROOT / "examples" / "constitution.yaml").read_text())
    keys = [w["key"] for w in doc["witnesses"]["list"]]
    assert all(NoteVerifier.from_key(k).alg == 0x01 for k in keys)  # the form the demo uses
    lines = [f"witness w{i} {k}" for i, k in enumerate(keys)]
    policy = parse("\n".join([*lines, "group g any w0 w1", "quorum g", ""]))  # type: ignore[operator]
    # The witness's cosignature/v1 key (same Ed25519 key, type 0x04 key id) is what counts.
    seed_file = ROOT / "examples" / "keys" / "witness.asi.example.skey"
    witness = cosignature_signer(seed_file.read_text().strip())  # as the demo's witness runs
    assert witness.alg == ALG_COSIGNATURE_V1
    log_key = NoteSigner.generate("demo.example/log")
    text = Checkpoint(log_key.name, 1, leaf_hash(b"x")).sign(log_key).note
    note = sign_note(text, [witness], timestamp=int(time.time()))
    assert policy.check(note)


def test_evidence_that_proves_nothing_fails_verify_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from custodes.witness import AddCheckpointRequest

    log_key = NoteSigner.generate("evidence.example/log")
    log = FakeLog(log_key).grow(10)
    held = log.checkpoint()
    log.grow(5)
    honest = AddCheckpointRequest.from_bytes(log.request(10))
    corrupted = (bytes([honest.proof[0][0] ^ 1]) + honest.proof[0][1:], *honest.proof[1:])
    when = datetime(2026, 12, 7, tzinfo=UTC)
    for proof, why in ((corrupted, "proves nothing"), (honest.proof, "consistent")):
        evidence = Evidence(
            origin=log_key.name,
            kind="inconsistent",
            held_note=held,
            offered_note=log.checkpoint(),
            old_size=10,
            proof=tuple(proof),
            detected_at=when,
        )
        with pytest.raises(VerificationError, match=why):
            verify_evidence(evidence, log_key.verifier)
        path = tmp_path / "evidence.json"
        path.write_text(evidence.to_json())
        vkey = log_key.verifier.to_key()
        assert main(["witness", "evidence", "verify", str(path), "--log-key", vkey]) == 1
        err = capsys.readouterr().err
        assert "EQUIVOCATION" not in err and "Traceback" not in err
    # Real proof of a fork: the fork's own proof from 10, against the held size-10 root.
    fork = FakeLog(log_key, log.leaves[:6]).grow(9, tag=b"fork")
    proof = AddCheckpointRequest.from_bytes(fork.request(10)).proof
    proven = Evidence(
        origin=log_key.name,
        kind="inconsistent",
        held_note=held,
        offered_note=fork.checkpoint(),
        old_size=10,
        proof=tuple(proof),
        detected_at=when,
    )
    assert verify_evidence(proven, log_key.verifier).conclusive


def test_witness_policy_prints_a_policy_for_the_demo_constitution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_key = NoteSigner.generate("custodes.local/log")
    constitution = str(ROOT / "examples" / "constitution.yaml")
    vkey = log_key.verifier.to_key()
    args = ["witness", "policy", "--constitution", constitution, "--log-key", vkey]
    assert main([*args, "--quorum", "all"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "demo.policy"
    path.write_text(text)
    policy = WitnessPolicy.from_file(path)
    assert [w.name for w in policy.witnesses] == ["witness.asi.example", "witness.auditor.example"]
    assert policy.describe().startswith("2 of")
    assert ReceiptPolicy.from_text(text).logs == (log_key.verifier,)
    # A checkpoint cosigned by both demo witnesses (their keys as the demo runs them) passes
    # `witness verify` with the printed policy.
    signers = [
        cosignature_signer((ROOT / "examples" / "keys" / f"{w}.skey").read_text().strip())
        for w in ("witness.asi.example", "witness.auditor.example")
    ]
    cp = Checkpoint(log_key.name, 1, leaf_hash(b"x")).sign(log_key).note
    note = sign_note(cp, signers, timestamp=int(time.time()))
    (tmp_path / "cp.txt").write_text(note.to_text())
    verify = ["witness", "verify", str(tmp_path / "cp.txt"), "--log-key", vkey]
    assert main([*verify, "--policy", str(path)]) == 0
    assert main([*args, "--quorum", "3"]) == 1
    assert "a number from 1 to 2" in capsys.readouterr().err
