"""False alarms on benign real text: detections per 10 MB of this machine's Python standard
library sources and Debian documentation and changelogs (CVE-heavy), read in 16 KB records
as a transcript scan would.

    .venv/bin/python benchmarks/monitors_false_alarms.py [--mb 20] [--detector vuln_rules ...]

Every detection at or above ``--min-score`` (default: the scanner's 0.5) counts as a false
alarm: none of this text reports a discovered vulnerability or a coup-relevant act. Prints
the rate per corpus and per detector and category, and the most frequent signals.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

RECORD = 16 * 1024


def _files(root: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name.endswith(suffixes) and not p.is_symlink():
            yield p


def _read(p: Path) -> str:
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile):
        return ""
    if b"\0" in raw[:4096]:
        return ""
    return raw.decode("utf-8", "replace")


def corpus(name: str, limit: int) -> Iterator[str]:
    """16 KB records of the named corpus, up to ``limit`` bytes."""
    if name == "python-stdlib":
        files = _files(Path(sysconfig.get_paths()["stdlib"]), (".py", ".txt", ".rst"))
    elif name == "debian-changelogs":
        files = (
            p
            for p in _files(Path("/usr/share/doc"), (".gz",))
            if p.name.startswith(("changelog", "NEWS"))
        )
    else:
        files = (
            p
            for p in _files(Path("/usr/share/doc"), ("", ".txt", ".md", ".gz", ".html"))
            if not p.name.startswith(("changelog", "copyright"))
        )
    done = 0
    for p in files:
        text = _read(p)
        if "changelog" in name and "CVE-" not in text and "security" not in text.lower():
            continue
        for i in range(0, len(text), RECORD):
            chunk = text[i : i + RECORD]
            yield chunk
            done += len(chunk.encode())
            if done >= limit:
                return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=20.0, help="MB read from each corpus")
    ap.add_argument("--detector", action="append", default=None)
    ap.add_argument("--min-score", type=float, default=0.5)
    a = ap.parse_args()
    from custodes.monitors import default_registry

    reg = default_registry()
    names = a.detector or ["vuln_rules", "coup_rules"]
    detectors = [reg.get(n) for n in names]
    total_mb, total_hits = 0.0, 0
    for name in ("python-stdlib", "debian-changelogs", "debian-docs"):
        size, hits = 0, collections.Counter()
        signals: collections.Counter[str] = collections.Counter()
        for text in corpus(name, int(a.mb * 1e6)):
            size += len(text.encode())
            for d in detectors:
                for det in d.detect(text):
                    if det.score >= a.min_score:
                        hits[f"{det.detector}/{det.category}"] += 1
                        signals[det.details.get("signals", det.reason)[:80]] += 1
        mb = size / 1e6
        total_mb += mb
        total_hits += sum(hits.values())
        rate = sum(hits.values()) / max(mb, 1e-9) * 10
        print(f"{name}: {mb:.1f} MB, {sum(hits.values())} alarms, {rate:.2f} per 10 MB")
        for k, v in hits.most_common():
            print(f"    {k}: {v}")
        for k, v in signals.most_common(6):
            print(f"    signal {k}: {v}")
    print(
        f"all: {total_mb:.1f} MB, {total_hits} alarms, "
        f"{total_hits / max(total_mb, 1e-9) * 10:.2f} per 10 MB (target < 1)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
