"""``custodes scan`` on a real Dask cluster (a LocalCluster of two worker processes): the same
detections, in the same order, as a local scan of the labelled corpora in data/; nothing lost
or doubled when a worker is killed mid-scan or the client dies and reruns."""

from __future__ import annotations

import json
import os
import shutil
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.log import NoteSigner, TransparencyLog
from custodes.monitors import ReviewQueue, ScanProblem, StaticDirectory, TranscriptScanner
from custodes.monitors._dask_scan import DaskScan, scan_sources
from custodes.store import create_db_engine, migrate

distributed = pytest.importorskip("distributed")

DETECTORS = ["vuln_rules", "coup_rules"]
DIRECTORY = StaticDirectory(
    organisations={"agent@lab": "lab", "ana@aisi": "aisi"},
    reviewer_ids=("ana@aisi",),
    overseer_organisations=frozenset({"aisi"}),
)
# The first 250 transcripts of the vuln corpus (1.8 MB of its 17.7) in 64 KiB shards: dozens of
# shards (what the kill and the rerun need) at a fraction of the whole corpus's scanning time.
VULN_LINES = 250
SHARD = 64 * 1024


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
        death_timeout=60,
    )
    try:
        with distributed.Client(cluster) as c:
            c.wait_for_workers(2, timeout=120)
            yield c
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The labelled corpora (the vuln one cut short), a console log of the crash formats
    longer than several text blocks, an Inspect .eval log, and a JSONL file with malformed
    lines."""
    root = tmp_path_factory.mktemp("corpus")
    monitors = data_dir / "datasets" / "monitors"
    shutil.copy(monitors / "coup_misuse_dev.jsonl", root / "coup_misuse_dev.jsonl")
    vuln = (monitors / "vuln_discovery_dev.jsonl").read_bytes().splitlines(keepends=True)
    (root / "vuln_discovery_dev.jsonl").write_bytes(b"".join(vuln[:VULN_LINES]))
    crashes = sorted((monitors / "crash_formats").glob("*.txt"))
    with (root / "console.log").open("w") as fh:
        for i in range(40):
            fh.write(f"boot {i} ok\n" * 500)
            fh.write(crashes[i % len(crashes)].read_text())
    chats = [json.loads(x) for x in (monitors / "coup_misuse_dev.jsonl").read_text().splitlines()]
    with zipfile.ZipFile(root / "run.eval", "w") as z:
        z.writestr("header.json", json.dumps({"version": 2}))
        for i, chat in enumerate(chats[:12]):
            z.writestr(f"samples/{i}_epoch_1.json", json.dumps({"messages": chat["messages"]}))
        z.writestr("samples/99_epoch_1.json", "{broken")
    lines = (monitors / "vuln_discovery_dev.jsonl").read_text().splitlines()[:100]
    lines[5], lines[60] = "{oops", '{"no": "messages"}'
    (root / "mixed.jsonl").write_text("\n".join(lines))  # no final line end
    return root


def _scanner(tmp_path: Path, name: str, clock: FrozenClock) -> TranscriptScanner:
    engine: Engine = create_db_engine(f"sqlite:///{tmp_path / name}")
    migrate(engine)
    log = TransparencyLog(engine, NoteSigner.generate("test.custodes/log"), clock=clock)
    queue = ReviewQueue(engine, log, DIRECTORY, clock=clock)
    from custodes.monitors import default_registry

    registry = default_registry()
    return TranscriptScanner(
        [registry.get(n) for n in DETECTORS],
        queue,
        actor="agent@lab",
        detector_names=DETECTORS,
    )


def _detections(scanner: TranscriptScanner) -> list[tuple[str, str, str, float, str]]:
    return [
        (d.location, d.detector, d.category, d.score, d.source)
        for d in scanner.queue.list(limit=100_000)
    ]


@pytest.fixture(scope="module")
def local(
    corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[tuple[str, str, str, float, str]], list[str], int]:
    """What a local scan (one process) finds: detections in queue order, problems, records."""
    from datetime import UTC, datetime

    clock = FrozenClock(datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC))
    scanner = _scanner(tmp_path_factory.mktemp("local"), "local.db", clock)
    seen: list[ScanProblem] = []
    summary = scanner.scan([corpus], on_problem=seen.append)
    assert summary.detections > 200 and len(seen) == 3  # hundreds to compare (249 here)
    return _detections(scanner), [p.where for p in seen], summary.records


def test_two_workers_find_what_a_local_scan_finds(
    client: distributed.Client,
    corpus: Path,
    local: tuple[list[tuple[str, str, str, float, str]], list[str], int],
    tmp_path: Path,
    clock: FrozenClock,
) -> None:
    scanner = _scanner(tmp_path, "dask.db", clock)
    dask = DaskScan(scanner, client, shard_bytes=SHARD)
    sources = scan_sources([corpus])
    total = dask.pending_bytes(sources)
    assert total == sum(f.stat().st_size for f in corpus.iterdir())
    progress: list[int] = []
    seen: list[ScanProblem] = []
    summary = dask.scan(sources, on_bytes=progress.append, on_problem=seen.append)
    detections, problems, records = local
    assert _detections(scanner) == detections  # the same detections, in the same order
    assert [p.where for p in seen] == problems
    assert (summary.records, summary.detections) == (records, len(detections))
    assert sum(progress) == total and len(progress) > 30  # many shards, every byte once
    # The scheduler's dashboard shows the scan's tasks (what a user watches on a cluster).
    page = httpx.get(client.dashboard_link, follow_redirects=True, timeout=60)
    assert page.status_code == 200 and "Bokeh" in page.text
    tasks = httpx.get(client.dashboard_link.replace("/status", "/json/counts.json"), timeout=60)
    assert tasks.status_code == 200
    again = DaskScan(scanner, client, shard_bytes=SHARD).scan(scan_sources([corpus]))
    assert (again.files, again.skipped_files, again.detections) == (0, 5, 0)


def test_a_worker_killed_mid_scan_loses_and_doubles_nothing(
    client: distributed.Client,
    corpus: Path,
    local: tuple[list[tuple[str, str, str, float, str]], list[str], int],
    tmp_path: Path,
    clock: FrozenClock,
) -> None:
    scanner = _scanner(tmp_path, "killed.db", clock)
    pids = client.run(os.getpid)
    killed: list[str] = []
    taken: list[int] = []

    def kill_a_busy_worker(n: int) -> None:
        taken.append(n)
        if killed or len(taken) < 10:  # dozens of shards still to come
            return
        # The shards after the first are still running or held on the workers (the client
        # takes results in file order): kill a worker that holds some of them.
        busy: dict[str, int] = {}
        for worker, keys in [*client.processing().items(), *client.has_what().items()]:
            busy[worker] = busy.get(worker, 0) + len(keys)
        worker = max(busy, key=lambda w: busy[w])
        assert busy[worker] > 0
        killed.append(worker)
        os.kill(pids[worker], signal.SIGKILL)

    summary = DaskScan(scanner, client, shard_bytes=SHARD).scan(
        scan_sources([corpus]), on_bytes=kill_a_busy_worker
    )
    assert killed
    detections = local[0]
    assert _detections(scanner) == detections
    assert summary.detections == len(detections)
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker


class ClientDied(Exception):
    pass


def test_a_client_that_dies_reruns_without_duplicates(
    client: distributed.Client,
    corpus: Path,
    local: tuple[list[tuple[str, str, str, float, str]], list[str], int],
    tmp_path: Path,
    clock: FrozenClock,
) -> None:
    scanner = _scanner(tmp_path, "rerun.db", clock)
    taken: list[int] = []

    def die_halfway(n: int) -> None:
        taken.append(n)
        if len(taken) == 20:
            raise ClientDied

    with pytest.raises(ClientDied):
        DaskScan(scanner, client, shard_bytes=SHARD).scan(
            scan_sources([corpus]), on_bytes=die_halfway
        )
    halfway = len(_detections(scanner))
    assert 0 < halfway < len(local[0])
    rerun = DaskScan(scanner, client, shard_bytes=SHARD).scan(scan_sources([corpus]))
    assert rerun.skipped_files >= 1  # what was finished is not read again
    assert _detections(scanner) == local[0]  # the rest is found, nothing twice


def test_cli_scan_on_a_scheduler_with_a_file_url(
    client: distributed.Client,
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.demo_api import run_cli

    monkeypatch.setenv("CUSTODES_DEMO", "true")
    monkeypatch.chdir(tmp_path)
    d = ["--data-dir", str(tmp_path / "data")]
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    shutil.copy(data_dir / "datasets" / "monitors" / "coup_misuse_dev.jsonl", transcripts)
    (transcripts / "broken.jsonl").write_text('{"text": "fine"}\n{broken\n')
    url = transcripts.as_uri()
    address = client.scheduler.address
    args = [*d, "scan", url, "--actor", "alice@lab", "--dask", address, "--shard-mb", "1"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "2 file(s) scanned" in out and "1 malformed record(s)" in out
    assert f"{url}/broken.jsonl:2" in err and "Traceback" not in err
    found = int(out.split(" detection(s)")[0].rsplit(" ", 1)[1])
    assert found > 50
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "2 already complete" in out and "0 detection(s)" in out
    code, out, _ = run_cli([*d, "review", "list", "--json", "--limit", "1000"], capsys)
    assert len(json.loads(out)) == found
    # Bad input: a URL without --dask, a missing path, --workers with --dask, a bad local:N.
    code, _, err = run_cli([*d, "scan", url, "--actor", "alice@lab"], capsys)
    assert code == 2 and "add --dask" in err
    code, _, err = run_cli([*d, "scan", "nowhere/", "--actor", "alice@lab"], capsys)
    assert code == 2 and "nowhere/ does not exist" in err
    code, _, err = run_cli([*args, "--workers", "2"], capsys)
    assert code == 2 and "--dask local:N" in err
    for bad in ("local:0", "local:²", "local:١", "local:257"):
        code, _, err = run_cli([*d, "scan", url, "--actor", "a@lab", "--dask", bad], capsys)
        assert code == 2 and "local:N with 1 <= N <= 256" in err, (bad, err)
