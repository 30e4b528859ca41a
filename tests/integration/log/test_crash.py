"""Crash test: SIGKILL the appending server at random moments, restart it, check the log.

Clients append concurrently and record every acknowledged (index, leaf hash); a watcher records
every checkpoint the server publishes. After many kills and restarts: no acknowledged entry is
lost or changed, no index was handed out twice, and the stored tree (entries, tiles, state) is
consistent with every checkpoint ever published.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, select

from custodes.config import Settings
from custodes.log import NoteSigner, SignedCheckpoint, leaf_hash
from custodes.log._tables import log_entries
from custodes.log._verify import verify_store
from tests.support.keys import LOG_WRITER, issue_keys
from tests.support.server import start_server

ROUNDS = {"sqlite": 5, "postgresql": 3}


def _entry(tag: str) -> dict[str, object]:
    return {"type": "log.annotation/v1", "body": {"text": tag}}


class _Load:
    """Client threads appending, and a watcher collecting published checkpoints."""

    def __init__(self, base_url: str, verifier_key: NoteSigner, round_: int, api_key: str) -> None:
        self.base_url = base_url
        self.headers = {"authorization": f"Bearer {api_key}"}
        self.key = verifier_key
        self.round = round_
        self.acks: list[tuple[int, bytes]] = []
        self.published: list[SignedCheckpoint] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._append, args=(n,)) for n in range(6)]
        self.threads.append(threading.Thread(target=self._watch))

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _append(self, n: int) -> None:
        rng = random.Random(f"{self.round}-{n}")
        with httpx.Client(base_url=self.base_url, timeout=10, headers=self.headers) as client:
            count = 0
            while not self.stop.is_set():
                k = rng.choice([1, 1, 2, 10, 50])
                batch = [_entry(f"{self.round}-{n}-{count}-{i}") for i in range(k)]
                count += 1
                try:
                    r = client.post("/log/entries", json={"entries": batch})
                except httpx.HTTPError:
                    return  # the server died; this request is unacknowledged
                if r.status_code != 201:
                    continue
                with self.lock:
                    self.acks += [
                        (e["index"], base64.b64decode(e["leaf_hash"])) for e in r.json()["entries"]
                    ]

    def _watch(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    r = client.get("/checkpoint")
                except httpx.HTTPError:
                    return
                self.published.append(SignedCheckpoint.from_text(r.text, self.key.verifier))
                time.sleep(0.02)


def test_sigkill_loses_nothing_acknowledged(engine: Engine, db_url: str, tmp_path: Path) -> None:
    signer = NoteSigner.generate("custodes.local/log")
    (tmp_path / "log.key").write_text(signer.to_key())
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, demo=True, log_checkpoint_interval_ms=100
    )
    api_key = issue_keys(settings, LOG_WRITER)[LOG_WRITER]
    rng = random.Random(2026)
    acks: list[tuple[int, bytes]] = []
    published: list[SignedCheckpoint] = []
    rounds = ROUNDS[engine.dialect.name]
    for round_ in range(rounds):
        server = start_server(settings, log_path=tmp_path / "server.log")
        load = _Load(server.base_url, signer, round_, api_key)
        load.start()
        deadline = time.monotonic() + 20
        while not load.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))
        server.kill()  # SIGKILL: no shutdown hooks, mid-transaction as often as not
        load.join()
        acks += load.acks
        published += load.published
        assert load.acks, f"round {round_}: no appends were acknowledged before the kill"
    # A restart with no more appends: the entries acknowledged before the last kill but not yet
    # signed are covered within the checkpoint interval (100 ms here), not at the next append.
    server = start_server(settings, log_path=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            newest = SignedCheckpoint.from_text(client.get("/checkpoint").text, signer.verifier)
    finally:
        server.stop()
    indices = [i for i, _ in acks]
    assert newest.checkpoint.size >= max(indices) + 1, "acknowledged entries left unsigned"
    assert len(indices) == len(set(indices)), "an index was acknowledged twice"
    with engine.connect() as conn:
        stored = {
            int(i): (bytes(h), bytes(d))
            for i, h, d in conn.execute(
                select(log_entries.c.idx, log_entries.c.leaf_hash, log_entries.c.data)
            )
        }
    for index, leaf in acks:
        assert index in stored, f"acknowledged entry {index} was lost"
        assert stored[index][0] == leaf == leaf_hash(stored[index][1])
    # Every checkpoint ever published is consistent with the stored tree (trusted checks
    # recompute the root at each published size).
    distinct = list({(c.checkpoint.size, c.checkpoint.root_hash): c for c in published}.values())
    report = verify_store(engine, signer.verifier, trusted=distinct)
    assert report.ok, [str(p) for p in report.problems[:5]]
    assert report.trusted == len(distinct) > rounds
    assert report.size >= max(indices) + 1
    assert newest.checkpoint.size == report.size  # every stored entry is covered
