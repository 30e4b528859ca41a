"""Transcript scanning: every format, malformed lines reported with file:line and skipped,
resumption from the saved offset, and rescans of rewritten files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.errors import InputError
from custodes.log import TransparencyLog
from custodes.monitors import (
    DaskScan,
    JudgeSettings,
    ReviewQueue,
    ScanProblem,
    StaticDirectory,
    TranscriptScanner,
)
from custodes.monitors._transcripts import detect_format
from custodes.monitors._vuln import VulnDiscoveryDetector
from tests.unit.monitors.test_vuln import ASAN, KASAN, PY_TRACEBACK

DIRECTORY = StaticDirectory(
    organisations={"agent@lab": "lab", "ana@aisi": "aisi"},
    reviewer_ids=("ana@aisi",),
    overseer_organisations=frozenset({"aisi"}),
)


@pytest.fixture
def scanner(sqlite_engine: Engine, log_signer: object, clock: FrozenClock) -> TranscriptScanner:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)  # type: ignore[arg-type]
    queue = ReviewQueue(sqlite_engine, log, DIRECTORY, clock=clock)
    return TranscriptScanner([VulnDiscoveryDetector()], queue, actor="agent@lab")


def _chat(content: str, i: int) -> str:
    return (
        json.dumps(
            {
                "id": f"c{i}",
                "messages": [
                    {"role": "user", "content": "run the fuzzer"},
                    {"role": "tool", "content": content},
                ],
            }
        )
        + "\n"
    )


def test_openai_jsonl_with_a_malformed_line(scanner: TranscriptScanner, tmp_path: Path) -> None:
    f = tmp_path / "chats.jsonl"
    f.write_text(_chat(PY_TRACEBACK, 1) + "{oops\n" + _chat(ASAN, 3) + '{"no": "messages"}\n')
    seen: list[ScanProblem] = []
    s = scanner.scan([f], on_problem=seen.append)
    assert (s.files, s.records, s.detections) == (1, 2, 1)
    assert [p.where for p in seen] == [f"{f}:2", f"{f}:4"]
    assert "not JSON" in seen[0].message and "messages" in seen[1].message
    [d] = scanner.queue.list()
    assert d.location == f"{f}:3" and d.reviewers == ("ana@aisi",)


def test_resume_reads_only_what_was_appended(scanner: TranscriptScanner, tmp_path: Path) -> None:
    f = tmp_path / "chats.jsonl"
    f.write_text(_chat(ASAN, 1) + _chat(PY_TRACEBACK, 2))
    first = scanner.scan([f])
    assert (first.records, first.detections) == (2, 1)
    again = scanner.scan([f])
    assert (again.files, again.skipped_files, again.records) == (0, 1, 0)
    with f.open("a") as fh:
        fh.write(_chat(KASAN, 3))
    more = scanner.scan([f])
    assert (more.records, more.detections) == (1, 1)
    assert [d.location for d in scanner.queue.list()] == [f"{f}:1", f"{f}:3"]


def test_a_rewritten_file_is_rescanned_without_duplicates(
    scanner: TranscriptScanner, tmp_path: Path
) -> None:
    f = tmp_path / "chats.jsonl"
    f.write_text(_chat(ASAN, 1) + _chat(PY_TRACEBACK, 2))
    scanner.scan([f])
    f.write_text(_chat(ASAN, 1) + _chat(KASAN, 2))  # same size class, different bytes
    s = scanner.scan([f])
    assert s.records == 2 and s.detections == 1  # line 1 was already recorded
    assert len(scanner.queue.list()) == 2


def test_claude_code_session(scanner: TranscriptScanner, tmp_path: Path) -> None:
    f = tmp_path / "session.jsonl"
    events = [
        {
            "type": "user",
            "sessionId": "s1",
            "uuid": "u1",
            "message": {"role": "user", "content": "build with ASan and run the tests"},
        },
        {
            "type": "assistant",
            "sessionId": "s1",
            "uuid": "u2",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Running the suite."},
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "Bash",
                        "input": {"command": "make check"},
                    },
                ],
            },
        },
        {
            "type": "user",
            "sessionId": "s1",
            "uuid": "u3",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": ASAN}],
            },
        },
    ]
    f.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert detect_format(f) == "claude-code-jsonl"
    s = scanner.scan([f])
    assert (s.records, s.detections) == (3, 1)
    assert scanner.queue.list()[0].location == f"{f}:3"


def test_inspect_eval_zip_and_json(scanner: TranscriptScanner, tmp_path: Path) -> None:
    sample = {
        "id": 7,
        "epoch": 1,
        "messages": [
            {"role": "user", "content": "triage this crash"},
            {"role": "tool", "content": [{"type": "text", "text": KASAN}]},
        ],
    }
    ev = tmp_path / "logs" / "run.eval"
    ev.parent.mkdir()
    with zipfile.ZipFile(ev, "w") as z:
        z.writestr("header.json", json.dumps({"version": 2}))
        z.writestr("samples/7_epoch_1.json", json.dumps(sample))
        z.writestr("samples/8_epoch_1.json", "{broken")
    js = tmp_path / "logs" / "run.json"
    js.write_text(json.dumps({"version": 2, "samples": [sample, {"id": 9}]}))
    seen: list[ScanProblem] = []
    s = scanner.scan([tmp_path / "logs"], on_problem=seen.append)  # a folder
    assert s.detections == 2 and len(seen) == 2
    assert {p.where.rsplit(":", 1)[1] for p in seen} == {"2"}
    again = scanner.scan([tmp_path / "logs"])
    assert again.skipped_files == 2


def test_plain_text_and_an_unreadable_zip(scanner: TranscriptScanner, tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("boot ok\n" * 1000 + KASAN + "shutdown\n")
    bad = tmp_path / "broken.eval"
    bad.write_bytes(b"not a zip")
    seen: list[ScanProblem] = []
    s = scanner.scan([log, bad], on_problem=seen.append)
    assert s.detections == 1 and [p.where for p in seen] == [f"{bad}:0"]
    [d] = scanner.queue.list()
    assert d.location == f"{log}:1"


def test_progress_counts_every_byte(scanner: TranscriptScanner, tmp_path: Path) -> None:
    f = tmp_path / "chats.jsonl"
    f.write_text(_chat(ASAN, 1) + "{oops\n" + _chat(PY_TRACEBACK, 2))
    total = 0

    def count(n: int) -> None:
        nonlocal total
        total += n

    assert scanner.pending_bytes([f]) == f.stat().st_size
    scanner.scan([f], on_bytes=count)
    assert total == f.stat().st_size
    assert scanner.pending_bytes([f]) == 0


def test_a_process_pool_finds_what_one_process_finds(
    sqlite_engine: Engine, log_signer: object, clock: FrozenClock, tmp_path: Path
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)  # type: ignore[arg-type]
    queue = ReviewQueue(sqlite_engine, log, DIRECTORY, clock=clock)
    f = tmp_path / "chats.jsonl"
    f.write_text("".join(_chat(ASAN if i % 3 == 0 else PY_TRACEBACK, i) for i in range(30)))
    pooled = TranscriptScanner(
        [VulnDiscoveryDetector()],
        queue,
        actor="agent@lab",
        workers=2,
        detector_names=["vuln_rules"],
    )
    s = pooled.scan([f])
    assert (s.records, s.detections) == (30, 10)
    assert sorted(d.location for d in queue.list()) == sorted(
        f"{f}:{i + 1}" for i in range(0, 30, 3)
    )
    with pytest.raises(InputError, match="registry names"):
        TranscriptScanner([VulnDiscoveryDetector()], queue, actor="agent@lab", workers=2)


def test_judged_workers_need_the_judge_settings_and_its_key(
    sqlite_engine: Engine,
    log_signer: object,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)  # type: ignore[arg-type]
    queue = ReviewQueue(sqlite_engine, log, DIRECTORY, clock=clock)
    kwargs = {"actor": "agent@lab", "workers": 2, "detector_names": ["judged"]}
    with pytest.raises(InputError, match="judge's settings"):
        TranscriptScanner([], queue, **kwargs)  # type: ignore[arg-type]
    judge = JudgeSettings("judge", key_env="TEST_SCAN_JUDGE_KEY", max_mb_per_hour=10.0)
    monkeypatch.delenv("TEST_SCAN_JUDGE_KEY", raising=False)
    with pytest.raises(InputError) as err:  # before anything is read, not in a worker
        TranscriptScanner([], queue, judge=judge, **kwargs)  # type: ignore[arg-type]
    assert "TEST_SCAN_JUDGE_KEY" in err.value.diagnostics()
    monkeypatch.setenv("TEST_SCAN_JUDGE_KEY", "sk-monitor")
    scanner = TranscriptScanner([], queue, judge=judge, **kwargs)  # type: ignore[arg-type]
    assert scanner.judge == judge
    # A scan without the judged detector keeps no judge (nothing would use it).
    plain = TranscriptScanner([VulnDiscoveryDetector()], queue, actor="agent@lab", judge=judge)
    assert plain.judge is None
    # A Dask cluster's workers rebuild the built-in detectors only: it refuses the judge
    # before it touches the cluster.
    with pytest.raises(InputError, match="Dask scan does not run the judged"):
        DaskScan(scanner, None)  # type: ignore[arg-type]
