"""Figure: `custodes constitution check` on the worst documents under 1 MB we could build
(target: under 1 s and under 100 MB each).

Each candidate aims at one cost: YAML (aliases, nesting, many scalars), the schema pass (an
error on every item), the semantic pass (many problems, many rules times many principals
for Cedar eligibility, many entrenched paths), and feasibility of many quorums. Each is checked
by the real CLI in a fresh process; the figure is its wall time and peak resident memory
(``ru_maxrss`` of the child). Run: ``.venv/bin/python benchmarks/constitution_worst.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from authority_fixtures import constitution_text  # noqa: E402

LIMIT = 1_000_000
ROOT = Path(__file__).resolve().parents[1]


def fill(make: Callable[[int], str]) -> str:
    """The largest ``make(n)`` under 1 MB (binary search on n)."""
    lo, hi = 1, 1
    while len(make(hi).encode()) < LIMIT:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(make(mid).encode()) < LIMIT else (lo, mid)
    return make(lo)


def alias_bomb(n: int) -> str:
    head = "a: &a [" + ", ".join(["x"] * 10) + "]\n"
    return head + "".join(f"b{i}: &b{i} [" + ", ".join(["*a"] * 10) + "]\n" for i in range(n))


def deep(n: int) -> str:
    return "version: 1\nx: " + "[" * n + "]" * n + "\n"


def wide_at_depth(n: int) -> str:
    # 31 levels of nesting, then n scalars: the deepest the reader allows, everywhere.
    return "version: 1\nx: " + "[" * 31 + ", ".join(["1"] * n) + "]" * 31 + "\n"


def schema_errors(n: int) -> str:
    # Every principal misshapen: one schema error (with its line) each.
    body = "".join(f"  - {{id: p{i}, organisation: [x], roles: 7}}\n" for i in range(n))
    return (
        "version: 1\norganisations: []\ncapabilities: []\n"
        "amendment: {signers: [], threshold: 1}\nprincipals:\n" + body
    )


def semantic_errors(n: int) -> str:
    # Well shaped, every reference dangling: one semantic problem per principal.
    body = "".join(f"  - {{id: p{i}, organisation: nowhere{i}}}\n" for i in range(n))
    return (
        "version: 1\norganisations: [{id: lab, kind: developer}]\n"
        "capabilities: [{id: c, models: [m]}]\naccess: []\n"
        "amendment: {signers: [p0], threshold: 1}\n"
        "principals:\n" + body
    )


def rules_times_principals(n: int) -> str:
    # n access rules with a Cedar criterion each over as many principals as fit: eligibility
    # is decided for every rule and principal.
    text, _ = constitution_text(max(60, n), n, n_orgs=4, approvers_per_org=3)
    return text


def entrenched_paths(n: int) -> str:
    text, _ = constitution_text(200, 20, n_orgs=4, approvers_per_org=3)
    paths = ", ".join(f"/principals/user{100 + i % 100}@org{i % 4}" for i in range(n))
    return text + f"entrenched:\n  - id: many\n    paths: [{paths}]\n    signers: all\n"


def principals(n: int) -> str:
    text, _ = constitution_text(n, 100)
    return text


def keys_everywhere(n: int) -> str:
    # Every principal keyed and an approver: the feasibility check's widest case.
    text, _ = constitution_text(n, 50, n_orgs=20, approvers_per_org=max(1, n // 20))
    return text


CANDIDATES: dict[str, Callable[[int], str]] = {
    "alias bomb": alias_bomb,
    "nesting past the limit": deep,
    "31 levels deep, wide": wide_at_depth,
    "a schema error per item": schema_errors,
    "a semantic problem per item": semantic_errors,
    "rules x principals (Cedar)": rules_times_principals,
    "many entrenched paths": entrenched_paths,
    "principals": principals,
    "every principal an approver": keys_everywhere,
}


def measure(text: str) -> tuple[float, float, int]:
    """Wall seconds, peak resident MB and exit code of ``custodes constitution check``."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "custodes", "constitution", "check", f.name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # wait4: this child's own rusage (ru_maxrss in KiB on Linux).
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    Path(f.name).unlink()
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def in_process(text: str) -> tuple[float, float, int]:
    """CPU seconds and peak traced MB of ``read_constitution`` alone, and its problem count."""
    import tracemalloc

    from custodes.constitution import read_constitution
    from custodes.errors import ConstitutionError

    read_constitution(_SMALL)  # warm the caches (schema, Cedar)
    tracemalloc.start()
    start = time.process_time()
    try:
        read_constitution(text)
        problems = 0
    except ConstitutionError as exc:
        problems = len(exc.problems)
    seconds = time.process_time() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 1e6, problems


_SMALL = (ROOT / "examples" / "constitution.yaml").read_text(encoding="utf-8")


def main() -> None:
    baseline, base_mb, _ = measure("version: 1\n")
    print(f"baseline (a one-line document): {baseline:.2f} s, {base_mb:.0f} MB peak RSS")
    print("(the baseline is the interpreter and imports; the document's own cost is the rest)")
    only = sys.argv[1:]
    for name, make in CANDIDATES.items():
        if only and not any(o in name for o in only):
            continue
        text = fill(make)
        cpu, traced, problems = in_process(text)
        seconds, mb, code = measure(text)
        print(
            f"{name:30s} {len(text.encode()) / 1e6:4.2f} MB | read_constitution {cpu:5.2f} s CPU, "
            f"{traced:5.0f} MB traced, {problems} problems | CLI check {seconds:5.2f} s wall "
            f"(exit {code}), {mb:4.0f} MB peak RSS"
        )


if __name__ == "__main__":
    main()
