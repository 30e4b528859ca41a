"""The examples/README.md walk-through, step for step: a real server (uvicorn, its own process)
on the demo constitution, driven only through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from custodes.authority import SigningKey, decode_signature, request_message, verify_signature
from custodes.cli import main
from custodes.config import Settings
from tests.support.server import ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[3]
CUSTODES = Path(sys.executable).parent / "custodes"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("demo")
    settings = Settings(
        data_dir=data, demo=True, constitution_file=ROOT / "examples" / "constitution.yaml"
    )
    with running_server(settings, log_path=data / "server.log") as s:
        yield s


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run(
    server: ServerProcess, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run a CLI command against the server: in this process (the same code as the installed
    ``custodes`` script, without paying its start-up per command)."""
    monkeypatch.chdir(ROOT)

    def invoke(*args: str, ok: bool = True, offline: bool = False) -> Result:
        capsys.readouterr()
        code = main([*args] if offline else [*args, "--server", server.base_url])
        out = capsys.readouterr()
        result = Result(code, out.out, out.err)
        if ok:
            assert code == 0, out.err + out.out
        return result

    return invoke


def run_process(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``custodes`` script in a process of its own."""
    result = subprocess.run(
        [str(CUSTODES), *args, "--server", server.base_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_request_two_approvals_from_two_organisations_grant(
    server: ServerProcess, run: Callable[..., Result]
) -> None:
    checked = run("constitution", "check", "examples/constitution.yaml", offline=True)
    assert "ok" in checked.stdout

    # 1. alice (the lab) asks for the restricted cyber model, signing with her own key.
    made = run_process(
        server,
        "request",
        "cyber-frontier",
        "--key",
        "examples/keys/alice.key",
        "--purpose",
        "triage a suspected 0-day in a kernel driver",
        "--duration",
        "4h",
        "--json",
    )
    record = json.loads(made.stdout)
    assert record["status"] == "pending" and record["requester"] == "alice@lab"
    request_id = record["id"]

    # Not yet: the gateway's question is answered no, with what is missing.
    denied = run("authorize", "alice@lab", "cyber-frontier", ok=False)
    assert denied.returncode == 1 and "needs 2 approvals from 2 organisations" in denied.stderr

    # 2. dana of the AI Security Institute approves: she sees the request and what it needs.
    first = run("approve", request_id, "--key", "examples/keys/dana.key", "--yes")
    assert "You are dana@asi" in first.stdout
    assert "needs approvals from 1 more organisation" in first.stdout

    # 3. erin of the independent auditor approves: two organisations, one an overseer.
    second = run("approve", request_id, "--key", "examples/keys/erin.key", "--yes")
    assert "granted" in second.stdout

    grants = json.loads(run("grants", "--active", "--json").stdout)
    [grant] = [g for g in grants if g["request_id"] == request_id]
    assert {a["organisation"] for a in grant["approvals"]} == {"asi", "auditor"}
    allowed = run("authorize", "alice@lab", "cyber-frontier")
    assert f"grant {grant['id']}" in allowed.stdout

    # The server never saw a private key: only signatures, all of them in the log.
    entries = httpx.get(server.url("/log/entries"), params={"start": 0, "end": 10}).json()
    text = json.dumps(entries)
    assert "PRIVATE KEY" not in text

    # 4. an overseer revokes: it stops at once.
    run("revoke", grant["id"], "--key", "examples/keys/dana.key", "--reason", "done")
    after = run("authorize", "alice@lab", "cyber-frontier", ok=False)
    assert after.returncode == 1 and "revoked" in after.stderr


def test_bad_input_gets_a_clear_error_not_a_500(server: ServerProcess) -> None:
    r = httpx.post(
        server.url("/authority/requests"), json={"request": {"kind": "grant"}, "signature": "x"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["where"] == "request.constitution_version"
    r = httpx.post(
        server.url("/authority/requests/nope/approvals"),
        json={"approver": "dana@asi", "signature": "AAAA"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.post(
        server.url("/constitution/proposals"),
        json={"document": "version: [", "request": {}, "signature": "x"},
    )
    assert r.status_code == 400
    r = httpx.get(server.url("/constitution/schema"))
    assert r.status_code == 200 and r.json()["title"] == "custodes constitution"
    r = httpx.get(
        server.url("/authority/authorize"),
        params={"principal": "ivan@greyhat", "capability": "cyber-frontier"},
    )
    assert r.status_code == 403
    assert "not admitted" in r.json()["error"]["reasons"][0]["missing"]


def test_a_requester_withdraws_their_pending_request(
    server: ServerProcess, run: Callable[..., Result]
) -> None:
    made = run(
        "request",
        "cyber-frontier",
        "--key",
        "examples/keys/alice.key",
        "--purpose",
        "look at a crash dump",
        "--duration",
        "1h",
        "--json",
    )
    request_id = json.loads(made.stdout)["id"]
    # Nobody but the requester: an overseer declines by not approving, not by withdrawing.
    refused = run(
        "withdraw", request_id, "--key", "examples/keys/dana.key", "--reason", "no", ok=False
    )
    assert refused.returncode != 0
    assert "only its requester withdraws it" in refused.stderr
    done = run("withdraw", request_id, "--key", "examples/keys/alice.key", "--reason", "not needed")
    assert "withdrawn" in done.stdout
    late = run("approve", request_id, "--key", "examples/keys/dana.key", "--yes", ok=False)
    assert late.returncode != 0
    shown = httpx.get(server.url(f"/authority/requests/{request_id}")).json()
    assert shown["status"] == "withdrawn"
    size = httpx.get(server.url("/log/entries"), params={"start": 0, "end": 1000}).json()
    [entry] = [
        e["entry"]
        for e in size["entries"]
        if e["entry"]["type"] == "authority.withdrawal/v1"
        and e["entry"]["body"]["request_id"] == request_id
    ]
    assert entry["principal"] == "alice@lab" and entry["body"]["reason"] == "not needed"
    again = httpx.post(
        server.url("/authority/withdrawals"), json={"request": {"kind": "x"}, "signature": "x"}
    )
    assert again.status_code == 400 and again.json()["error"]["where"] == "request.kind"


def test_break_glass_from_the_cli_is_signed_by_the_incident_commander(
    server: ServerProcess, run: Callable[..., Result]
) -> None:
    def break_glass(who: str, *more: str, ok: bool = False) -> Result:
        return run(
            "break-glass",
            "weights-export",
            "--rule",
            "lab-incident-weights",
            "--statement",
            "serving cluster compromised",
            "--key",
            f"examples/keys/{who}.key",
            *more,
            ok=ok,
        )

    # alice holds no incident-commander role: the rule does not admit her, nothing is granted.
    refused = break_glass("alice")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "alice@lab may not break glass under lab-incident-weights" in refused.stderr
    # A duration past the rule's max_duration (2h) is refused too.
    too_long = break_glass("carol", "--duration", "3h")
    assert too_long.returncode != 0 and "Traceback" not in too_long.stderr
    assert "longer than the break-glass rule allows" in too_long.stderr
    taken = break_glass("carol", "--duration", "20m", "--json", ok=True)
    grant = json.loads(taken.stdout)
    assert grant["principal"] == "carol@lab" and grant["break_glass"] is True
    assert grant["capability"] == "weights-export" and grant["rule"] == "lab-incident-weights"
    # The log's entry carries what was typed here, signed by carol over the request's digest.
    entries = httpx.get(server.url("/log/entries"), params={"start": 0, "end": 1000}).json()
    [made] = [
        e["entry"]["body"]
        for e in entries["entries"]
        if e["entry"]["type"] == "authority.break_glass/v1"
        and e["entry"]["body"]["grant_id"] == grant["id"]
    ]
    assert made["principal"] == "carol@lab" and made["rule"] == "lab-incident-weights"
    assert made["statement"] == "serving cluster compromised"
    lasts = datetime.fromisoformat(made["expires_at"]) - datetime.fromisoformat(made["granted_at"])
    assert lasts == timedelta(minutes=20)
    carol = SigningKey.from_file(ROOT / "examples" / "keys" / "carol.key")
    signature = decode_signature(made["signature"])
    assert verify_signature(carol.public_bytes, request_message(made["digest"]), signature)
