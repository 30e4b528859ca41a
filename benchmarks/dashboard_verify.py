"""In-browser verification time (static/verify.js in real headless Chromium, WebCrypto): a
checkpoint's Ed25519 signature plus an RFC 9162 consistency proof over a 10M-entry log
(target: under 200 ms), and the inclusion of the 50 entries a log page shows in that log (each:
its entry bundle of 256 entries parsed, its leaf hashed, its audit path walked to the root).
Fetching is not counted: the figure is the browser's checking work.

The proof is a real RFC 9162 proof, made by custodes' own consistency_proof over a tree of
10,000,000 identical leaves (a subtree's hash then depends only on its size, so the tree need
not be stored; the verifier's work depends only on the sizes). Needs Debian's chromium and
chromium-driver. Run: nice -n 10 python benchmarks/dashboard_verify.py
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import tempfile
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _log_support import ROOT  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from tests.support.server import running_server  # noqa: E402

from custodes.config import Settings  # noqa: E402
from custodes.log import (  # noqa: E402
    Checkpoint,
    NoteSigner,
    consistency_proof,
    encode_entry_bundle,
    inclusion_proof,
    leaf_hash,
    node_hash,
)

SIZE1, SIZE2 = 9_876_543, 10_000_000
_ENTRY = (
    b'{"body":{},"principal":"bench@example","time":"2026-12-07T00:00:00.000000Z","type":"x/v1"}'
)
_LEAF = leaf_hash(_ENTRY)
SHOWN = 50


@cache
def _mth(n: int) -> bytes:
    """RFC 9162 MTH of ``n`` identical leaves."""
    if n == 1:
        return _LEAF
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_mth(k), _mth(n - k))


_RUN = """
const [v, done] = [arguments[0], arguments[arguments.length - 1]];
import("/dashboard/static/verify.js").then(async (m) => { try {
  const key = await m.parseVerifierKey(v.vkey);
  const proof = v.proof.map(m.b64decode), root1 = m.b64decode(v.root1);
  const times = [];
  for (let i = 0; i < v.rounds; i++) {
    const t0 = performance.now();
    const cp = await m.verifyCheckpoint(v.note, key);
    await m.verifyConsistency(BigInt(v.size1), cp.size, root1, cp.root, proof);
    times.push(performance.now() - t0);
  }
  const cp = await m.verifyCheckpoint(v.note, key);
  const bundle = m.b64decode(v.bundle);
  const inclusion = [];
  for (let i = 0; i < v.rounds; i++) {
    const t0 = performance.now();
    for (const p of v.inclusion) {
      const at = m.entryBundle(BigInt(p.index), cp.size);
      const data = m.parseEntryBundle(bundle, at.width)[at.position];
      const leaf = await m.leafHash(data);
      await m.verifyInclusion(BigInt(p.index), cp.size, leaf, p.proof.map(m.b64decode), cp.root);
    }
    inclusion.push(performance.now() - t0);
  }
  done({ times, inclusion });
} catch (e) { done(String(e)); } }, (e) => done(String(e)));
"""


def main() -> None:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    signer = NoteSigner.generate("bench.example/log")
    note = Checkpoint("bench.example/log", SIZE2, _mth(SIZE2)).sign(signer).to_text()
    proof = consistency_proof(SIZE1, SIZE2, lambda start, end: _mth(end - start))
    vectors = {
        "vkey": signer.verifier.to_key(),
        "note": note,
        "size1": SIZE1,
        "root1": b64(_mth(SIZE1)),
        "proof": [b64(h) for h in proof],
        "rounds": 50,
        "bundle": b64(encode_entry_bundle([_ENTRY] * 256)),
        "inclusion": [
            {
                "index": i,
                "proof": [b64(h) for h in inclusion_proof(i, SIZE2, lambda a, b: _mth(b - a))],
            }
            for i in range(SIZE2 - 256 - SHOWN, SIZE2 - 256)
        ],
    }
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser
    data = Path(tempfile.mkdtemp(prefix="dashboard-verify-"))
    settings = Settings(
        data_dir=data, demo=True, constitution_file=ROOT / "examples" / "constitution.yaml"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={data / 'profile'}",
    ):
        options.add_argument(flag)
    with running_server(settings, log_path=data / "server.log") as server:
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            driver.get(server.url("/dashboard/sign-in"))
            driver.set_script_timeout(120)
            answer = driver.execute_async_script(_RUN, vectors)
        finally:
            driver.quit()
    if isinstance(answer, str):
        raise SystemExit(f"verification failed in the browser: {answer}")
    times, inclusion = answer["times"], sorted(answer["inclusion"])
    first, rest = times[0], sorted(times[1:])
    print(
        f"in-browser verification, checkpoint signature + consistency proof "
        f"{SIZE1:,} -> {SIZE2:,} entries ({len(proof)} hashes): first {first:.1f} ms, "
        f"median {statistics.median(rest):.1f} ms, p95 {rest[int(0.95 * (len(rest) - 1))]:.1f} ms "
        f"({len(times)} rounds, Chromium headless; target < 200 ms)"
    )
    hashes = len(vectors["inclusion"][0]["proof"])
    print(
        f"in-browser inclusion of the {SHOWN} entries a log page shows, in a {SIZE2:,}-entry log "
        f"(bundle parsed, leaf hashed, {hashes}-hash audit path each): "
        f"median {statistics.median(inclusion):.1f} ms, "
        f"p95 {inclusion[int(0.95 * (len(inclusion) - 1))]:.1f} ms for all {SHOWN}"
    )


if __name__ == "__main__":
    main()
