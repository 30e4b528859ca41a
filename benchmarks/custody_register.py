"""Figure: register + escrow a finding with 1 MB of details, p50 (target <= 20 ms).

Each registration reserves an id, commits to and seals the details (AES-256-GCM), appends its
entry to the transparency log (durable, SQLite synchronous=FULL) and stores the finding and
its escrow. Run: ``.venv/bin/python benchmarks/custody_register.py [n] [--postgres]``
(``--postgres`` uses a throwaway PostgreSQL cluster, as the tests do).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from custodes.clock import SystemClock
from custodes.constitution import read_constitution
from custodes.custody import CustodyRegistry, KeyEncryptionKey
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine, migrate

ROOT = Path(__file__).resolve().parents[1]

FINDING = {
    "title": "Heap overflow in the PNG decoder",
    "vendor": "Example Corp",
    "product": "exampleimg",
    "versions": ["< 2.4.1"],
    "cwe": "CWE-787",
    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
    "finder": "alice@lab",
    "model": "frontier-cyber-1",
    "session": "s-1",
    "policy": "project-zero",
}


def main(n: int, url: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(engine)
        log = TransparencyLog(engine, NoteSigner.generate("bench/log"), clock=SystemClock())
        log.start()
        # The example deployment's constitution names alice@lab, the finder who registers
        # (without one every custody action is refused: fail closed).
        constitution = read_constitution(ROOT / "examples" / "constitution.yaml")
        registry = CustodyRegistry(
            engine, log, KeyEncryptionKey.generate(), constitution=constitution
        )
        appends: list[float] = []
        real_append = log.append

        def timed_append(entries: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return real_append(entries, **kw)
            finally:
                appends.append((time.perf_counter() - t) * 1000)

        log.append = timed_append  # type: ignore[method-assign]
        details = os.urandom(1 << 20)
        registry.register(FINDING, details, principal="alice@lab")  # warm up
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            registry.register(FINDING, details, principal="alice@lab")
            times.append((time.perf_counter() - t0) * 1000)
        log.close()
    times.sort()
    appends = appends[-n:]
    backend = "PostgreSQL" if url else "SQLite"
    print(
        f"register + escrow, 1 MiB details, n={n} ({backend}, durable log): "
        f"p50 {statistics.median(times):.1f} ms, p90 {times[int(0.9 * n) - 1]:.1f} ms, "
        f"max {times[-1]:.1f} ms (target p50 <= 20 ms); of which the durable log append "
        f"p50 {statistics.median(appends):.1f} ms; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 50
    if "--postgres" in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.support.postgres import start_cluster

        with start_cluster() as cluster:
            main(count, cluster.create_database())
    else:
        main(count)
