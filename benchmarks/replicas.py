"""Replica figures: real ``custodes serve`` processes on one throwaway PostgreSQL (log_replicas).

- gateway throughput (requests/s, chat completions on the demo's scripted upstream, every call
  authorised, screened and logged) with 1 and 2 replicas, clients spread round-robin;
- revocation propagation: a grant revoked on replica A (the POST answered) until replica B
  refuses the holder's call, with B's grant cache set to ten minutes (only the NOTIFY can
  explain a refusal); several rounds;
- amendment propagation: the approval that adopts an amendment on replica A (answered) until
  replica B decides under the new version; several rounds;
- sequencer fail-over: the leader SIGKILLed until the survivor reports it signs
  (``/healthz`` ``log_sequencer``), and until an entry appended on the survivor after the kill
  is covered by a checkpoint it serves.

    nice -n 10 .venv/bin/python benchmarks/replicas.py [--seconds 10] [--clients 16]

The load generator runs on the same two cores as the servers and PostgreSQL, and the machine is
shared: compare the columns of one run, and read the load average printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.amend import amend_over_http  # noqa: E402
from tests.support.keys import LOG_WRITER, issue_keys  # noqa: E402
from tests.support.postgres import start_cluster  # noqa: E402
from tests.support.server import ServerProcess, start_server  # noqa: E402

from custodes.authority import new_request, sign_approval, sign_request  # noqa: E402
from custodes.authority._signing import SigningKey  # noqa: E402
from custodes.config import Settings  # noqa: E402

HELLO = [{"role": "user", "content": "hello replicas"}]


def _key(name: str) -> SigningKey:
    return SigningKey.from_file(ROOT / "examples" / "keys" / f"{name}.key")


def _post(server: ServerProcess, path: str, body: object, key: str) -> httpx.Response:
    return httpx.post(
        server.url(path), json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def _chat(client: httpx.Client, server: ServerProcess, key: str, model: str) -> int:
    r = client.post(
        server.url("/v1/chat/completions"),
        json={"model": model, "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
    )
    return r.status_code


def throughput(servers: list[ServerProcess], key: str, clients: int, seconds: float) -> float:
    """Requests/s answered (200) by ``servers``, ``clients`` keep-alive clients round-robin."""
    done = [0] * clients
    stop = threading.Event()

    def run(n: int) -> None:
        with httpx.Client(timeout=30) as c:
            i = n
            while not stop.is_set():
                if _chat(c, servers[i % len(servers)], key, "frontier-general") == 200:
                    done[n] += 1
                i += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up: connections, caches
    start, before = time.perf_counter(), sum(done)
    time.sleep(seconds)
    rate = (sum(done) - before) / (time.perf_counter() - start)
    stop.set()
    for t in threads:
        t.join()
    return rate


def _grant(servers: list[ServerProcess], keys: dict[str, str], version: int) -> str:
    request = new_request(
        "grant",
        constitution_version=version,
        requester="alice@lab",
        created=datetime.now(UTC),
        capability="cyber-frontier",
        purpose="benchmark",
        duration_seconds=3600,
    )
    body = {"request": request, "signature": sign_request(request, _key("alice"))}
    r = _post(servers[0], "/authority/requests", body, keys["alice@lab"])
    r.raise_for_status()
    rid = r.json()["id"]
    for approver, name in (("bob@lab", "bob"), ("dana@asi", "dana")):
        _, sig = sign_approval(request, _key(name))
        r = _post(
            servers[0],
            f"/authority/requests/{rid}/approvals",
            {"approver": approver, "signature": sig},
            keys[approver],
        )
        r.raise_for_status()
    return str(r.json()["grant_id"])


def revocation_times(
    servers: list[ServerProcess], keys: dict[str, str], version: int, rounds: int
) -> list[float]:
    a, b = servers
    out = []
    with httpx.Client(timeout=30) as c:
        for _ in range(rounds):
            grant = _grant(servers, keys, version)
            deadline = time.monotonic() + 60
            while _chat(c, b, keys["alice@lab"], "frontier-cyber") != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the grant never reached replica B")
                time.sleep(0.01)
            req = new_request(
                "revocation",
                constitution_version=version,
                requester="dana@asi",
                created=datetime.now(UTC),
                grant=grant,
                reason="benchmark",
            )
            r = _post(
                a,
                "/authority/revocations",
                {"request": req, "signature": sign_request(req, _key("dana"))},
                keys["dana@asi"],
            )
            r.raise_for_status()
            answered = time.perf_counter()
            while _chat(c, b, keys["alice@lab"], "frontier-cyber") != 403:
                pass
            out.append(time.perf_counter() - answered)
    return out


def amendment_times(servers: list[ServerProcess], keys: dict[str, str], rounds: int) -> list[float]:
    """Seconds from the approval that adopts an amendment on A (answered) until B decides
    under the new version (``GET /constitution`` shows what B holds in memory)."""
    a, b = servers
    out = []
    with httpx.Client(timeout=30) as c:
        for _ in range(rounds):
            version, _ = amend_over_http(a.base_url, [a.base_url], keys)
            answered = time.perf_counter()
            while c.get(b.url("/constitution")).json()["version"] != version:
                pass
            out.append(time.perf_counter() - answered)
    return out


def _leads(server: ServerProcess) -> bool:
    try:
        return bool(httpx.get(server.url("/healthz"), timeout=5).json()["log_sequencer"])
    except httpx.HTTPError:
        return False


def fail_over(
    settings: Settings, tmp: Path, servers: list[ServerProcess], key: str, rounds: int
) -> list[tuple[float, float]]:
    out = []
    for r in range(rounds):
        leader = next(s for s in servers if _leads(s))
        survivor = next(s for s in servers if s is not leader)
        leader.kill()
        killed = time.perf_counter()
        while not _leads(survivor):
            time.sleep(0.005)
        elected = time.perf_counter() - killed
        got = _post(
            survivor,
            "/log/entries",
            {"entries": [{"type": "log.annotation/v1", "body": {"text": f"after kill {r}"}}]},
            key,
        )
        got.raise_for_status()
        index = got.json()["entries"][0]["index"]
        while True:
            text = httpx.get(survivor.url("/checkpoint"), timeout=5).text
            if int(text.splitlines()[1]) > index:
                break
            time.sleep(0.005)
        covered = time.perf_counter() - killed
        out.append((elected, covered))
        servers[servers.index(leader)] = start_server(
            settings, log_path=tmp / f"re{r}.log", ready_timeout=300
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()}")
    with start_cluster() as cluster, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        settings = Settings(
            data_dir=tmp,
            database_url=cluster.create_database(),
            demo=True,
            log_replicas=True,
            gateway_grant_cache_ms=600_000,
        )
        keys = issue_keys(settings, "alice@lab", "bob@lab", "dana@asi", LOG_WRITER)
        servers: list[ServerProcess] = []
        try:
            servers.append(start_server(settings, log_path=tmp / "s0.log", ready_timeout=300))
            one = throughput(servers, keys["alice@lab"], args.clients, args.seconds)
            print(f"gateway, 1 replica:  {one:7.1f} requests/s ({args.clients} clients)")
            servers.append(start_server(settings, log_path=tmp / "s1.log", ready_timeout=300))
            two = throughput(servers, keys["alice@lab"], args.clients, args.seconds)
            print(f"gateway, 2 replicas: {two:7.1f} requests/s ({two / one:.2f}x)")
            version = httpx.get(servers[0].url("/constitution"), timeout=30).json()["version"]
            times = revocation_times(servers, keys, version, args.rounds)
            print(
                "revocation on A refused on B after (ms): "
                + ", ".join(f"{t * 1000:.0f}" for t in times)
                + f"; median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f}"
            )
            times = amendment_times(servers, keys, args.rounds)
            print(
                "amendment adopted on A in force on B after (ms): "
                + ", ".join(f"{t * 1000:.0f}" for t in times)
                + f"; median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f}"
                + f" (authority_poll_ms={settings.authority_poll_ms:.0f} behind NOTIFY)"
            )
            poll = settings.log_leader_poll_ms
            fails = fail_over(settings, tmp, servers, keys[LOG_WRITER], min(args.rounds, 3))
            print(
                f"sequencer fail-over (leader SIGKILLed; log_leader_poll_ms={poll:.0f}): "
                + "; ".join(f"new leader {e:.2f} s, entry covered {c:.2f} s" for e, c in fails)
            )
        finally:
            for s in servers:
                s.kill()
    print(f"load average after: {os.getloadavg()}; at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
