"""static/verify.js, run in real Chromium against vectors made by custodes' own Python log
code: checkpoint signatures (C2SP signed-note), witness cosignatures (C2SP tlog-cosignature,
for 0x04 keys and 0x01 keys converted), and RFC 9162 consistency proofs for every pair of sizes
up to 33, each also with every proof hash bit-flipped and with the sizes shifted."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from custodes.log import Checkpoint, NoteSigner, consistency_proof, leaf_hash, sign_note, tree_hash
from tests.support.server import ServerProcess

_ALG_COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ed25519_vkey(name: str, public: bytes) -> str:
    """The plain Ed25519 (0x01) vkey of a public key (C2SP signed-note), as constitutions
    list witness keys."""
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    encoded = _b64(bytes([0x01]) + public)
    return f"{name}+{key_id.hex()}+{encoded}"


_RUN = """
const [vectors, done] = [arguments[0], arguments[arguments.length - 1]];
import("/dashboard/static/verify.js").then(async (v) => {
  const out = {};
  const attempt = async (f) => { try { return await f(); } catch (e) {
    return (e instanceof v.VerifyError) ? "fail: " + e.message : "crash: " + e; } };
  const log = await v.parseVerifierKey(vectors.log_vkey);
  out.signed = await attempt(
    async () => (await v.verifyCheckpoint(vectors.cosigned, log)).size.toString());
  out.tampered = await attempt(() => v.verifyCheckpoint(vectors.tampered, log));
  out.cosigners = await attempt(async () => {
    const note = (await v.verifyCheckpoint(vectors.cosigned, log)).note;
    const keys = await Promise.all(vectors.witness_vkeys.map(v.parseVerifierKey));
    const valid = await v.verifyCosignatures(note, keys);
    return valid.map((c) => c.name + "@" + c.time.getTime() / 1000);
  });
  out.bad_cosignature = await attempt(async () => {
    const note = (await v.verifyCheckpoint(vectors.bad_cosigned, log)).note;
    return v.verifyCosignatures(note, [await v.parseVerifierKey(vectors.witness_vkeys[0])]);
  });
  out.bad_vkey = await attempt(() => v.parseVerifierKey(vectors.bad_vkey));
  const b = (s) => v.b64decode(s);
  out.proofs = [];
  for (const p of vectors.proofs) {
    const args = [BigInt(p.m), BigInt(p.n), b(p.root1), b(p.root2), p.proof.map(b)];
    const check = async () => { await v.verifyConsistency(...args); return "ok"; };
    out.proofs.push(await attempt(check));
  }
  done(out);
}, (e) => done({ error: String(e) }));
"""


def _vectors() -> dict[str, Any]:
    log = NoteSigner.generate("example.org/log")
    witness = NoteSigner.generate("witness.example", alg=_ALG_COSIGNATURE_V1)
    other = NoteSigner.generate("witness.other", alg=_ALG_COSIGNATURE_V1)
    leaves = [leaf_hash(f"entry {i}".encode()) for i in range(33)]
    signed = Checkpoint("example.org/log", 33, tree_hash(leaves)).sign(log)
    cosigned = sign_note(signed.note, [witness], timestamp=1_765_000_000)
    cosigned = sign_note(cosigned, [other], timestamp=1_765_000_001)
    text = cosigned.to_text()
    lines = text.split("\n")
    tampered = "\n".join([lines[0], "34", *lines[2:]])  # the size changed, the signature kept
    # A cosignature line made over another checkpoint, spliced onto this one.
    elsewhere = sign_note(
        Checkpoint("example.org/log", 32, tree_hash(leaves[:32])).sign(log).note,
        [witness],
        timestamp=1_765_000_000,
    ).to_text()
    spliced_line = [x for x in elsewhere.split("\n") if x.startswith("\u2014 witness.example ")]
    bad = "\n".join(
        spliced_line[0] if x.startswith("\u2014 witness.example ") else x for x in lines
    )
    # The 0x01 form of the second witness's key: converted to cosignature/v1 by the verifier.
    other_public = base64.b64decode(other.verifier.to_key().split("+", 2)[2])[1:]
    proofs = []
    expected = []
    for n in range(1, 34):
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, leaves[:n])
            case = {
                "m": m,
                "n": n,
                "root1": _b64(tree_hash(leaves[:m])),
                "root2": _b64(tree_hash(leaves[:n])),
                "proof": [_b64(h) for h in proof],
            }
            proofs.append(case)
            expected.append("ok")
            for i in range(len(proof)):  # every proof hash with one bit flipped
                flipped = bytearray(proof[i])
                flipped[i % 32] ^= 1 << (i % 8)
                bad_proof = [*proof[:i], bytes(flipped), *proof[i + 1 :]]
                proofs.append({**case, "proof": [_b64(h) for h in bad_proof]})
                expected.append("fail")
            if m < n:  # the older tree claimed one bigger: the proof must not fit
                proofs.append({**case, "m": m + 1})
                expected.append("fail")
    # Rollback and fork of equal sizes.
    proofs.append({**proofs[0], "m": 2, "n": 1, "proof": []})
    expected.append("fail")
    proofs.append(
        {
            "m": 5,
            "n": 5,
            "root1": _b64(tree_hash(leaves[:5])),
            "root2": _b64(bytes(32)),
            "proof": [],
        }
    )
    expected.append("fail")
    return {
        "log_vkey": log.verifier.to_key(),
        "witness_vkeys": [witness.verifier.to_key(), _ed25519_vkey("witness.other", other_public)],
        "cosigned": text,
        "tampered": tampered,
        "bad_cosigned": bad,
        "bad_vkey": log.verifier.to_key().replace("+", "+0", 1)[:-2] + "==",
        "proofs": proofs,
        "expected": expected,
    }


def test_verify_js_agrees_with_the_python_log(browser: Any, server: ServerProcess) -> None:
    browser.get(server.url("/dashboard/sign-in"))
    vectors = _vectors()
    browser.set_script_timeout(60)
    out = browser.execute_async_script(_RUN, vectors)
    assert "error" not in out, out
    assert out["signed"] == "33"
    assert out["tampered"].startswith("fail: the checkpoint's signature"), out["tampered"]
    assert out["cosigners"] == ["witness.example@1765000000", "witness.other@1765000001"]
    assert (
        out["bad_cosignature"] == "fail: the cosignature of witness witness.example does not verify"
    )
    assert out["bad_vkey"].startswith("fail: "), out["bad_vkey"]
    results = ["ok" if r == "ok" else r.split(":")[0] for r in out["proofs"]]
    wrong = [
        (p["m"], p["n"], got, want)
        for p, got, want in zip(vectors["proofs"], out["proofs"], vectors["expected"], strict=True)
        if (got == "ok") != (want == "ok")
    ]
    assert wrong == [], wrong[:5]
    assert "crash" not in results
    assert results.count("ok") == vectors["expected"].count("ok") > 500
