"""``custodes log verify --check-entries`` on a real server's database (issue 13, class 4).

A deployment runs (real uvicorn, the demo constitution, a gateway call). Then an insider who
holds the log's signing key writes a forged grant straight into the database through the log
(tree, tiles and checkpoints all consistent), and another forges a row by raw SQL. The tree
checks cannot tell the first from a real grant; the meaning check finds both, by index and
reason, and the CLI exits 1.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from custodes.config import Settings
from custodes.log import Entry, NoteSigner, TransparencyLog
from custodes.log._tables import log_entries
from custodes.store import create_db_engine
from tests.support.keys import LOG_WRITER, issue_keys
from tests.support.server import running_server

ROOT = Path(__file__).resolve().parents[3]


def _verify(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "custodes"),
            "--data-dir",
            str(data),
            "log",
            "verify",
            "--check-entries",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def _forged_grant(grant_id: str) -> Entry:
    return Entry.create(
        "authority.grant/v1",
        time=datetime.now(UTC),
        principal="alice@lab",
        body={
            "id": grant_id,
            "request_id": "0123456789abcdef",
            "principal": "alice@lab",
            "capability": "cyber-frontier",
            "rule": "cyber-frontier-lab",
            "granted_at": "2026-12-07T00:00:00Z",
            "expires_at": "2026-12-07T08:00:00Z",
            "constitution_version": 1,
            "approvals": [
                {"principal": "dana@asi", "organisation": "asi"},
                {"principal": "erin@auditor", "organisation": "auditor"},
            ],
        },
    )


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "log.key").write_text(NoteSigner.generate("custodes.local/log").to_key())
    settings = Settings(data_dir=data, demo=True, log_checkpoint_interval_ms=50)
    key = issue_keys(settings, LOG_WRITER)[LOG_WRITER]
    with running_server(settings, log_path=data / "server.log") as server:
        r = httpx.post(
            server.url("/log/entries"),
            json={"type": "log.annotation/v1", "body": {"text": "a genuine note"}},
            headers={"authorization": f"Bearer {key}"},
        )
        assert r.status_code == 201, r.text
    return data


def test_a_forged_grant_written_with_the_log_key_is_found(deployment: Path) -> None:
    clean = _verify(deployment)
    assert clean.returncode == 0 and clean.stdout.startswith("OK: "), clean.stdout + clean.stderr
    engine = create_db_engine(f"sqlite:///{deployment / 'custodes.db'}")
    log = TransparencyLog(engine, NoteSigner.from_key((deployment / "log.key").read_text()))
    try:
        appended = log.append(_forged_grant("g-forged-by-insider"))
        log.latest_checkpoint()  # a checkpoint over it, signed with the real key
    finally:
        log.close()
        engine.dispose()
    found = _verify(deployment)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "the log does NOT verify: 1 problem(s)" in found.stderr
    assert (
        f"entry: entry {appended.index}: authority.grant/v1: grant g-forged-by-insider has no "
        "logged grant request before it"
    ) in found.stderr
    assert "Traceback" not in found.stderr


def test_a_forged_row_inserted_by_sql_is_found(deployment: Path) -> None:
    engine = create_db_engine(f"sqlite:///{deployment / 'custodes.db'}")
    data = _forged_grant("g-forged-by-sql").to_json()
    try:
        with engine.begin() as conn:
            index = conn.execute(select(func.count()).select_from(log_entries)).scalar() or 0
            conn.execute(
                insert(log_entries).values(
                    idx=index, leaf_hash=hashlib.sha256(b"\x00" + data).digest(), data=data
                )
            )
    finally:
        engine.dispose()
    found = _verify(deployment)
    assert found.returncode == 1
    assert (
        f"entry {index}: authority.grant/v1: grant g-forged-by-sql has no logged grant request "
        "before it"
    ) in found.stderr
