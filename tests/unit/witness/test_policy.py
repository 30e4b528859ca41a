"""Witness policy (C2SP tlog-policy): parsing, quorum evaluation, real cosigned checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodes.errors import InputError, VerificationError
from custodes.log import ALG_COSIGNATURE_V1, NoteSigner, NoteVerifier, SignedCheckpoint
from custodes.log import WitnessPolicy as LogWitnessPolicy
from custodes.witness import WitnessPolicy, cosignature_verifier
from tests.unit.witness.helpers import ecdsa_vkey

REKOR_V2 = "log2025-alpha3.rekor.sigstage.dev-4026479"


def _witness(name: str) -> NoteSigner:
    return NoteSigner.generate(name, alg=ALG_COSIGNATURE_V1)


@pytest.fixture(scope="module")
def rekor(data_dir: Path) -> tuple[dict[str, object], str]:
    folder = data_dir / "testvectors" / "note" / "checkpoints"
    meta = json.loads((folder / f"{REKOR_V2}.json").read_text())
    return meta, (folder / f"{REKOR_V2}.txt").read_text()


def test_rekor_v2_staging_checkpoint_meets_2_and_3_of_3(
    rekor: tuple[dict[str, object], str],
) -> None:
    # Real cosignatures by three witnesses of the staging witness network (carried vectors).
    meta, text = rekor
    log_key = NoteVerifier.from_key(meta["log_key"]["vkey"])  # type: ignore[index]
    vkeys = [w["vkey"] for w in meta["witnesses"]]  # type: ignore[attr-defined]
    lines = [f"log {log_key.to_key()}"]
    lines += [f"witness w{i} {v}" for i, v in enumerate(vkeys)]
    for k in ("2", "all"):
        policy = WitnessPolicy.from_text(
            "\n".join([*lines, f"group g {k} w0 w1 w2", "quorum g"]) + "\n"
        )
        signed = policy.verify(text)
        assert signed.checkpoint.size == 4026479
        assert policy.cosigners(signed.note) == {"w0", "w1", "w2"}
    stranger = _witness("stranger.example")
    policy = WitnessPolicy.from_text(
        "\n".join(
            [
                *lines,
                f"witness w3 {stranger.verifier.to_key()}",
                "group g 4 w0 w1 w2 w3",
                "quorum g",
            ]
        )
        + "\n"
    )
    with pytest.raises(VerificationError, match="lacks the witness quorum"):
        policy.verify(text)


def test_one_flipped_bit_in_a_cosignature_loses_that_witness(
    rekor: tuple[dict[str, object], str],
) -> None:
    meta, text = rekor
    log_key = NoteVerifier.from_key(meta["log_key"]["vkey"])  # type: ignore[index]
    verifiers = [cosignature_verifier(w["vkey"]) for w in meta["witnesses"]]  # type: ignore[attr-defined]
    line = text.splitlines()[-1]
    blob = line.rsplit(" ", 1)[1]
    flipped = blob[:20] + ("A" if blob[20] != "A" else "B") + blob[21:]
    tampered = text.replace(blob, flipped)
    signed = SignedCheckpoint.from_text(tampered, log_key)
    assert len(signed.cosigned_by(verifiers)) == 2
    policy = WitnessPolicy.threshold(3, verifiers)
    with pytest.raises(VerificationError):
        policy.check(signed)
    WitnessPolicy.threshold(2, verifiers).check(signed)


def test_vkey_cases_from_transparency_dev_formats(data_dir: Path) -> None:
    doc = json.loads((data_dir / "testvectors/note/formats_cosignature_v1.json").read_text())
    cases = {c["id"]: c for c in doc["vkey_parse_cases"]}
    converted = cosignature_verifier(cases["ed25519-note-key-converted"]["vkey"])
    assert (converted.alg, converted.key_id.hex()) == (ALG_COSIGNATURE_V1, "fdd2dbc7")
    native = cosignature_verifier(cases["native-ed25519-cosignature-v1"]["vkey"])
    assert native.key_id.hex() == "da77ade7"
    # ML-DSA-44 is not an Ed25519 cosignature key; the others are malformed.
    for case_id in (
        "native-ml-dsa-44",
        "wrong-number-of-parts",
        "invalid-base64",
        "invalid-algorithm",
        "invalid-keyhash",
        "incorrect-keyhash",
    ):
        with pytest.raises(InputError):
            cosignature_verifier(cases[case_id]["vkey"])


def test_timestamp_vector_decodes(data_dir: Path) -> None:
    import base64

    doc = json.loads((data_dir / "testvectors/note/formats_cosignature_v1.json").read_text())
    [works] = [c for c in doc["timestamp_cases"] if c["id"] == "works"]
    raw = base64.b64decode(works["signature_base64"])
    assert int.from_bytes(raw[4:12], "big") == works["expect"]["timestamp"]


def test_groups_nest_and_names_must_be_defined_first() -> None:
    a, b, c, d = (_witness(f"{n}.example") for n in "abcd")
    text = (
        f"witness A {a.verifier.to_key()}\nwitness B {b.verifier.to_key()}\n"
        f"witness C {c.verifier.to_key()}\n\twitness D {d.verifier.to_key()} https://d\n"
        "# two organisations\ngroup X any A B\ngroup Y 2 C D\ngroup XY all X Y\n"
        "quorum XY\n"
    )
    policy = WitnessPolicy.from_text(text)
    assert policy.satisfied_by({"A", "C", "D"})
    assert not policy.satisfied_by({"A", "B", "C"})
    assert policy.witness("D").url == "https://d"
    assert WitnessPolicy.from_text(policy.to_text()).satisfied_by({"B", "C", "D"})
    # The log package's parser (written separately) agrees on the same file.
    theirs = LogWitnessPolicy.from_text(text)
    assert theirs.quorum == policy.quorum == "XY"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("quorum X\n", "line 1", "undefined"),
        ("group G 1 A\nquorum G\n", "line 1", "undefined"),
        ("witness A {a}\ngroup G 2 A\nquorum G\n", "line 2", "threshold"),
        ("witness A {a}\ngroup G 01 A\nquorum G\n", "line 2", "threshold"),
        # Digits that str.isdigit passes but the format does not have: a superscript two
        # (int() fails on it) and ARABIC-INDIC DIGIT ONE (int() reads it as 1).
        ("witness A {a}\ngroup G \u00b2 A\nquorum G\n", "line 2", "threshold"),
        ("witness A {a}\ngroup G \u0661 A\nquorum G\n", "line 2", "threshold"),
        ("witness A {a}\nwitness A {b}\nquorum A\n", "line 2", "twice"),
        ("witness A {a}\nwitness B {a}\nquorum A\n", "line 2", "public key"),
        ("witness A {a}\ngroup G any A A\nquorum G\n", "line 2", "twice"),
        ("witness A {a}\nquorum A\nquorum A\n", "line 3", "exactly one"),
        ("witness A {a}\n", None, "no quorum"),
        ("witness A {ecdsa}\nquorum A\n", "line 1", "neither a cosignature"),
        ("log {a}\nquorum none\n", "line 1", "Ed25519"),
        ("frobnicate\nquorum none\n", "line 1", "unknown"),
        ("witness A {a}\x01\nquorum A\n", "line 1", "control"),
    ],
)
def test_malformed_policies_name_the_line(text: str, line: str | None, message: str) -> None:
    keys = {
        "a": _witness("a.example").verifier.to_key(),
        "b": _witness("b.example").verifier.to_key(),
        "log": NoteSigner.generate("log.example").verifier.to_key(),
        "ecdsa": ecdsa_vkey("ecdsa.example"),
    }
    with pytest.raises(InputError, match=message) as info:
        WitnessPolicy.from_text(text.format(**keys))
    assert info.value.where == line


def test_quorum_none_accepts_unwitnessed_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    log = NoteSigner.generate("log.example")
    policy = WitnessPolicy.from_text(f"log {log.verifier.to_key()}\nquorum none\n")
    from custodes.log import EMPTY_ROOT, Checkpoint

    text = Checkpoint(log.name, 0, EMPTY_ROOT).sign(log).to_text()
    assert policy.verify(text).checkpoint.size == 0
    assert "quorum none" in caplog.text


def test_threshold_policy_of_k_witnesses() -> None:
    ws = [_witness(f"w{i}.example") for i in range(3)]
    log = NoteSigner.generate("log.example")
    from custodes.log import EMPTY_ROOT, Checkpoint, sign_note

    body = Checkpoint(log.name, 0, EMPTY_ROOT).to_text()
    note = sign_note(body, [log])
    cosigs = [sign_note(body, [w], timestamp=1_700_000_000).signatures[0] for w in ws[:2]]
    from custodes.log import Note

    text = Note(note.text, note.signatures + tuple(cosigs)).to_text()
    assert WitnessPolicy.threshold(2, [w.verifier for w in ws]).verify(text, log.verifier)
    with pytest.raises(VerificationError):
        WitnessPolicy.threshold(3, [w.verifier for w in ws]).verify(text, log.verifier)
    with pytest.raises(InputError):
        WitnessPolicy.threshold(4, [w.verifier for w in ws])
