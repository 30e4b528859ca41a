"""Three real ``custodes serve`` processes on one throwaway PostgreSQL database (log_replicas):
a grant approved across them reaches all, and so does an amendment adopted across them;
appends and gateway calls spread over them; the sequencer (the holder of the log's advisory
lock) is SIGKILLed mid-run and another takes over; a revocation on one replica is refused on
the other although the grant cache would keep the grant for ten minutes; afterwards the log
verifies, no acknowledged entry is lost, and every surviving replica serves the same
checkpoint. HAProxy, running the configuration docs/deployment-replicas.md shows, sits in
front: its health checks pass on every replica, gateway calls through it reach more than one,
and once the sequencer is killed they still succeed and its check marks it down."""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from custodes.authority import new_request, sign_approval, sign_request
from custodes.config import Settings
from custodes.gateway import RECEIPT_INDEX, RECEIPT_LEAF
from custodes.log import NoteSigner, SignedCheckpoint, leaf_hash
from custodes.log._tables import log_entries
from custodes.log._verify import verify_store
from custodes.store import create_db_engine
from tests.integration.gateway.conftest import demo_key
from tests.support.amend import amend_over_http
from tests.support.haproxy import HAProxy, docs_config, haproxy_missing, start_haproxy
from tests.support.keys import LOG_WRITER, issue_keys
from tests.support.postgres import PostgresCluster
from tests.support.server import ServerProcess, start_server

HELLO = [{"role": "user", "content": "hello replicas"}]
DOCS_PAGE = Path(__file__).resolve().parents[3] / "docs" / "deployment-replicas.md"


def _until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> float:
    """Wait for ``check`` (polling); the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def _health(server: ServerProcess) -> dict[str, Any]:
    return httpx.get(server.url("/healthz"), timeout=10).json()  # type: ignore[no-any-return]


def _version(server: ServerProcess) -> int:
    """The version of the constitution ``server`` decides under (its memory, not the table)."""
    return int(httpx.get(server.url("/constitution"), timeout=10).json()["version"])


def _chat(server: ServerProcess, key: str) -> int:
    r = httpx.post(
        server.url("/v1/chat/completions"),
        json={"model": "frontier-cyber", "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    return r.status_code


def _through(lb: HAProxy, key: str, calls: int) -> list[str]:
    """Gateway calls through HAProxy, one after another: "200" each, or the status and the
    start of the body (who refused: HAProxy or a replica)."""
    answers = []
    for _ in range(calls):
        r = httpx.post(
            lb.url("/v1/chat/completions"),
            json={"model": "frontier-cyber", "messages": HELLO},
            headers={"authorization": f"Bearer {key}"},
            timeout=60,
            verify=lb.tls,
        )
        answers.append("200" if r.status_code == 200 else f"{r.status_code} {r.text[:200]}")
    return answers


def _answered(lb: HAProxy) -> dict[str, int]:
    """2xx answers HAProxy relayed from each server (its own health checks not counted)."""
    return {name: int(row["hrsp_2xx"] or 0) for name, row in lb.servers().items()}


def _checks(lb: HAProxy) -> dict[str, tuple[str, str]]:
    """Each server's state and last check result, as HAProxy sees them."""
    return {name: (row["status"], row["check_status"]) for name, row in lb.servers().items()}


class _Appends:
    """Threads appending through every live replica in turn, and threads making gateway calls
    (each logged; its receipt headers name the entry): acknowledged entries recorded."""

    def __init__(self, servers: list[ServerProcess], key: str, caller: str) -> None:
        self.servers = servers
        self.headers = {"authorization": f"Bearer {key}"}
        self.caller = {"authorization": f"Bearer {caller}"}
        self.calls: dict[str, int] = {}
        self.acks: list[tuple[int, bytes]] = []
        self.by_server: dict[str, int] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # Each thread goes round every replica; more threads would only burn the CPU the
        # replicas and PostgreSQL need (two cores).
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(2)]
        self.threads += [threading.Thread(target=self._call, args=(0,))]

    def __enter__(self) -> _Appends:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def count(self) -> int:
        with self.lock:
            return len(self.acks)

    def everywhere(self) -> bool:
        """Has every replica acknowledged appends and answered gateway calls?"""
        with self.lock:
            return len(self.by_server) == len(self.calls) == len(self.servers)

    def _call(self, n: int) -> None:
        for i in itertools.count():
            if self.stop.is_set():
                return
            server = self.servers[(n + i) % len(self.servers)]
            if server.process.poll() is not None:
                continue
            try:
                r = httpx.post(
                    server.url("/v1/chat/completions"),
                    json={"model": "frontier-general", "messages": HELLO},
                    headers=self.caller,
                    timeout=30,
                )
            except httpx.HTTPError:
                continue
            if r.status_code != 200:
                continue
            with self.lock:
                self.acks.append(
                    (int(r.headers[RECEIPT_INDEX]), bytes.fromhex(r.headers[RECEIPT_LEAF]))
                )
                self.calls[server.base_url] = self.calls.get(server.base_url, 0) + 1

    def _run(self, n: int) -> None:
        for i in itertools.count():
            if self.stop.is_set():
                return
            server = self.servers[(n + i) % len(self.servers)]
            if server.process.poll() is not None:
                continue  # killed: a load balancer takes it out of rotation
            batch = [
                {"type": "log.annotation/v1", "body": {"text": f"{n}-{i}-{j}"}} for j in range(3)
            ]
            try:
                r = httpx.post(
                    server.url("/log/entries"),
                    json={"entries": batch},
                    headers=self.headers,
                    timeout=30,
                )
            except httpx.HTTPError:
                continue  # died mid-request: unacknowledged
            if r.status_code != 201:
                continue
            with self.lock:
                self.acks += [
                    (e["index"], base64.b64decode(e["leaf_hash"])) for e in r.json()["entries"]
                ]
                self.by_server[server.base_url] = self.by_server.get(server.base_url, 0) + 1


def _grant(servers: list[ServerProcess], keys: dict[str, str], version: int) -> str:
    """alice's cyber-frontier grant: requested on one replica, approved on the other two."""
    request = new_request(
        "grant",
        constitution_version=version,
        requester="alice@lab",
        created=_now(servers[0]),
        capability="cyber-frontier",
        purpose="triage a fuzzer crash",
        duration_seconds=3600,
    )
    body = {"request": request, "signature": sign_request(request, demo_key("alice"))}
    r = httpx.post(
        servers[0].url("/authority/requests"),
        json=body,
        headers={"authorization": f"Bearer {keys['alice@lab']}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    for server, (approver, name) in zip(
        servers[1:], (("bob@lab", "bob"), ("dana@asi", "dana")), strict=True
    ):
        _, signature = sign_approval(request, demo_key(name))
        r = httpx.post(
            server.url(f"/authority/requests/{request_id}/approvals"),
            json={"approver": approver, "signature": signature},
            headers={"authorization": f"Bearer {keys[approver]}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    record = r.json()
    assert record["status"] == "granted", record
    return str(record["grant_id"])


def _now(server: ServerProcess) -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.mark.postgres
@pytest.mark.slow
def test_three_replicas_one_sequencer_fail_over_and_revocation(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres_cluster.create_database()
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        demo=True,
        log_replicas=True,
        log_leader_poll_ms=100,
        log_checkpoint_interval_ms=100,
        gateway_grant_cache_ms=600_000,  # only the notification can explain a prompt refusal
    )
    keys = issue_keys(settings, "alice@lab", "bob@lab", "dana@asi", LOG_WRITER)
    signer = NoteSigner.from_key((tmp_path / "log.key").read_text())
    servers: list[ServerProcess] = []
    lb: HAProxy | None = None
    no_haproxy = haproxy_missing()
    try:
        servers.append(start_server(settings, log_path=tmp_path / "server0.log", ready_timeout=180))
        # The first adopted version 1 of the constitution; the other two start together.
        with ThreadPoolExecutor(2) as pool:
            starting = [
                pool.submit(
                    start_server, settings, log_path=tmp_path / f"server{i}.log", ready_timeout=180
                )
                for i in (1, 2)
            ]
            failed = [f.exception() for f in starting]
        servers += [f.result() for f, e in zip(starting, failed, strict=True) if e is None]
        if any(failed):
            raise next(e for e in failed if e is not None)
        # One replica holds the lock (the first to start, unless its lock session hiccupped);
        # the others wait for it.
        _until(
            lambda: sum(bool(_health(s)["log_sequencer"]) for s in servers) == 1,
            "exactly one replica is the sequencer",
        )
        leader = next(s for s in servers if _health(s)["log_sequencer"])
        _until(
            lambda: all(_health(s)["change_notifications"] == "listening" for s in servers),
            "every replica listens for the others' changes",
        )
        version = httpx.get(servers[0].url("/constitution"), timeout=30).json()["version"]
        assert [_chat(s, keys["alice@lab"]) for s in servers] == [403, 403, 403]
        grant_id = _grant(servers, keys, version)
        # The grant was written by one replica; the others learn of it by notification.
        for s in servers:
            _until(lambda s=s: _chat(s, keys["alice@lab"]) == 200, f"{s.base_url} allows")
        # An amendment proposed on one replica and signed on the other two is in force on all
        # three without a restart (each activates the stored version when notified); the
        # grant made under the old version still covers alice's calls everywhere.
        version, _ = amend_over_http(servers[0].base_url, [s.base_url for s in servers[1:]], keys)
        for s in servers:
            _until(lambda s=s: _version(s) == version, f"{s.base_url} decides under v{version}")
        assert [_health(s)["constitution_version"] for s in servers] == [version] * 3
        assert [_chat(s, keys["alice@lab"]) for s in servers] == [200, 200, 200]
        if no_haproxy is None:
            # The page's configuration checks the path its text names.
            assert "Health-check each replica on `/healthz`" in DOCS_PAGE.read_text()
            assert "option httpchk GET /healthz" in docs_config(DOCS_PAGE)
            work = tmp_path / "haproxy"
            work.mkdir()
            lb = start_haproxy(
                DOCS_PAGE, [s.base_url.removeprefix("http://") for s in servers], work
            )
            _until(
                lambda: set(_checks(lb).values()) == {("UP", "L7OK")},
                "HAProxy's health check passes on every replica",
            )
            assert _through(lb, keys["alice@lab"], 9) == ["200"] * 9
            served = _answered(lb)
            assert sum(served.values()) == 9
            assert sum(n > 0 for n in served.values()) >= 2, served
        with _Appends(servers, keys[LOG_WRITER], keys["alice@lab"]) as load:
            _until(
                lambda: load.count() >= 60 and load.everywhere(),
                "appends and gateway calls acknowledged by every replica before the kill",
            )
            leader.kill()  # the sequencer, SIGKILLed mid-run
            before = load.count()
            survivors = [s for s in servers if s is not leader]
            _until(
                lambda: sum(bool(_health(s)["log_sequencer"]) for s in survivors) == 1,
                "a surviving replica takes over as the sequencer",
            )
            if lb is not None:
                # Killed but maybe not yet marked down: a refused connection is redispatched.
                assert _through(lb, keys["alice@lab"], 6) == ["200"] * 6
                dead = f"r{servers.index(leader) + 1}"
                _until(
                    lambda: _checks(lb)[dead][0] == "DOWN",
                    "HAProxy's check marks the killed replica down",
                )
                assert _through(lb, keys["alice@lab"], 6) == ["200"] * 6
                _until(
                    lambda: all(
                        _checks(lb)[f"r{servers.index(s) + 1}"] == ("UP", "L7OK") for s in survivors
                    ),
                    "HAProxy's check still passes on the survivors",
                )
            _until(lambda: load.count() >= before + 60, "appends go on through the survivors")
            # Revoked on one survivor: the other refuses alice's next calls (its grant cache
            # would keep the grant for ten minutes; the notification clears it).
            revoker, other = survivors
            revocation = new_request(
                "revocation",
                constitution_version=version,
                requester="dana@asi",
                created=_now(revoker),
                grant=grant_id,
                reason="purpose fulfilled",
            )
            r = httpx.post(
                revoker.url("/authority/revocations"),
                json={
                    "request": revocation,
                    "signature": sign_request(revocation, demo_key("dana")),
                },
                headers={"authorization": f"Bearer {keys['dana@asi']}"},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            assert _chat(revoker, keys["alice@lab"]) == 403
            _until(lambda: _chat(other, keys["alice@lab"]) == 403, "the other replica refuses")
        assert len(load.by_server) == 3  # every replica took appends
        assert len(load.calls) == 3  # and answered gateway calls
        size = max(i for i, _ in load.acks) + 1
        _until(lambda: all(_health(s)["log_size"] >= size for s in survivors), "sizes are visible")
        final = _health(survivors[0])["log_size"]

        def same_checkpoint() -> bool:
            texts = [httpx.get(s.url("/checkpoint"), timeout=30).text for s in survivors]
            cps = [SignedCheckpoint.from_text(t, signer.verifier) for t in texts]
            return texts[0] == texts[1] and cps[0].checkpoint.size == final

        _until(same_checkpoint, "every replica serves the same checkpoint, over every entry")
    finally:
        if lb is not None:
            lb.stop()
        for s in servers:
            s.kill()
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            stored = {
                int(i): bytes(h)
                for i, h, d in conn.execute(
                    select(log_entries.c.idx, log_entries.c.leaf_hash, log_entries.c.data)
                )
                if leaf_hash(bytes(d)) == bytes(h)
            }
        indices = [i for i, _ in load.acks]
        assert len(indices) == len(set(indices)), "an index was acknowledged twice"
        lost = [i for i, h in load.acks if stored.get(i) != h]
        assert lost == [], f"acknowledged entries lost or changed: {lost[:5]}"
        report = verify_store(engine, signer.verifier)
        assert report.ok, [str(p) for p in report.problems[:5]]
    finally:
        engine.dispose()
    if no_haproxy is not None:
        pytest.skip(f"{no_haproxy} (every other check of this test ran and passed)")


def test_replicas_need_postgresql(tmp_path: Path) -> None:
    from custodes.errors import ConfigError
    from custodes.wiring import open_core

    settings = Settings(data_dir=tmp_path, demo=True, log_replicas=True)  # SQLite by default
    with pytest.raises(ConfigError, match="log_replicas needs PostgreSQL"):
        open_core(settings)
    assert not (tmp_path / "custodes.db").exists()  # refused before anything was created
