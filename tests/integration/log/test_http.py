"""The log's HTTP API on a real server: appends, C2SP tiles read by tlog-scales, proofs, errors.

tlog-scales (PyPI, pinned 0.0.3) is a tlog-tiles client we did not write: it reads custodes'
checkpoint and tiles over HTTP and must agree on the root, the entries and every proof.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tlog_scales.backend import HttpBackend
from tlog_scales.reader import TilesReader
from tlog_scales.signing import Vkey
from tlog_scales.tlog import ConsistencyProof, InclusionProof

from custodes.config import Settings
from custodes.log import NoteSigner, SignedCheckpoint, leaf_hash, verify_inclusion
from custodes.log._receipt import verify_receipt
from tests.support.keys import LOG_WRITER, issue_keys
from tests.support.server import ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[3]


def _entry(i: int) -> dict[str, object]:
    # The server stamps the principal (the API key's) and the time (its clock).
    return {"type": "log.annotation/v1", "body": {"text": f"entry {i}"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("server")
    (data / "log.key").write_text(NoteSigner.generate("custodes.local/log").to_key())
    settings = Settings(data_dir=data, demo=True, log_checkpoint_interval_ms=200)
    keys = issue_keys(settings, LOG_WRITER)
    with running_server(settings, log_path=data / "server.log") as proc:
        proc.data_dir = data  # type: ignore[attr-defined]
        proc.api_key = keys[LOG_WRITER]  # type: ignore[attr-defined]
        yield proc


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    key = server.api_key  # type: ignore[attr-defined]
    with httpx.Client(
        base_url=server.base_url, timeout=30, headers={"authorization": f"Bearer {key}"}
    ) as c:
        yield c


@pytest.fixture(scope="module")
def signer(server: ServerProcess) -> NoteSigner:
    return NoteSigner.from_key((server.data_dir / "log.key").read_text())  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def filled(client: httpx.Client, signer: NoteSigner) -> tuple[SignedCheckpoint, list[bytes]]:
    """Appends 1 + 1000 + 300 + 5 entries; returns an early checkpoint and all entry bytes."""
    r = client.post("/log/entries", json=_entry(0))
    assert r.status_code == 201, r.text
    n = r.json()["entries"][0]["index"] + 1  # other components may log at start
    early = _wait_for(client, signer, n)
    for k in (1000, 300, 5):
        r = client.post("/log/entries", json={"entries": [_entry(n + i) for i in range(k)]})
        assert r.status_code == 201, r.text
        assert [e["index"] for e in r.json()["entries"]] == list(range(n, n + k))
        n += k
    _wait_for(client, signer, n)
    datas = []
    for start in range(0, n, 1000):
        body = client.get("/log/entries", params={"start": start, "end": start + 1000}).json()
        for e in body["entries"]:
            data = _canonical(e["entry"])
            assert base64.b64decode(e["leaf_hash"]) == leaf_hash(data)
            datas.append(data)
    assert len(datas) == n
    return early, datas


def _canonical(obj: object) -> bytes:
    import rfc8785

    return rfc8785.dumps(obj)


def _wait_for(client: httpx.Client, signer: NoteSigner, size: int) -> SignedCheckpoint:
    deadline = time.monotonic() + 10
    while True:
        r = client.get("/checkpoint")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        signed = SignedCheckpoint.from_text(r.text, signer.verifier)
        if signed.checkpoint.size >= size:
            return signed
        assert time.monotonic() < deadline, "the server did not sign a checkpoint in time"
        time.sleep(0.05)


def test_tlog_scales_reads_our_tiles_and_agrees(
    server: ServerProcess,
    client: httpx.Client,
    signer: NoteSigner,
    filled: tuple[SignedCheckpoint, list[bytes]],
) -> None:
    early, datas = filled
    reader = TilesReader(HttpBackend(server.base_url))
    cp = reader.get_checkpoint()
    cp.verify(Vkey.from_string(signer.verifier.to_key()))  # their signed-note code, our key
    ours = SignedCheckpoint.from_text(client.get("/checkpoint").text, signer.verifier).checkpoint
    assert (cp.size, cp.root_hash) == (ours.size, ours.root_hash) == (len(datas), cp.root_hash)
    assert reader.calculate_root_hash() == cp.root_hash
    for i in (0, 1, 255, 256, 700, 1000, 1023, 1024, len(datas) - 1):
        assert reader.get_entry(i) == datas[i]
        theirs = reader.get_inclusion_proof(i, cp.size)
        theirs.check(leaf_hash(datas[i]), cp.root_hash)
        body = client.get("/log/proof/inclusion", params={"index": i}).json()
        assert [base64.b64decode(h) for h in body["proof"]] == theirs.node_hashes
        InclusionProof(i, cp.size, [base64.b64decode(h) for h in body["proof"]]).check(
            leaf_hash(datas[i]), cp.root_hash
        )
    old = early.checkpoint
    theirs_c = reader.get_consistency_proof(old.size, cp.size)
    body = client.get("/log/proof/consistency", params={"size1": old.size, "size2": cp.size}).json()
    ours_c = [base64.b64decode(h) for h in body["proof"]]
    assert ours_c == theirs_c.node_hashes
    ConsistencyProof(old.size, cp.size, ours_c).check(old.root_hash, cp.root_hash)


def test_proof_by_leaf_hash_and_receipt(
    client: httpx.Client,
    signer: NoteSigner,
    filled: tuple[SignedCheckpoint, list[bytes]],
) -> None:
    _, datas = filled
    leaf = leaf_hash(datas[777])
    body = client.get("/log/proof/inclusion", params={"leaf_hash": leaf.hex()}).json()
    assert body["index"] == 777
    cp = SignedCheckpoint.from_text(client.get("/checkpoint").text, signer.verifier).checkpoint
    verify_inclusion(
        leaf, 777, body["size"], [base64.b64decode(h) for h in body["proof"]], cp.root_hash
    )
    receipt = client.get("/log/receipt/777")
    assert receipt.status_code == 200
    verified = verify_receipt(receipt.text, signer.verifier)
    assert verified.entry_data == datas[777] and verified.index == 777


def test_full_tiles_are_immutable_and_partial_tiles_are_prefixes(
    client: httpx.Client,
    filled: tuple[SignedCheckpoint, list[bytes]],
) -> None:
    _, datas = filled
    full = client.get("/tile/0/001")
    assert full.status_code == 200 and "immutable" in full.headers["cache-control"]
    assert full.content == b"".join(leaf_hash(d) for d in datas[256:512])
    partial = client.get("/tile/0/005.p/2")
    assert partial.content == b"".join(leaf_hash(d) for d in datas[1280:1282])
    bundle = client.get("/tile/entries/000.p/3").content
    assert bundle == b"".join(len(d).to_bytes(2, "big") + d for d in datas[:3])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "where"),
    [
        ("get", "/log/proof/inclusion", {"params": {"index": 10**6}}, 404, "index"),
        ("get", "/log/proof/inclusion", {"params": {"index": 0, "size": 0}}, 422, "query.size"),
        ("get", "/log/proof/inclusion", {"params": {"index": 0, "size": 10**7}}, 404, "size"),
        ("get", "/log/proof/inclusion", {"params": {"leaf_hash": "zz"}}, 400, "leaf_hash"),
        ("get", "/log/proof/inclusion", {"params": {"leaf_hash": "00" * 32}}, 404, "leaf_hash"),
        ("get", "/log/proof/inclusion", {}, 400, "query"),
        ("get", "/log/proof/inclusion", {"params": {"index": "x"}}, 422, "query.index"),
        ("get", "/log/proof/inclusion", {"params": {"index": "+5"}}, 422, "query.index"),
        ("get", "/log/proof/inclusion", {"params": {"index": "\u0663"}}, 422, "query.index"),
        ("get", "/log/proof/inclusion", {"params": {"index": "9" * 40}}, 422, "query.index"),
        ("get", "/log/proof/inclusion", {"params": {"index": -1}}, 422, "query.index"),
        ("get", "/log/proof/consistency", {"params": {"size1": 0}}, 422, "query.size1"),
        ("get", "/log/proof/consistency", {}, 422, "query.size1"),
        ("get", "/log/proof/consistency", {"params": {"size1": 5, "size2": 3}}, 404, "size1"),
        ("get", "/log/entries", {"params": {"start": 10**6}}, 404, "start"),
        ("get", "/log/entries", {"params": {"start": 0, "end": 5000}}, 400, "end"),
        ("get", "/log/entries/99999999", {}, 404, "index"),
        ("get", "/log/receipt/99999999", {}, 404, "index"),
        ("get", "/tile/0/x000/001", {}, 400, "path"),
        ("get", "/tile/0/999", {}, 404, "path"),
        ("get", "/tile/9/000.p/300", {}, 400, "path"),
        ("get", "/tile/entries/900", {}, 404, "path"),
        ("post", "/log/entries", {"content": b"{not json"}, 400, "body"),
        ("post", "/log/entries", {"json": []}, 400, "entries"),
        ("post", "/log/entries", {"json": {"entries": [_entry(0)] * 1001}}, 400, "entries"),
        ("post", "/log/entries", {"json": {"type": "log.annotation/v1"}}, 400, "entry"),
        (
            "post",
            "/log/entries",
            {"json": [_entry(0), {**_entry(1), "time": "2026-11-22T12:00:00Z"}]},
            400,
            "entries[1].time",
        ),
        (
            "post",
            "/log/entries",
            {"json": [{**_entry(0), "type": "no.such/v1"}]},
            400,
            "entries[0].type",
        ),
        (
            "post",
            "/log/entries",
            {"json": [{**_entry(0), "body": {"text": ""}}]},
            400,
            "entries[0].body.text",
        ),
    ],
)
def test_bad_input_gets_a_4xx_json_error(
    client: httpx.Client,
    filled: tuple[SignedCheckpoint, list[bytes]],
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    where: str,
) -> None:
    size_before = client.get("/healthz").json()["log_size"]
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["where"] == where
    assert client.get("/healthz").json()["log_size"] == size_before  # nothing half-written


def _cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "custodes")
    return subprocess.run(
        [exe, *args],
        input=stdin and stdin.decode(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_cli_against_the_server(
    server: ServerProcess,
    signer: NoteSigner,
    filled: tuple[SignedCheckpoint, list[bytes]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    early, _ = filled
    vkey = signer.verifier.to_key()
    r = _cli("log", "prove", "--index", "5", "--receipt", "-", "--server", server.base_url)
    assert r.returncode == 0, r.stderr
    (tmp_path / "receipt.txt").write_text(r.stdout)
    r = _cli("log", "verify", "--key", vkey, "--receipt", str(tmp_path / "receipt.txt"))
    assert r.returncode == 0 and "OK: entry 5" in r.stdout, r.stderr
    (tmp_path / "old.txt").write_text(early.to_text())
    r = _cli(
        "log",
        "verify",
        "--key",
        vkey,
        "--old",
        str(tmp_path / "old.txt"),
        "--server",
        server.base_url,
    )
    assert r.returncode == 0 and f"extends size {early.checkpoint.size}" in r.stdout, r.stderr

    # A tampered receipt is refused with a diagnostic (checked in-process: CLI start-up is slow).
    from custodes.cli import main

    text = (tmp_path / "receipt.txt").read_text().replace("index 5", "index 6")
    (tmp_path / "bad.txt").write_text(text)
    code = main(["log", "verify", "--key", vkey, "--receipt", str(tmp_path / "bad.txt")])
    stderr = capsys.readouterr().err
    assert code == 1 and "does not verify" in stderr and "Traceback" not in stderr


def test_the_openapi_pages_describe_the_plain_log_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/log/entries"] and "get" in paths["/log/entries"]
    assert {p["name"] for p in paths["/log/proof/inclusion"]["get"]["parameters"]} == {
        "index",
        "leaf_hash",
        "size",
    }
    assert [
        p["name"] for p in paths["/log/proof/consistency"]["get"]["parameters"] if p["required"]
    ] == ["size1"]
    assert "get" in paths["/checkpoint"] and "get" in paths["/tile/{level}/{rest}"]


def test_verify_and_show_need_only_the_public_key_the_server_serves(
    server: ServerProcess,
    client: httpx.Client,
    signer: NoteSigner,
    filled: tuple[SignedCheckpoint, list[bytes]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from custodes.cli import main

    r = client.get("/log/key")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == signer.verifier.to_key() + "\n"
    # An auditor's machine: the server's database, but no private key anywhere near it.
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    db = f"sqlite:///{server.data_dir / 'custodes.db'}"  # type: ignore[attr-defined]
    base = ["--data-dir", str(auditor), "--database-url", db, "log"]
    assert main([*base, "verify", "-q", "--key", r.text.strip()]) == 0
    assert "OK: " in capsys.readouterr().out
    assert main([*base, "verify", "-q", "--server", server.base_url]) == 0
    out = capsys.readouterr()
    assert "OK: " in out.out and "pin it with --key" in out.err
    assert main([*base, "verify", "-q"]) == 1
    err = capsys.readouterr().err
    assert "verifier (public) key is needed" in err and "/log/key" in err
    assert "keygen" not in err  # a new key would start a new, empty log
    assert main([*base, "show"]) == 0
    shown = capsys.readouterr().out
    assert SignedCheckpoint.from_text(shown, signer.verifier).checkpoint.size > 0
    assert main([*base, "show", "--index", "3"]) == 0
    assert '"index": 3' in capsys.readouterr().out
    assert list(auditor.iterdir()) == []  # nothing written: no key, no database


def test_verify_and_show_say_there_is_no_log_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signer: NoteSigner
) -> None:
    from custodes.cli import main

    missing = tmp_path / "nowhere"
    vkey = signer.verifier.to_key()
    assert main(["--data-dir", str(missing), "log", "verify", "--key", vkey]) == 1
    err = capsys.readouterr().err
    assert "no log here" in err and "does not exist" in err and "Traceback" not in err
    assert main(["--data-dir", str(missing), "log", "show"]) == 1
    assert "no log here" in capsys.readouterr().err
    assert not missing.exists()
    # An existing database of something else: no log tables, and none are created.
    import sqlite3

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    url = f"sqlite:///{other}"
    assert main(["--database-url", url, "log", "verify", "--key", vkey]) == 1
    assert "has no log tables" in capsys.readouterr().err
    tables = sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("t",)]
