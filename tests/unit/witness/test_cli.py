"""``custodes witness`` commands that need no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.cli import main
from custodes.log import ALG_COSIGNATURE_V1, NoteSigner, NoteVerifier


def test_keygen_writes_a_cosignature_key_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "witness", "keygen", "witness.test/w"]) == 0
    vkey = capsys.readouterr().out.strip()
    verifier = NoteVerifier.from_key(vkey)
    assert (verifier.name, verifier.alg) == ("witness.test/w", ALG_COSIGNATURE_V1)
    key_file = tmp_path / "witness.key"
    assert NoteSigner.from_key(key_file.read_text()).verifier == verifier
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert main(["--data-dir", str(tmp_path), "witness", "keygen", "witness.test/w"]) == 1
    assert "never overwritten" in capsys.readouterr().err


def test_evidence_verify_refuses_a_bogus_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "evidence.json"
    bogus.write_text('{"type": "something else"}')
    key = NoteSigner.generate("log.test/log").verifier.to_key()
    assert main(["witness", "evidence", "verify", str(bogus), "--log-key", key]) == 1
    assert "not a custodes evidence file" in capsys.readouterr().err


def test_serve_without_a_key_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = NoteSigner.generate("log.test/log").verifier.to_key()
    assert main(["--data-dir", str(tmp_path), "witness", "serve", "--log", key]) == 1
    assert "custodes witness keygen" in capsys.readouterr().err


def test_demo_ed25519_witness_key_signs_cosignatures_its_vkey_checks() -> None:
    # The demo constitution lists plain Ed25519 (0x01) witness vkeys; the witness converts its
    # 0x01 signer key the way transparency-dev/formats does, so the two still match.
    from custodes.witness import cosignature_verifier
    from custodes.witness._run import cosignature_signer

    plain = NoteSigner.generate("witness.demo.example")
    signer = cosignature_signer(plain.to_key())
    assert signer.alg == ALG_COSIGNATURE_V1
    verifier = cosignature_verifier(plain.verifier.to_key())
    assert signer.verifier == verifier
    body = b"log.example\n1\n" + b"A" * 43 + b"=\n"
    assert verifier.verify(body, signer.sign(body, timestamp=1_800_000_000))
    assert cosignature_signer(signer.to_key()).to_key() == signer.to_key()
