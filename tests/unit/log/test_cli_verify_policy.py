"""`custodes log verify --policy`: receipts and checkpoints are trusted only with the quorum of
witness cosignatures a C2SP tlog-policy demands (issue 6)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from custodes.cli import main
from custodes.log import (
    Checkpoint,
    NoteSigner,
    SignedCheckpoint,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_hash,
)
from custodes.log._note import ALG_COSIGNATURE_V1, sign_note
from custodes.log._receipt import Receipt

LEAVES = [f'{{"n":{i}}}'.encode() for i in range(7)]


@pytest.fixture
def keys() -> tuple[NoteSigner, list[NoteSigner]]:
    log_key = NoteSigner.generate("example.org/log")
    witnesses = [NoteSigner.generate(f"w{i}.example", alg=ALG_COSIGNATURE_V1) for i in range(2)]
    return log_key, witnesses


def _checkpoint(log_key: NoteSigner, size: int, cosigners: list[NoteSigner]) -> SignedCheckpoint:

    hashes = [leaf_hash(d) for d in LEAVES[:size]]
    signed = Checkpoint(log_key.name, size, tree_hash(hashes)).sign(log_key)
    note = signed.note
    if cosigners:
        note = sign_note(note, cosigners, timestamp=int(time.time()))
    return SignedCheckpoint(checkpoint=signed.checkpoint, note=note)


def _policy(path: Path, log_key: NoteSigner, witnesses: list[NoteSigner], k: int) -> Path:
    lines = [f"log {log_key.verifier.to_key()}"]
    lines += [f"witness {w.name} {w.verifier.to_key()}" for w in witnesses]
    lines += [f"group g {k} " + " ".join(w.name for w in witnesses), "quorum g"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _receipt(path: Path, signed: SignedCheckpoint, index: int) -> Path:
    hashes = [leaf_hash(d) for d in LEAVES[: signed.checkpoint.size]]
    proof = inclusion_proof(index, signed.checkpoint.size, hashes)
    receipt = Receipt.build(index, proof, signed, entry_data=LEAVES[index])
    path.write_text(receipt.to_text())
    return path


def test_receipt_needs_the_policys_quorum(
    tmp_path: Path,
    keys: tuple[NoteSigner, list[NoteSigner]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_key, witnesses = keys
    vkey = log_key.verifier.to_key()
    one = _receipt(tmp_path / "one.tlog-proof", _checkpoint(log_key, 7, witnesses[:1]), 3)
    both = _receipt(tmp_path / "both.tlog-proof", _checkpoint(log_key, 7, witnesses), 3)
    two_of_two = _policy(tmp_path / "2of2.policy", log_key, witnesses, 2)
    one_of_two = _policy(tmp_path / "1of2.policy", log_key, witnesses, 1)

    assert main(["log", "verify", "--key", vkey, "--receipt", str(one)]) == 0
    assert (
        main(["log", "verify", "--key", vkey, "--receipt", str(one), "--policy", str(one_of_two)])
        == 0
    )
    capsys.readouterr()
    assert (
        main(["log", "verify", "--key", vkey, "--receipt", str(one), "--policy", str(two_of_two)])
        == 1
    )
    assert "does not meet the witness quorum" in capsys.readouterr().err
    assert (
        main(["log", "verify", "--key", vkey, "--receipt", str(both), "--policy", str(two_of_two)])
        == 0
    )
    assert "cosigned by w0.example, w1.example" in capsys.readouterr().out


def test_newer_checkpoint_needs_the_policys_quorum(
    tmp_path: Path,
    keys: tuple[NoteSigner, list[NoteSigner]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_key, witnesses = keys
    vkey = log_key.verifier.to_key()
    old = tmp_path / "old.checkpoint"
    old.write_text(_checkpoint(log_key, 4, []).to_text())
    new_unwitnessed = tmp_path / "new0.checkpoint"
    new_unwitnessed.write_text(_checkpoint(log_key, 7, witnesses[:1]).to_text())
    new_witnessed = tmp_path / "new2.checkpoint"
    new_witnessed.write_text(_checkpoint(log_key, 7, witnesses).to_text())
    proof = tmp_path / "proof.txt"

    hashes = [leaf_hash(d) for d in LEAVES]
    proof.write_text(
        "\n".join(base64.b64encode(h).decode() for h in consistency_proof(4, 7, hashes)) + "\n"
    )
    policy = _policy(tmp_path / "2of2.policy", log_key, witnesses, 2)
    base = ["log", "verify", "--key", vkey, "--old", str(old), "--proof", str(proof)]

    assert main([*base, "--new", str(new_unwitnessed)]) == 0
    capsys.readouterr()
    assert main([*base, "--new", str(new_unwitnessed), "--policy", str(policy)]) == 1
    assert "witness quorum" in capsys.readouterr().err
    assert main([*base, "--new", str(new_witnessed), "--policy", str(policy)]) == 0


def test_malformed_policy_is_named(
    tmp_path: Path,
    keys: tuple[NoteSigner, list[NoteSigner]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_key, _ = keys
    bad = tmp_path / "bad.policy"
    bad.write_text("quorum\n")
    receipt = _receipt(tmp_path / "r.tlog-proof", _checkpoint(log_key, 7, []), 0)
    assert (
        main(
            [
                "log",
                "verify",
                "--key",
                log_key.verifier.to_key(),
                "--receipt",
                str(receipt),
                "--policy",
                str(bad),
            ]
        )
        == 1
    )
    assert "bad.policy" in capsys.readouterr().err
