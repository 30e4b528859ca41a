// In-browser verification of the custodes log, with WebCrypto only (no library, no CDN):
//  - the checkpoint's Ed25519 signature (C2SP signed-note, key type 0x01),
//  - witness cosignatures (C2SP tlog-cosignature, cosignature/v1, key type 0x04),
//  - an RFC 9162 §2.1.4.2 consistency proof from the last checkpoint this browser saw,
//  - every entry the page shows: its raw bytes from the C2SP tlog-tiles entry bundle, hashed
//    here (RFC 9162 §2.1.1), its audit path walked to the verified root (§2.1.3.2).
// Keys come from what the overseer configured in this browser (localStorage), never from the
// server at verification time: a server that lies about its key is caught, not believed.
"use strict";

const enc = new TextEncoder();
const TRUST = "custodes.dashboard.trust/v1";
const LAST = "custodes.dashboard.lastCheckpoint/v1";
const SIG_PREFIX = "\u2014 "; // EM DASH and a space (C2SP signed-note)
const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE_V1 = 0x04;
const MAX_NOTE = 1 << 20;
const MAX_PROOF = 128; // a proof over 2^64 leaves has at most ~128 hashes

export class VerifyError extends Error {}

function fail(message) { throw new VerifyError(message); }

export function b64decode(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail(`not base64: ${text.slice(0, 40)}`);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }

async function keyId(name, alg, publicKey) {
  return (await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(alg), publicKey))).slice(0, 4);
}

// A C2SP signed-note verifier key: name+hex(key id)+base64(type || public key).
export async function parseVerifierKey(vkey) {
  // The name has no '+', the hash is 8 hex digits; the base64 key may itself contain '+'.
  const match = /^([^+]+)\+([^+]*)\+(.+)$/.exec(vkey.trim());
  if (!match) fail("a verifier key is name+keyhash+base64 key");
  const [, name, idHex, keyB64] = match;
  if (!name || /\s/.test(name)) fail(`invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(idHex)) fail(`key ${name}: the key hash must be 8 hex digits`);
  const raw = b64decode(keyB64);
  if (raw.length !== 33 || (raw[0] !== ALG_ED25519 && raw[0] !== ALG_COSIGNATURE_V1)) {
    fail(`key ${name}: expected an Ed25519 (0x01) or cosignature/v1 (0x04) key of 32 bytes`);
  }
  const alg = raw[0];
  const publicKey = raw.slice(1);
  const id = await keyId(name, alg, publicKey);
  if (hex(id) !== idHex) fail(`key ${name}: its key hash ${idHex} does not match the key (${hex(id)})`);
  return { name, alg, id, publicKey };
}

// A witness key as cosignature/v1: a plain Ed25519 key gets its id recomputed with type 0x04,
// as transparency-dev/formats NewVerifierForCosignatureV1 does.
async function asCosigner(key) {
  if (key.alg === ALG_COSIGNATURE_V1) return key;
  return { ...key, alg: ALG_COSIGNATURE_V1, id: await keyId(key.name, ALG_COSIGNATURE_V1, key.publicKey) };
}

export function parseNote(text) {
  if (text.length > MAX_NOTE) fail("the note is over 1 MiB");
  const split = text.lastIndexOf("\n\n");
  if (split < 0 || !text.endsWith("\n")) fail("malformed note: no blank line before the signatures");
  const body = text.slice(0, split + 1);
  const signatures = [];
  for (const line of text.slice(split + 2, -1).split("\n")) {
    if (!line.startsWith(SIG_PREFIX)) fail(`malformed signature line: ${line.slice(0, 60)}`);
    const [name, blob, ...rest] = line.slice(SIG_PREFIX.length).split(" ");
    if (!name || !blob || rest.length) fail(`malformed signature line: ${line.slice(0, 60)}`);
    const raw = b64decode(blob);
    if (raw.length < 5) fail(`signature of ${name} is too short`);
    signatures.push({ name, id: raw.slice(0, 4), signature: raw.slice(4) });
  }
  if (signatures.length === 0 || signatures.length > 100) fail("a note carries 1 to 100 signatures");
  return { body, signatures };
}

// C2SP tlog-checkpoint: origin, decimal size, base64 root hash, then optional extension lines.
export function parseCheckpoint(body) {
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) fail("a checkpoint has an origin, a size and a root hash");
  const [origin, sizeText, rootB64] = lines;
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) fail(`checkpoint size ${JSON.stringify(sizeText)} is not a decimal number`);
  const root = b64decode(rootB64);
  if (root.length !== 32) fail("the checkpoint's root hash is not 32 bytes");
  return { origin, size: BigInt(sizeText), root };
}

async function ed25519Verify(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

// The log's signature over the checkpoint: the line of the configured key (name and id).
export async function verifyCheckpoint(text, logKey) {
  const note = parseNote(text);
  const line = note.signatures.find((s) => s.name === logKey.name && equal(s.id, logKey.id));
  if (!line) fail(`the checkpoint carries no signature by the log key you trust (${logKey.name})`);
  if (line.signature.length !== 64 || !(await ed25519Verify(logKey.publicKey, line.signature, enc.encode(note.body)))) {
    fail(`the checkpoint's signature by ${logKey.name} does not verify: the server's checkpoint was altered.`);
  }
  const checkpoint = parseCheckpoint(note.body);
  if (checkpoint.origin !== logKey.name) fail(`checkpoint origin ${checkpoint.origin} is not the log's ${logKey.name}`);
  return { ...checkpoint, note };
}

// Witness cosignatures (cosignature/v1): timestamp (8 bytes, big-endian) || Ed25519 signature
// over "cosignature/v1\ntime <timestamp>\n" || checkpoint body. Returns the valid cosigners.
export async function verifyCosignatures(note, witnessKeys) {
  const valid = [];
  for (const raw of witnessKeys) {
    const key = await asCosigner(raw);
    const line = note.signatures.find((s) => s.name === key.name && equal(s.id, key.id));
    if (!line) continue;
    if (line.signature.length !== 72) fail(`the cosignature of ${key.name} is not 72 bytes`);
    const timestamp = new DataView(line.signature.buffer, line.signature.byteOffset, 8).getBigUint64(0);
    if (timestamp >= 1n << 63n) fail(`the cosignature of ${key.name} has a timestamp past 2^63-1`);
    const message = concat(enc.encode(`cosignature/v1\ntime ${timestamp}\n`), enc.encode(note.body));
    if (!(await ed25519Verify(key.publicKey, line.signature.slice(8), message))) {
      fail(`the cosignature of witness ${key.name} does not verify`);
    }
    valid.push({ name: key.name, time: new Date(Number(timestamp) * 1000) });
  }
  return valid;
}

// --- witness policy (C2SP tlog-policy), read as custodes.witness.WitnessPolicy.from_text ------
// The same file the log server publishes with (witness_policy_file): the overseer pastes it,
// so the witnesses' keys and the quorum come from the policy, not from this server's page.
const MAX_POLICY = 64 * 1024;
const MAX_POLICY_ITEMS = 256; // C2SP tlog-policy asks for at least 32 of each; custodes allows 256
const NONE = "none"; // tlog-policy's predefined "no cosignatures required"
// What Python's str.split() splits on, once control characters are refused (below).
const POLICY_SPACE = /[ \t\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

export async function parsePolicy(text) {
  if (typeof text !== "string" || text.length > MAX_POLICY) fail("the witness policy is over 64 KiB");
  const witnesses = [];
  const groups = [];
  const logs = [];
  const defined = new Set();
  const keys = new Set();
  let quorum = null;
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const where = `witness policy line ${n + 1}`;
    const bad = (message) => fail(`${where}: ${message}`);
    // tlog-policy: tab is the only control character allowed in a line.
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(lines[n])) bad("control character in policy");
    const line = lines[n].replace(/^[ \t]+|[ \t]+$/g, "");
    if (!line || line.startsWith("#")) continue;
    const [keyword, ...args] = line.split(POLICY_SPACE).filter(Boolean);
    let key;
    try {
      if (keyword === "log" && (args.length === 1 || args.length === 2)) {
        key = await parseVerifierKey(args[0]);
        if (key.alg !== ALG_ED25519) bad(`log key ${key.name} is not an Ed25519 (0x01) key`);
        if (logs.some((l) => equal(l.publicKey, key.publicKey))) bad(`log key ${key.name} is listed twice`);
        logs.push(key);
      } else if (keyword === "witness" && (args.length === 2 || args.length === 3)) {
        const [name] = args;
        key = await asCosigner(await parseVerifierKey(args[1]));
        if (defined.has(name) || name === NONE) bad(`witness name ${JSON.stringify(name)} is defined twice or reserved`);
        if (keys.has(hex(key.publicKey))) bad(`witness ${name} repeats another witness's public key`);
        defined.add(name);
        keys.add(hex(key.publicKey));
        witnesses.push({ name, key, url: args[2] || null });
      } else if (keyword === "group" && args.length >= 3) {
        const [name, k, ...members] = args;
        let threshold = { all: members.length, any: 1 }[k];
        if (threshold === undefined) {
          if (!/^[0-9]+$/.test(k) || k.startsWith("0")) bad(`group threshold must be all, any or a number, not ${JSON.stringify(k)}`);
          threshold = Number(k);
        }
        if (defined.has(name) || name === NONE) bad(`group name ${JSON.stringify(name)} is defined twice or reserved`);
        if (new Set(members).size !== members.length) bad(`group ${name} lists a member twice`);
        const unknown = members.filter((m) => !defined.has(m));
        if (unknown.length) bad(`group ${name} names undefined members ${unknown.join(", ")} (define witnesses and groups before using them)`);
        if (!(threshold >= 1 && threshold <= members.length)) bad(`group ${name} threshold ${threshold} out of range: 1 <= k <= ${members.length}`);
        defined.add(name);
        groups.push({ name, threshold, members });
      } else if (keyword === "quorum" && args.length === 1) {
        if (quorum !== null) bad("a policy has exactly one quorum line");
        quorum = args[0];
      } else {
        bad(`unknown or malformed ${JSON.stringify(keyword)} line: expected a log, witness, group or quorum line`);
      }
    } catch (err) {
      if (err instanceof VerifyError && !err.message.startsWith(where)) bad(err.message);
      throw err;
    }
    if (witnesses.length + groups.length + logs.length > MAX_POLICY_ITEMS) bad(`policy defines more than ${MAX_POLICY_ITEMS} items`);
    if (quorum !== null && quorum !== NONE && !defined.has(quorum)) bad(`quorum names undefined witness or group ${JSON.stringify(quorum)}`);
  }
  if (quorum === null) fail("the witness policy has no quorum line (quorum <name> or quorum none)");
  return { quorum, witnesses, groups, logs };
}

// Whether cosignatures from the witnesses ``names`` meet the policy's quorum.
export function quorumMet(policy, names) {
  if (policy.quorum === NONE) return true;
  const done = new Set([...names].filter((n) => policy.witnesses.some((w) => w.name === n)));
  for (const g of policy.groups) { // groups name only earlier names: one pass suffices
    if (g.members.filter((m) => done.has(m)).length >= g.threshold) done.add(g.name);
  }
  return done.has(policy.quorum);
}

// The quorum for a person, as WitnessPolicy.describe says it: none, a name, or "2 of a, b, c".
export function describeQuorum(policy) {
  if (policy.quorum === NONE) return "none";
  const group = policy.groups.find((g) => g.name === policy.quorum);
  return group ? `${group.threshold} of ${group.members.join(", ")}` : policy.quorum;
}

// The policy's witnesses that validly cosigned ``note``; any cosignature line under a policy
// witness's key that does not verify is an alarm (a tampered cosignature), not a silent miss.
export async function verifyPolicyCosignatures(note, policy) {
  const valid = [];
  for (const w of policy.witnesses) {
    const lines = note.signatures.filter((s) => s.name === w.key.name && equal(s.id, w.key.id));
    let newest = null;
    for (const line of lines) {
      const [c] = await verifyCosignatures({ ...note, signatures: [line] }, [w.key]);
      if (!newest || c.time > newest) newest = c.time;
    }
    if (newest) valid.push({ name: w.name, time: newest });
  }
  return { cosigners: valid, met: quorumMet(policy, valid.map((c) => c.name)) };
}

async function nodeHash(left, right) { return sha256(concat(Uint8Array.of(0x01), left, right)); } // RFC 9162 §2.1.1

// RFC 9162 §2.1.4.2: verify that the tree of size2 (root2) extends the tree of size1 (root1).
export async function verifyConsistency(size1, size2, root1, root2, proof) {
  if (proof.length > MAX_PROOF) fail("the consistency proof is too long");
  if (size1 > size2) fail(`rollback: the log now has ${size2} entries, fewer than the ${size1} this browser saw`);
  if (size1 === size2) {
    if (proof.length !== 0) fail("a consistency proof between equal sizes must be empty");
    if (!equal(root1, root2)) fail(`fork: the log shows two different trees of size ${size1}`);
    return;
  }
  if (size1 === 0n) return; // the empty tree is a prefix of every tree
  if (proof.length === 0) fail("the consistency proof is empty");
  let path = proof;
  if ((size1 & (size1 - 1n)) === 0n) path = [root1, ...proof]; // size1 is a power of 2
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while (fn & 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) fail("the consistency proof is too long for these sizes");
    if ((fn & 1n) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!(fn & 1n)) { while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; } }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equal(fr, root1) || !equal(sr, root2)) {
    fail(`fork: the log of ${size2} entries does not extend the one of ${size1} this browser saw`);
  }
}

// RFC 9162 §2.1.1: the hash of a leaf is SHA-256(0x00 || its bytes).
export async function leafHash(data) { return sha256(concat(Uint8Array.of(0x00), data)); }

// RFC 9162 §2.1.3.2: verify that the leaf at ``index`` is in the tree of ``size`` with ``root``.
export async function verifyInclusion(index, size, leaf, proof, root) {
  if (proof.length > MAX_PROOF) fail("the inclusion proof is too long");
  if (index >= size) fail(`entry #${index} is not in a tree of ${size} entries`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) fail("the inclusion proof is too long for this index and size");
    if ((fn & 1n) || fn === sn) {
      r = await nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equal(r, root)) {
    fail(`entry #${index} as the server serves it is not in the checkpoint of ${size} entries this browser verified`);
  }
}

// C2SP tlog-tiles: a tile index is written in groups of three digits, all but the last with an
// "x" (1234067 is x001/x234/067); entry bundles hold 256 entries, a partial one ".p/<width>".
const TILE_WIDTH = 256n;

export function tileIndexPath(n) {
  let rest = BigInt(n);
  const parts = [String(rest % 1000n).padStart(3, "0")];
  rest /= 1000n;
  while (rest > 0n) { parts.unshift(`x${String(rest % 1000n).padStart(3, "0")}`); rest /= 1000n; }
  return parts.join("/");
}

// The entry bundle holding entry ``index`` in the tree of ``size``: its path and width.
export function entryBundle(index, size) {
  const tile = index / TILE_WIDTH;
  const left = size - tile * TILE_WIDTH;
  const width = left < TILE_WIDTH ? left : TILE_WIDTH;
  const path = `/tile/entries/${tileIndexPath(tile)}${width === TILE_WIDTH ? "" : `.p/${width}`}`;
  return { path, width: Number(width), position: Number(index % TILE_WIDTH) };
}

// An entry bundle: each entry as a 2-byte big-endian length and its bytes (C2SP tlog-tiles).
export function parseEntryBundle(bytes, width) {
  const entries = [];
  let at = 0;
  while (at < bytes.length) {
    if (entries.length === Number(TILE_WIDTH)) fail("the entry bundle holds more than 256 entries");
    if (at + 2 > bytes.length) fail("the entry bundle ends inside an entry's length");
    const length = (bytes[at] << 8) | bytes[at + 1];
    at += 2;
    if (at + length > bytes.length) fail("the entry bundle ends inside an entry");
    entries.push(bytes.subarray(at, at + length));
    at += length;
  }
  if (entries.length !== width) fail(`the entry bundle holds ${entries.length} entries, not the ${width} asked for`);
  return entries;
}

async function fetchBytes(url) {
  const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) throw new VerifyError(`${url} answered ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// Entry ``index`` of a checkpoint this browser verified: its raw bytes from the entry bundle
// (the C2SP tlog-tiles read API, as any tile client reads them), their leaf hash computed
// here, and the server's audit path walked up to the verified root. The server is trusted for
// nothing: a changed entry, a proof for another entry, a bundle cut short all fail.
export async function verifyEntry(index, checkpoint, bundles = new Map()) {
  const i = BigInt(index);
  if (i >= checkpoint.size) fail(`entry #${i} is not in the checkpoint of ${checkpoint.size} entries this browser verified`);
  const bundle = entryBundle(i, checkpoint.size);
  if (!bundles.has(bundle.path)) bundles.set(bundle.path, fetchBytes(bundle.path));
  const data = parseEntryBundle(await bundles.get(bundle.path), bundle.width)[bundle.position];
  const leaf = await leafHash(data);
  const answer = JSON.parse(await fetchText(`/log/proof/inclusion?index=${i}&size=${checkpoint.size}`));
  if (!answer || !Array.isArray(answer.proof) || String(answer.index) !== String(i) || String(answer.size) !== String(checkpoint.size)) {
    fail(`the inclusion proof of entry #${i} is malformed or for another entry`);
  }
  await verifyInclusion(i, checkpoint.size, leaf, answer.proof.map(b64decode), checkpoint.root);
  let entry = null;
  try { entry = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data)); } catch { entry = null; }
  return { index: i, leafHash: b64encode(leaf), bytes: data.length, entry };
}

// --- the page ---------------------------------------------------------------------------

// What this browser trusts: {log: vkey, policy: tlog-policy text}. A trust saved before the
// policy field (witness keys and a count) is read as the policy it meant: k of those keys.
export function loadTrust() {
  let trust = null;
  try { trust = JSON.parse(localStorage.getItem(TRUST) || "null"); } catch { return null; }
  if (!trust || typeof trust !== "object") return null;
  if (typeof trust.policy !== "string") {
    const keys = Array.isArray(trust.witnesses) ? trust.witnesses : [];
    const k = Number(trust.quorum || 0);
    trust.policy = keys.length
      ? keys.map((key, i) => `witness w${i + 1} ${key}`).join("\n") +
        (k > 0 ? `\ngroup quorum ${Math.min(k, keys.length)} ${keys.map((_, i) => `w${i + 1}`).join(" ")}\nquorum quorum\n` : "\nquorum none\n")
      : "";
  }
  return { log: String(trust.log || ""), policy: trust.policy };
}

async function fetchText(url) {
  const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) throw new VerifyError(`${url} answered ${r.status}`);
  return r.text();
}

export async function verifyLog(trust) {
  const started = performance.now();
  const policy = trust.policy && trust.policy.trim() ? await parsePolicy(trust.policy) : null;
  const logKey = await parseVerifierKey(trust.log);
  if (policy && policy.logs.length && !policy.logs.some((l) => l.name === logKey.name && equal(l.id, logKey.id))) {
    fail(`the witness policy names other logs than the log key you trust (${logKey.name})`);
  }
  const text = await fetchText("/checkpoint");
  const fetched = performance.now();
  const checkpoint = await verifyCheckpoint(text, logKey);
  const result = { size: checkpoint.size, root: b64encode(checkpoint.root), cosigners: [], consistency: "first visit" };
  const lastKey = `${LAST}:${logKey.name}`;
  const last = JSON.parse(localStorage.getItem(lastKey) || "null");
  let proofMs = 0;
  if (last) {
    const size1 = BigInt(last.size);
    let proof = [];
    if (size1 > 0n && size1 < checkpoint.size) {
      const answer = JSON.parse(await fetchText(`/log/proof/consistency?size1=${size1}&size2=${checkpoint.size}`));
      if (!Array.isArray(answer.proof) || String(answer.size2) !== String(checkpoint.size)) fail("the consistency proof is malformed");
      proof = answer.proof.map(b64decode);
    }
    const p0 = performance.now();
    await verifyConsistency(size1, checkpoint.size, b64decode(last.root), checkpoint.root, proof);
    proofMs = performance.now() - p0;
    result.consistency = `consistent with the checkpoint of ${last.size} entries seen ${last.seen}`;
  }
  if (policy) {
    // The newest checkpoint any witness cosigned: its log signature, every cosignature under
    // a policy witness's key, and that it is a tree the newest checkpoint extends (or is).
    result.quorum = describeQuorum(policy);
    result.quorumMet = quorumMet(policy, []);
    // The newest checkpoint that met the server's quorum; before there is one, the newest
    // any witness cosigned. Either way this browser counts under its own policy.
    let r = await fetch("/checkpoint/cosigned?quorum=met", { cache: "no-store" });
    if (r.status === 404) r = await fetch("/checkpoint/cosigned?quorum=any", { cache: "no-store" });
    if (r.ok) {
      const cosigned = await verifyCheckpoint(await r.text(), logKey);
      const checked = await verifyPolicyCosignatures(cosigned.note, policy);
      result.cosigners = checked.cosigners;
      result.quorumMet = checked.met;
      result.cosignedSize = cosigned.size;
      if (cosigned.size > checkpoint.size) fail("the cosigned checkpoint is newer than the newest checkpoint");
      if (cosigned.size === checkpoint.size && !equal(cosigned.root, checkpoint.root)) fail("fork: the witnesses cosigned another tree of this size");
      if (cosigned.size < checkpoint.size) {
        const answer = JSON.parse(await fetchText(`/log/proof/consistency?size1=${cosigned.size}&size2=${checkpoint.size}`));
        if (!Array.isArray(answer.proof)) fail("the consistency proof from the cosigned checkpoint is malformed");
        await verifyConsistency(cosigned.size, checkpoint.size, cosigned.root, checkpoint.root, answer.proof.map(b64decode));
      }
    } else if (r.status !== 404) {
      fail(`/checkpoint/cosigned answered ${r.status}`);
    }
  }
  // Only a checkpoint that verified becomes the one the next visit checks against.
  localStorage.setItem(lastKey, JSON.stringify({ size: String(checkpoint.size), root: result.root, seen: new Date().toISOString() }));
  result.checkpoint = { size: checkpoint.size, root: checkpoint.root };
  result.verifyMs = performance.now() - fetched;
  result.proofMs = proofMs;
  result.totalMs = performance.now() - started;
  return result;
}

function show(panel, state, html) {
  panel.dataset.state = state;
  const box = panel.querySelector("[data-result]");
  box.className = state === "failed" ? "error" : state === "ok" ? "ok" : "";
  box.setAttribute("role", state === "failed" ? "alert" : "status");
  box.innerHTML = html;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

async function run(panel) {
  const trust = loadTrust();
  const form = panel.querySelector("form[data-trust]");
  panel.querySelector("details").open = !(trust && trust.log);
  if (trust) {
    form.log.value = trust.log;
    form.policy.value = trust.policy;
  }
  if (!trust || !trust.log) {
    show(panel, "unconfigured", "Not verified: enter the log's verifier key you got out of band (and the witness policy the log publishes with) below.");
    return;
  }
  show(panel, "running", "Verifying…");
  try {
    const r = await verifyLog(trust);
    const cos = r.quorum === undefined ? "" : `<br><span data-witnesses>Witnesses: ${r.cosigners.length ? `valid cosignatures from ${r.cosigners.map((c) => esc(c.name)).join(", ")} on the checkpoint of ${r.cosignedSize} entries` : "no valid cosignature yet"}; quorum (${esc(r.quorum)}) ${r.quorumMet ? "met" : "not met"}.</span>`;
    show(panel, r.quorumMet === false ? "warning" : "ok",
      `Verified in this browser: checkpoint of ${r.size} entries signed by the log key you trust; ${esc(r.consistency)}.${cos}` +
      `<br><span class="muted" data-timing>signature and proof checked in ${r.verifyMs.toFixed(1)} ms (proof ${r.proofMs.toFixed(1)} ms)</span>`);
    await verifyRows(r.checkpoint);
  } catch (err) {
    show(panel, "failed", `<strong>Alarm: verification failed.</strong> ${esc(String(err.message).replace(/([^.])$/, "$1."))} The last checkpoint this browser verified is kept; tell the other overseers.`);
    verifyRows(null);
  }
}

function markRow(row, state, html) {
  row.dataset.inclusion = state;
  const cell = row.querySelector("[data-inclusion-result]");
  cell.className = state === "failed" ? "error" : state === "ok" ? "ok" : "muted";
  if (state === "failed") cell.setAttribute("role", "alert"); else cell.removeAttribute("role");
  cell.innerHTML = html;
}

// What the page shows of an entry must be what the verified bytes say, or the page lies.
function compareRow(row, entry) {
  if (row.dataset.type === undefined) return;
  if (!entry || entry.type !== row.dataset.type || entry.principal !== row.dataset.principal) {
    fail(`the page shows entry #${row.dataset.index} as ${row.dataset.type} by ${row.dataset.principal}, but the verified entry says ${entry ? `${entry.type} by ${entry.principal}` : "something else"}`);
  }
}

// Every entry shown is checked to be in the verified checkpoint (a few at a time; one entry
// bundle fetched per 256 entries). A failure is an alarm on its row and above the table.
async function verifyRows(checkpoint) {
  const table = document.getElementById("entries");
  const status = document.getElementById("inclusion-status");
  if (!table || !status) return;
  const rows = Array.from(table.querySelectorAll("tr[data-index]"));
  if (!checkpoint) {
    for (const row of rows) markRow(row, "unverified", "not verified: the checkpoint did not verify");
    status.dataset.state = "unverified";
    status.className = "muted";
    status.textContent = "Entries not verified: no checkpoint verified in this browser.";
    return;
  }
  status.dataset.state = "running";
  status.textContent = `Checking that the ${rows.length} entries shown are in the verified checkpoint…`;
  const bundles = new Map();
  const failures = [];
  let ok = 0;
  let later = 0;
  const started = performance.now();
  const queue = [...rows];
  const worker = async () => {
    for (let row = queue.shift(); row; row = queue.shift()) {
      if (BigInt(row.dataset.index) >= checkpoint.size) {
        later += 1;
        markRow(row, "later", `not in the verified checkpoint of ${checkpoint.size} entries yet`);
        continue;
      }
      try {
        const got = await verifyEntry(row.dataset.index, checkpoint, bundles);
        compareRow(row, got.entry);
        ok += 1;
        markRow(row, "ok", `<span title="leaf hash ${esc(got.leafHash)}">included \u2713</span>`);
      } catch (err) {
        failures.push(`#${row.dataset.index}`);
        markRow(row, "failed", `<strong>Alarm:</strong> ${esc(err instanceof VerifyError ? err.message : String(err))}`);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const ms = (performance.now() - started).toFixed(0);
  if (failures.length) {
    status.dataset.state = "failed";
    status.className = "error";
    status.setAttribute("role", "alert");
    status.innerHTML = `<strong>Alarm: ${failures.length} entr${failures.length === 1 ? "y is" : "ies are"} not in the verified checkpoint as the server serves ${failures.length === 1 ? "it" : "them"}</strong> (${esc(failures.slice(0, 10).join(", "))}${failures.length > 10 ? ", …" : ""}); tell the other overseers.`;
  } else {
    status.dataset.state = "ok";
    status.className = "ok";
    status.removeAttribute("role");
    status.textContent = `Verified in this browser: ${ok} entr${ok === 1 ? "y" : "ies"} shown ${ok === 1 ? "is" : "are"} in the checkpoint of ${checkpoint.size} entries (raw bytes hashed here, audit paths walked to its root) in ${ms} ms${later ? `; ${later} newer not in it yet` : ""}.`;
  }
}

function setup() {
  const panel = document.getElementById("verification");
  if (!panel) return;
  const form = panel.querySelector("form[data-trust]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let log = form.log.value.trim();
    const policy = form.policy.value;
    try {
      const parsed = policy.trim() ? await parsePolicy(policy) : null;
      // A policy that names one log may stand for the log key too.
      if (!log && parsed && parsed.logs.length === 1) log = policy.split("\n").map((l) => l.trim().split(POLICY_SPACE)).find((w) => w[0] === "log")[1];
      await parseVerifierKey(log);
    } catch (err) {
      show(panel, "failed", `Those keys are malformed: ${esc(err.message)}`);
      return;
    }
    localStorage.setItem(TRUST, JSON.stringify({ log, policy }));
    await run(panel);
  });
  panel.querySelector("[data-forget]").addEventListener("click", async () => {
    const trust = loadTrust();
    if (trust && trust.log) localStorage.removeItem(`${LAST}:${trust.log.trim().split("+")[0]}`);
    await run(panel);
  });
  run(panel);
}

setup();
