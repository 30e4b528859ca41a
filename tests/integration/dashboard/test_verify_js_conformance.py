"""static/verify.js, run in real Chromium against vectors made by custodes' own Python log
code: checkpoint signatures (C2SP signed-note), witness cosignatures (C2SP tlog-cosignature,
for 0x04 keys and 0x01 keys converted), and RFC 9162 consistency proofs for every pair of sizes
up to 33, each also with every proof hash bit-flipped and with the sizes shifted; RFC 9162
inclusion proofs for every (index, size) up to 33 and C2SP entry bundles (paths and parsing)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from custodes.log import (
    Checkpoint,
    Note,
    NoteSigner,
    consistency_proof,
    encode_entry_bundle,
    inclusion_proof,
    leaf_hash,
    sign_note,
    tile_path,
    tree_hash,
)
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


_RUN_INCLUSION = """
const [vectors, done] = [arguments[0], arguments[arguments.length - 1]];
import("/dashboard/static/verify.js").then(async (v) => {
  const attempt = async (f) => { try { return await f(); } catch (e) {
    return (e instanceof v.VerifyError) ? "fail: " + e.message : "crash: " + e; } };
  const b = (s) => v.b64decode(s);
  const out = { proofs: [], paths: [], bundles: [] };
  out.leaf = v.b64encode(await v.leafHash(b(vectors.leaf_data)));
  for (const p of vectors.proofs) {
    const args = [BigInt(p.index), BigInt(p.size), b(p.leaf), p.proof.map(b), b(p.root)];
    out.proofs.push(await attempt(async () => { await v.verifyInclusion(...args); return "ok"; }));
  }
  for (const [index, size] of vectors.bundle_of) {
    const got = v.entryBundle(BigInt(index), BigInt(size));
    out.paths.push([got.path, got.width, got.position]);
  }
  for (const [bundle, width] of vectors.bundles) {
    out.bundles.push(await attempt(
      () => v.parseEntryBundle(b(bundle), width).map((e) => v.b64encode(e))));
  }
  done(out);
}, (e) => done({ error: String(e) }));
"""


def _inclusion_vectors() -> dict[str, Any]:
    data = [f"entry {i}".encode() for i in range(33)]
    leaves = [leaf_hash(d) for d in data]
    proofs: list[dict[str, Any]] = []
    expected: list[str] = []
    for size in range(1, 34):
        root = _b64(tree_hash(leaves[:size]))
        for index in range(size):
            proof = inclusion_proof(index, size, leaves[:size])
            case = {
                "index": index,
                "size": size,
                "leaf": _b64(leaves[index]),
                "root": root,
                "proof": [_b64(h) for h in proof],
            }
            proofs.append(case)
            expected.append("ok")
            for i in range(len(proof)):  # every proof hash with one bit flipped
                flipped = bytearray(proof[i])
                flipped[(i * 7) % 32] ^= 1 << (i % 8)
                bad = [*proof[:i], bytes(flipped), *proof[i + 1 :]]
                proofs.append({**case, "proof": [_b64(h) for h in bad]})
                expected.append("fail")
            if size > 1:  # the proof of another leaf, and this leaf claimed at another index
                other = (index + 1) % size
                proofs.append({**case, "leaf": _b64(leaves[other])})
                expected.append("fail")
                if inclusion_proof(other, size, leaves[:size]) != proof:
                    proofs.append({**case, "index": other})
                    expected.append("fail")
            proofs.append({**case, "proof": [*case["proof"], _b64(bytes(32))]})  # one too many
            expected.append("fail")
    proofs.append({**proofs[0], "index": 1, "size": 1})  # an index past the tree
    expected.append("fail")
    bundle_of = [
        (0, 1),
        (5, 7),
        (255, 256),
        (255, 300),
        (256, 300),
        (299, 300),
        (1_234_067 * 256 + 3, 1_234_067 * 256 + 10),
        (1_234_067 * 256 + 3, 1_234_068 * 256 + 10),
        (9_999_999, 10_000_000),
    ]
    paths = []
    for index, size in bundle_of:
        tile = index // 256
        width = min(256, size - tile * 256)
        paths.append(["/" + tile_path(-1, tile, width), width, index % 256])
    bundles = [
        [_b64(encode_entry_bundle(data[:3])), 3],
        [_b64(encode_entry_bundle([b"", b"x" * 300])), 2],
        [_b64(encode_entry_bundle(data[:3])), 4],  # fewer entries than asked
        [_b64(encode_entry_bundle(data[:3])[:-1]), 3],  # cut inside an entry
        [_b64(encode_entry_bundle(data[:3]) + b"\x00"), 3],  # cut inside a length
    ]
    return {
        "leaf_data": _b64(data[7]),
        "leaf": _b64(leaves[7]),
        "proofs": proofs,
        "expected": expected,
        "bundle_of": bundle_of,
        "paths": paths,
        "bundles": bundles,
        "bundle_entries": [[_b64(d) for d in data[:3]], ["", _b64(b"x" * 300)]],
    }


def test_verify_js_checks_inclusion_as_the_python_log_proves_it(
    browser: Any, server: ServerProcess
) -> None:
    """RFC 9162 §2.1.3.2 inclusion for every (index, size) up to 33, each proof hash flipped,
    another leaf, another index and a proof one hash too long; C2SP entry-bundle paths (full,
    partial, x-grouped indices) and bundle parsing (short, cut inside an entry or a length)."""
    browser.get(server.url("/dashboard/sign-in"))
    vectors = _inclusion_vectors()
    browser.set_script_timeout(60)
    out = browser.execute_async_script(_RUN_INCLUSION, vectors)
    assert "error" not in out, out
    assert out["leaf"] == vectors["leaf"]
    wrong = [
        (p["index"], p["size"], got, want)
        for p, got, want in zip(vectors["proofs"], out["proofs"], vectors["expected"], strict=True)
        if (got == "ok") != (want == "ok")
    ]
    assert wrong == [], wrong[:5]
    assert not [r for r in out["proofs"] if r.startswith("crash")]
    assert out["proofs"].count("ok") == sum(range(1, 34))
    assert out["paths"] == vectors["paths"]
    assert out["bundles"][:2] == vectors["bundle_entries"]
    assert out["bundles"][2] == "fail: the entry bundle holds 3 entries, not the 4 asked for"
    assert out["bundles"][3] == "fail: the entry bundle ends inside an entry"
    assert out["bundles"][4] == "fail: the entry bundle ends inside an entry's length"


_RUN_POLICY = """
const [cases, done] = [arguments[0], arguments[arguments.length - 1]];
import("/dashboard/static/verify.js").then(async (v) => {
  const out = [];
  for (const c of cases) {
    try {
      const policy = await v.parsePolicy(c.text);
      const met = c.subsets.map((names) => v.quorumMet(policy, names));
      let cosigned = null;
      if (c.note) {
        try {
          const note = v.parseNote(c.note);
          const got = await v.verifyPolicyCosignatures(note, policy);
          cosigned = { names: got.cosigners.map((x) => x.name).sort(), met: got.met };
        } catch (e) {
          cosigned = (e instanceof v.VerifyError) ? "fail: " + e.message : "crash: " + e;
        }
      }
      out.push({ ok: true, describe: v.describeQuorum(policy),
        witnesses: policy.witnesses.map((w) => [w.name, w.key.name, Array.from(w.key.id)]),
        logs: policy.logs.map((l) => l.name), met, cosigned });
    } catch (e) {
      out.push({ ok: false, error: (e instanceof v.VerifyError) ? e.message : "crash: " + e });
    }
  }
  done(out);
}, (e) => done([{ error: String(e) }]));
"""


def _policy_cases() -> list[dict[str, Any]]:
    """Witness policies (C2SP tlog-policy) valid and not, each with every set of its witnesses
    as cosigners; a few with a note cosigned by some of them."""
    from itertools import combinations

    from custodes.witness import WitnessPolicy

    keys = [NoteSigner.generate(f"w{i}.example", alg=_ALG_COSIGNATURE_V1) for i in range(4)]
    vk = [k.verifier.to_key() for k in keys]
    public = [base64.b64decode(v.split("+", 2)[2])[1:] for v in vk]
    log = NoteSigner.generate("example.org/log")
    texts = [
        f"witness a {vk[0]}\nwitness b {vk[1]}\ngroup g 1 a b\nquorum g\n",
        f"# overseers\nlog {log.verifier.to_key()} https://log.example\n\n"
        f"witness a {vk[0]} https://a.example/\n\twitness  b\t{vk[1]}  \n"
        f"witness c {_ed25519_vkey('w2.example', public[2])}\n"
        "group g1 any a b\ngroup g2 all g1 c\nquorum g2",
        f"witness a {vk[0]}\nwitness b {vk[1]}\nwitness c {vk[2]}\nwitness d {vk[3]}\n"
        "group two 2 a b c\ngroup top 2 two d a\nquorum top\n",
        f"witness a {vk[0]}\nquorum a\n",
        f"witness a {vk[0]}\nquorum none\n",
        "quorum none\n",
        f"witness\u00a0a\u2003{vk[0]}\nquorum a\n",  # Unicode spaces split words, as str.split()
        # Refused, each for one reason.
        f"witness a {vk[0]}\n",
        f"witness a {vk[0]}\nquorum a\nquorum a\n",
        f"quorum a\nwitness a {vk[0]}\n",
        f"witness a {vk[0]}\ngroup g 1 a b\nquorum g\n",
        f"witness a {vk[0]}\nwitness a {vk[1]}\nquorum a\n",
        f"witness none {vk[0]}\nquorum none\n",
        f"witness a {vk[0]}\nwitness b {vk[0]}\nquorum a\n",
        f"witness a {vk[0]}\nwitness b {vk[1]}\ngroup g 0 a b\nquorum g\n",
        f"witness a {vk[0]}\nwitness b {vk[1]}\ngroup g 01 a b\nquorum g\n",
        f"witness a {vk[0]}\nwitness b {vk[1]}\ngroup g 3 a b\nquorum g\n",
        f"witness a {vk[0]}\nwitness b {vk[1]}\ngroup g most a b\nquorum g\n",
        f"witness a {vk[0]}\nwitness b {vk[1]}\ngroup g 1 a a\nquorum g\n",
        f"witness a {vk[0]}\nwitnesses b {vk[1]}\nquorum a\n",
        "witness a\nquorum a\n",
        f"witness a {vk[0]} https://a.example extra\nquorum a\n",
        f"log {vk[0]}\nquorum none\n",
        f"witness a {vk[0]}\r\nquorum a\n",
        f"witness a {vk[0][:-3]}AAA\nquorum a\n",
        f"witness a {log.verifier.to_key()}x\nquorum a\n",
        "".join(
            f"witness w{i} {NoteSigner.generate(f'n{i}', alg=4).verifier.to_key()}\n"
            for i in range(257)
        )
        + "quorum none\n",
    ]
    leaves = [leaf_hash(b"x")]
    note = Checkpoint("example.org/log", 1, tree_hash(leaves)).sign(log).note
    by_two = sign_note(
        sign_note(note, [keys[0]], timestamp=1_765_000_000), [keys[2]], timestamp=1_765_000_001
    ).to_text()
    lines = by_two.split("\n")
    tampered = "\n".join(
        x[:-6] + ("A" if x[-6] != "A" else "B") + x[-5:]
        if x.startswith("\u2014 w2.example ")
        else x
        for x in lines
    )
    cases = []
    for text in texts:
        try:
            policy = WitnessPolicy.from_text(text)
        except Exception as exc:  # noqa: BLE001 - recorded: JS must refuse it too
            cases.append({"text": text, "python": f"refused: {exc}", "subsets": []})
            continue
        names = [w.name for w in policy.witnesses]
        subsets = [list(c) for n in range(len(names) + 1) for c in combinations(names, n)]
        cases.append(
            {
                "text": text,
                "python": "ok",
                "describe": policy.describe(),
                "witnesses": [
                    [w.name, w.verifier.name, list(w.verifier.key_id)] for w in policy.witnesses
                ],
                "logs": [v.name for v, _ in policy.logs],
                "subsets": subsets,
                "met": [policy.satisfied_by(s) for s in subsets],
            }
        )
    for case in cases[1:3]:  # the nested policies, over a note two of their witnesses cosigned
        policy = WitnessPolicy.from_text(case["text"])
        signed = Note.from_text(by_two)
        case["note"] = by_two
        case["cosigned"] = {
            "names": sorted(policy.cosigners(signed)),
            "met": policy.satisfied_by(policy.cosigners(signed)),
        }
        cases.append({**case, "note": tampered, "cosigned": "fail"})
    return cases


def test_verify_js_reads_witness_policies_as_the_python_witness_package(
    browser: Any, server: ServerProcess
) -> None:
    """The page reads the witness policy an overseer pastes (C2SP tlog-policy) as
    custodes.witness.WitnessPolicy does: the same policies refused, the same witnesses, keys
    (0x01 keys converted to cosignature/v1) and quorum description, the same verdict for every
    set of cosigners, and the same cosigners found on a real cosigned note; a cosignature under
    a policy witness's key that does not verify is an alarm, not a silent miss."""
    browser.get(server.url("/dashboard/sign-in"))
    cases = _policy_cases()
    browser.set_script_timeout(60)
    out = browser.execute_async_script(_RUN_POLICY, cases)
    assert len(out) == len(cases), out[:1]
    assert not [o for o in out if "crash" in str(o.get("error", ""))], out
    checked = 0
    for case, got in zip(cases, out, strict=True):
        if case["python"] != "ok":
            assert got["ok"] is False, (case["text"][:200], case["python"], got)
            assert got["error"].startswith("witness policy line") or "quorum" in got["error"], got
            continue
        assert got["ok"] is True, (case["text"][:200], got)
        assert got["describe"] == case["describe"]
        assert got["witnesses"] == case["witnesses"]
        assert got["logs"] == case["logs"]
        assert got["met"] == case["met"], case["text"]
        checked += len(case["met"])
        if case.get("note"):
            if case["cosigned"] == "fail":
                assert got["cosigned"] == (
                    "fail: the cosignature of witness w2.example does not verify"
                ), got["cosigned"]
            else:
                assert got["cosigned"] == case["cosigned"]
    # 7 policies read (2 of them again over a tampered note), 20 refused, each for its reason.
    assert sum(c["python"] == "ok" for c in cases) == 9
    assert sum(c["python"] != "ok" for c in cases) == 20
    assert checked > 40
    # Both nested policies are met by the note's two cosigners (a, and c or w2): the vectors
    # reach the "met" verdict through groups of groups, not only the refusals.
    assert [c["cosigned"]["met"] for c in cases if isinstance(c.get("cosigned"), dict)] == [
        True,
        True,
    ]
