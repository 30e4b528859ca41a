"""Figure: `custodes constitution check` on the worst documents under 1 MB we could build
(target: under 1 s and under 100 MB each).

Each candidate aims at one cost: YAML (aliases, nesting, many scalars), the schema pass (an
error on every item), the semantic pass (many problems, many rules times many principals
for Cedar eligibility, many entrenched paths), and feasibility of many quorums. Each is checked
by the real CLI in a fresh process; the figure is its wall time and peak resident memory
(``ru_maxrss`` of the child). Run: ``.venv/bin/python benchmarks/constitution_worst.py``.
"""

from __future__ import annotations

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


_CHILD = """
import sys, time
from custodes.constitution import read_constitution
from custodes.errors import ConstitutionError

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0

demo = open(sys.argv[2], encoding="utf-8").read()
read_constitution(demo)  # warm: the schema validator, Cedar, caches
text = open(sys.argv[1], encoding="utf-8").read()
before = hwm()
wall, cpu = time.perf_counter(), time.process_time()
try:
    read_constitution(text)
    problems = 0
except ConstitutionError as exc:
    problems = len(exc.problems)
print(time.perf_counter() - wall, time.process_time() - cpu, before, hwm(), problems)
"""


def measure(text: str) -> tuple[float, float, float, float, int, float, int]:
    """In a fresh process: read_constitution's wall and CPU seconds, the process's peak
    resident MB before and after it (VmHWM, which exec resets), its problem count; then the
    CLI's wall seconds and exit code on the same file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    demo = str(ROOT / "examples" / "constitution.yaml")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, f.name, demo], capture_output=True, text=True, check=True
    ).stdout.split()
    wall, cpu, before, after = (float(x) for x in out[:4])
    start = time.perf_counter()
    code = subprocess.run(
        [sys.executable, "-m", "custodes", "constitution", "check", f.name],
        capture_output=True,
        check=False,
    ).returncode
    cli = time.perf_counter() - start
    Path(f.name).unlink()
    return wall, cpu, before, after, int(out[4]), cli, code


def main() -> None:
    only = sys.argv[1:]
    *_, base_cli, _ = measure("version: 1\n")
    print(f"CLI on a one-line document (start-up and imports): {base_cli:.2f} s wall")
    for name, make in CANDIDATES.items():
        if only and not any(o in name for o in only):
            continue
        text = fill(make)
        wall, cpu, before, after, problems, cli, code = measure(text)
        print(
            f"{name:28s} {len(text.encode()) / 1e6:4.2f} MB | read_constitution {wall:5.2f} s "
            f"wall, {cpu:5.2f} s CPU, peak RSS +{after - before:4.0f} MB (to {after:4.0f} MB), "
            f"{problems:3d} problems | CLI check {cli:5.2f} s (exit {code})"
        )


if __name__ == "__main__":
    main()
