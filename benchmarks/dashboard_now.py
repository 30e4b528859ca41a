"""Server time to render the dashboard's "Now" page with 10,000 active grants and a log of
100,000 entries (target: under 300 ms), through the real app (ASGI, in process: no network);
then the log page and its search over the same log, and how long the server's background
indexer takes to index that log from its start.

The log is built with the log's own integrate(); the grants are inserted as rows (a grant
table as the authority writes it) because making 10,000 through signed requests and approvals
would take an hour and measure the authority, not the page. The viewer is an overseer, who
sees everything. Run: nice -n 10 python benchmarks/dashboard_now.py [--grants N] [--entries N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _log_support import ROOT, build  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from custodes.authority import Grant  # noqa: E402
from custodes.authority._grants import grant_row as _grant_row  # noqa: E402
from custodes.authority._tables import authority_grants  # noqa: E402
from custodes.clock import SystemClock  # noqa: E402
from custodes.config import Settings  # noqa: E402
from custodes.gateway import KeyStore  # noqa: E402
from custodes.server import create_app  # noqa: E402

_PRINCIPALS = ("alice@lab", "bob@lab", "frank@cyberdef", "grace@bankcert")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    started = time.perf_counter()
    build(data, args.entries)
    print(f"built a log of {args.entries:,} entries in {time.perf_counter() - started:.1f} s")
    settings = Settings(
        data_dir=data, demo=True, constitution_file=ROOT / "examples" / "constitution.yaml"
    )
    started = time.perf_counter()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        ctx = client.app.state.deployment  # type: ignore[attr-defined]
        # The server's background indexer brings the log search index up to date from the
        # start; the pages are measured once it has (the steady state), and the time it took
        # is a figure of its own.
        index = client.app.state.dashboard_log_index  # type: ignore[attr-defined]
        while index.covered() < ctx.log.size():
            time.sleep(0.1)
        print(
            f"background indexer covered {index.covered():,} log entries "
            f"{time.perf_counter() - started:.1f} s after the server started"
        )
        now = SystemClock().now()
        rows = [
            _grant_row(
                Grant(
                    id=f"bench-{i:06d}",
                    principal=_PRINCIPALS[i % len(_PRINCIPALS)],
                    capability="cyber-frontier",
                    rule="cyber-frontier-lab",
                    granted_at=now - timedelta(minutes=1),
                    expires_at=now + timedelta(hours=1, seconds=i),
                    constitution_version=1,
                    request_id=f"bench-request-{i:06d}",
                    approvals=(("dana@asi", "asi"), ("erin@auditor", "auditor")),
                ),
                index=i,
            )
            for i in range(args.grants)
        ]
        with ctx.engine.begin() as conn:
            conn.execute(authority_grants.insert(), rows)
        key = KeyStore(ctx.engine, ctx.log, ctx.clock).create("dana@asi").secret
        form = client.get("/dashboard/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed = client.post(
            "/dashboard/sign-in",
            data={"csrf": csrf.group(1), "api_key": key},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        times = []
        for _ in range(args.rounds + 2):
            t0 = time.perf_counter()
            page = client.get("/dashboard/")
            times.append(time.perf_counter() - t0)
            assert page.status_code == 200 and f">{args.grants}<" in page.text
        times = sorted(times[2:])  # the first two warm the caches (templates, SQLite pages)
        print(
            f"Now page, {args.grants:,} active grants, {ctx.log.size():,} log entries: "
            f"median {statistics.median(times) * 1000:.0f} ms, "
            f"p95 {times[int(0.95 * (len(times) - 1))] * 1000:.0f} ms, "
            f"{len(page.content) / 1024:.0f} KiB of HTML ({args.rounds} rounds; target < 300 ms)"
        )
        # The log page: the newest 50 entries; searches through the dashboard's index of the
        # log (kept up to date by the server's background indexer): one matching nothing (the
        # worst case for a scan), one principal's newest 50 across the whole log, and "until"
        # (a binary search by time).
        for what, url in (
            ("log page, newest entries", "/dashboard/log"),
            ("log search matching nothing (index)", "/dashboard/log?principal=nobody"),
            ("log search, one principal's newest 50 (index)", "/dashboard/log?principal=dana@asi"),
            ("log search until a time (binary search)", "/dashboard/log?until=2000-01-01T00:00Z"),
        ):
            times = []
            for _ in range(args.rounds + 2):
                t0 = time.perf_counter()
                page = client.get(url)
                times.append(time.perf_counter() - t0)
                assert page.status_code == 200, page.text
            times = sorted(times[2:])
            print(
                f"{what}, {ctx.log.size():,} log entries: median "
                f"{statistics.median(times) * 1000:.0f} ms, "
                f"p95 {times[int(0.95 * (len(times) - 1))] * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
