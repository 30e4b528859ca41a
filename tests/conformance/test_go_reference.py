"""custodes' log, verified by Go's reference packages (golang.org/x/mod/sumdb/note and tlog).

A log is built with :class:`TransparencyLog` on SQLite; a small Go program
(``tests/support/go/custodes-verify``), compiled here in GOPATH mode against Debian's
``golang-golang-x-mod-dev``, then checks every signed checkpoint with ``note.Open``, every
inclusion proof with ``tlog.CheckRecord`` and consistency proofs between every pair of
checkpoints with ``tlog.CheckTree``, and must reject tampered copies of each. Proof hashes are
passed in RFC 9162 order, which is also the order of ``tlog.RecordProof``/``tlog.TreeProof``
(the sibling nearest the leaf first): only the encoding is converted.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.log import Entry, NoteSigner, SignedCheckpoint, TransparencyLog, sign_note
from custodes.log._note import ALG_COSIGNATURE_V1
from custodes.log._types import ANNOTATION

pytestmark = pytest.mark.go

GOPATH_SYSTEM = Path("/usr/share/gocode")
SOURCE = Path(__file__).resolve().parents[1] / "support" / "go" / "custodes-verify" / "main.go"
BATCHES = (1, 2, 5, 9, 16, 31, 64)  # cumulative sizes 1, 3, 8, 17, 33, 64, 128


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _flip(data: bytes, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [
        what
        for what, ok in (
            ("the `go` command (Debian golang-go)", shutil.which("go") is not None),
            (
                "golang.org/x/mod/sumdb/{note,tlog} under /usr/share/gocode (Debian "
                "golang-golang-x-mod-dev)",
                all(
                    (GOPATH_SYSTEM / "src/golang.org/x/mod/sumdb" / p).is_dir()
                    for p in ("note", "tlog")
                ),
            ),
        )
        if not ok
    ]
    if missing:
        pytest.skip(
            "GO REFERENCE CONFORMANCE NOT RUN: missing "
            + " and ".join(missing)
            + "; run `bash scripts/test-deps.sh` as root to install them"
        )
    work = tmp_path_factory.mktemp("go")
    out = work / "custodes-verify"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "GO111MODULE": "off",
        "GOPATH": f"{GOPATH_SYSTEM}:{work / 'gopath'}",
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    result = subprocess.run(
        ["go", "build", "-o", str(out), str(SOURCE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"go build failed:\n{result.stderr}"
    return out


def _run(binary: Path, request: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [str(binary)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@pytest.fixture(scope="module")
def built_log(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TransparencyLog, list[SignedCheckpoint]]]:
    from custodes.store import create_db_engine, migrate

    path = tmp_path_factory.mktemp("db") / "custodes.db"
    engine: Engine = create_db_engine(f"sqlite:///{path}")
    migrate(engine)
    clock = FrozenClock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    log = TransparencyLog(engine, NoteSigner.generate("go.test.custodes/log"), clock=clock)
    checkpoints = []
    n = 0
    for batch in BATCHES:
        entries = [
            Entry.create(
                ANNOTATION,
                time=clock.now(),
                principal="conformance@custodes",
                body={"text": f"entry {n + i}"},
            )
            for i in range(batch)
        ]
        n += batch
        log.append_batch(entries)
        checkpoints.append(log.latest_checkpoint())
    assert [c.checkpoint.size for c in checkpoints] == [1, 3, 8, 17, 33, 64, 128]
    yield log, checkpoints
    log.close()
    engine.dispose()


def _inclusion_cases(log: TransparencyLog, checkpoints: list[SignedCheckpoint]) -> list[Any]:
    cases = []
    for signed in checkpoints:
        cp = signed.checkpoint
        for index, data in log.entries(0, cp.size):
            from custodes.log import leaf_hash

            cases.append(
                {
                    "index": index,
                    "size": cp.size,
                    "leaf_hash": _b64(leaf_hash(data)),
                    "proof": [_b64(h) for h in log.inclusion_proof(index, cp.size)],
                    "root": _b64(cp.root_hash),
                }
            )
    return cases


def _consistency_cases(log: TransparencyLog, checkpoints: list[SignedCheckpoint]) -> list[Any]:
    cases = []
    for i, old in enumerate(checkpoints):
        for new in checkpoints[i:]:
            a, b = old.checkpoint, new.checkpoint
            cases.append(
                {
                    "size1": a.size,
                    "size2": b.size,
                    "root1": _b64(a.root_hash),
                    "root2": _b64(b.root_hash),
                    "proof": [_b64(h) for h in log.consistency_proof(a.size, b.size)],
                }
            )
    return cases


def test_go_accepts_custodes_log(
    go_verifier: Path, built_log: tuple[TransparencyLog, list[SignedCheckpoint]]
) -> None:
    log, checkpoints = built_log
    inclusion = _inclusion_cases(log, checkpoints)
    consistency = _consistency_cases(log, checkpoints)
    assert len(inclusion) == 1 + 3 + 8 + 17 + 33 + 64 + 128
    # A witness-cosigned copy too: Go's note package does not know cosignature/v1 keys, so
    # it must keep the cosignatures as unverified and still accept the log's signature.
    witness = NoteSigner.generate("witness.go.test", alg=ALG_COSIGNATURE_V1)
    cosigned = SignedCheckpoint(
        checkpoints[-1].checkpoint, sign_note(checkpoints[-1].note, [witness], timestamp=1)
    )
    answer = _run(
        go_verifier,
        {
            "vkey": log.signer.verifier.to_key(),
            "checkpoints": [c.to_text() for c in [*checkpoints, cosigned]],
            "inclusion": inclusion,
            "consistency": consistency,
        },
    )
    for signed, got in zip([*checkpoints, cosigned], answer["checkpoints"], strict=True):
        cp = signed.checkpoint
        assert got == {"ok": True, "origin": cp.origin, "size": cp.size, "root": _b64(cp.root_hash)}
    bad = [(c, r) for c, r in zip(inclusion, answer["inclusion"], strict=True) if not r["ok"]]
    assert bad == []
    bad = [(c, r) for c, r in zip(consistency, answer["consistency"], strict=True) if not r["ok"]]
    assert bad == []
    assert len(answer["consistency"]) == len(checkpoints) * (len(checkpoints) + 1) // 2


def _tampered_checkpoints(signed: SignedCheckpoint) -> dict[str, str]:
    text = signed.to_text()
    body, sig_line = text.split("\n\n")
    name, blob = sig_line.removeprefix("\u2014 ").split(" ")
    raw = base64.b64decode(blob)
    other = NoteSigner.generate(signed.note.signatures[0].name)
    size_line = str(signed.checkpoint.size)
    return {
        "size changed": text.replace(f"\n{size_line}\n", f"\n{int(size_line) + 1}\n", 1),
        "root bit flipped": body.split("\n")[0]
        + "\n"
        + size_line
        + "\n"
        + _b64(_flip(signed.checkpoint.root_hash, 5))
        + "\n\n"
        + sig_line,
        "origin changed": "x" + text,
        "signature bit flipped": f"{body}\n\n\u2014 {name} {_b64(_flip(raw, 77))}",
        "signed by another key under our key id": f"{body}\n\n\u2014 {name} "
        + _b64(raw[:4] + other.sign(body.encode() + b"\n"))
        + "\n",
        "signature stripped": body + "\n\n",
    }


def test_go_rejects_tampering(
    go_verifier: Path, built_log: tuple[TransparencyLog, list[SignedCheckpoint]]
) -> None:
    log, checkpoints = built_log
    signed = checkpoints[-2]  # size 64
    tampered = _tampered_checkpoints(signed)
    assert signed.to_text() not in tampered.values()
    inclusion = [c for c in _inclusion_cases(log, [signed]) if c["index"] in (0, 13, 63)]
    bad_inclusion = []
    for c in inclusion:
        leaf = base64.b64decode(c["leaf_hash"])
        proof = [base64.b64decode(h) for h in c["proof"]]
        bad_inclusion += [
            {**c, "leaf_hash": _b64(_flip(leaf, 3))},
            {**c, "root": _b64(_flip(base64.b64decode(c["root"]), 200))},
            {**c, "index": (c["index"] + 1) % c["size"]},
            {**c, "proof": [_b64(h) for h in [_flip(proof[0]), *proof[1:]]]},
            {**c, "proof": [_b64(h) for h in [*proof[:-1], _flip(proof[-1], 255)]]},
            {**c, "proof": c["proof"][:-1]},
            {**c, "proof": [*c["proof"], c["proof"][0]]},
            {**c, "proof": list(reversed(c["proof"]))},
        ]
    consistency = [
        c
        for c in _consistency_cases(log, checkpoints)
        if c["size1"] < c["size2"] and c["size1"] in (3, 17)
    ]
    bad_consistency = []
    for c in consistency:
        proof = [base64.b64decode(h) for h in c["proof"]]
        bad_consistency += [
            {**c, "root1": _b64(_flip(base64.b64decode(c["root1"]), 9))},
            {**c, "root2": _b64(_flip(base64.b64decode(c["root2"]), 9))},
            {**c, "proof": [_b64(h) for h in [_flip(proof[0], 100), *proof[1:]]]},
            {**c, "proof": c["proof"][1:]},
            {**c, "size1": c["size1"] + 1},
        ]
    answer = _run(
        go_verifier,
        {
            "vkey": log.signer.verifier.to_key(),
            "checkpoints": list(tampered.values()),
            "inclusion": bad_inclusion,
            "consistency": bad_consistency,
        },
    )
    accepted = [name for name, r in zip(tampered, answer["checkpoints"], strict=True) if r["ok"]]
    assert accepted == []
    assert [c for c, r in zip(bad_inclusion, answer["inclusion"], strict=True) if r["ok"]] == []
    assert [c for c, r in zip(bad_consistency, answer["consistency"], strict=True) if r["ok"]] == []
    assert len(bad_inclusion) == 24
    assert len(bad_consistency) == 5 * len(consistency) > 0
