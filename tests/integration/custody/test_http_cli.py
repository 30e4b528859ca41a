"""The custody API on a real server (uvicorn on loopback) and the CLI, with bad input."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.demo_api import call, demo_server_with_keys, run_cli
from tests.support.server import ServerProcess

FINDING: dict[str, Any] = {
    "title": "Heap overflow in png_read_row",
    "vendor": "Operating System Vendor",
    "product": "libpng",
    "purl": "pkg:pypi/libpng",
    "versions": ["< 1.6.44"],
    "cwe": "CWE-787",
    "cvss": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    "finder": "alice@lab",
    "model": "frontier-cyber",
    "session": "sess-9",
    "policy": "frontier-lab",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with demo_server_with_keys(tmp_path_factory.mktemp("custody-server"), ["alice@lab"]) as (
        srv,
        keys,
    ):
        yield srv, keys["alice@lab"]


def test_findings_over_http(server: tuple[ServerProcess, str]) -> None:
    srv, key = server
    body = {**FINDING, "details_base64": base64.b64encode(b"PoC").decode()}
    r = call(srv, key, "POST", "/custody/findings", body)
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["id"].startswith("CUSTODES-") and f["cvss"]["score"] == 9.3
    assert f["registered_by"] == "alice@lab" and f["clock"] is None
    fid = f["id"]
    r = call(srv, key, "POST", f"/custody/findings/{fid}/events", {"event": "vendor-notified"})
    assert r.status_code == 200 and r.json()["clock"]["policy"] == "frontier-lab"
    r = call(
        srv, key, "POST", f"/custody/findings/{fid}/transitions", {"machine": "rm", "to": "valid"}
    )
    assert r.json()["rm_state"] == "valid"
    r = call(
        srv,
        key,
        "POST",
        f"/custody/findings/{fid}/transitions",
        {"machine": "rm", "to": "received"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    for fmt in ("osv", "csaf", "cve"):
        r = call(srv, key, "GET", f"/custody/findings/{fid}/export/{fmt}")
        assert r.status_code == 200, (fmt, r.text)
    assert call(srv, key, "GET", f"/custody/findings/{fid}/export/osv").json()["id"] == f"x_{fid}"
    # alice holds no grant of exploit-details in the demo constitution.
    r = call(srv, key, "POST", f"/custody/findings/{fid}/read", {"purpose": "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "policy_denied"
    assert call(srv, key, "GET", "/custody/alarms").status_code == 200
    assert [x["id"] for x in call(srv, key, "GET", "/custody/findings").json()["findings"]] == [fid]


@pytest.mark.parametrize(
    "change,status,where",
    [
        ({"cvss": "CVSS:3.1/AV:N/AC:L"}, 400, "cvss"),
        ({"policy": "project-one"}, 404, "policy"),
        ({"details_base64": "***"}, 400, "details_base64"),
    ],
)
def test_bad_input_gets_a_clear_error(
    server: tuple[ServerProcess, str], change: dict[str, Any], status: int, where: str
) -> None:
    srv, key = server
    body = {**FINDING, "details_base64": base64.b64encode(b"PoC").decode(), **change}
    r = call(srv, key, "POST", "/custody/findings", body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["where"] == where


def test_malformed_requests(server: tuple[ServerProcess, str]) -> None:
    srv, key = server
    assert call(srv, None, "GET", "/custody/findings").status_code == 401
    assert call(srv, "cus_wrong", "GET", "/custody/findings").status_code == 401
    r = call(srv, key, "GET", "/custody/findings/CUSTODES-2026-0001/export/stix")
    assert r.status_code in (400, 404) and r.json()["error"]["where"] in ("format", "finding_id")
    r = call(srv, key, "POST", "/custody/findings", {"title": "only a title"})
    assert r.status_code == 422 and "error" in r.json()
    assert call(srv, key, "GET", "/custody/findings/CUSTODES-1999-0001").status_code == 404


def test_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command line works on the demo's data folder, as the docs say: the demo server
    # created the database and the escrow key there.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with demo_server_with_keys(tmp_path / "data", []):
        assert (tmp_path / "data" / "custody.kek").is_file()
        _cli_steps(tmp_path, capsys)


def test_cli_refuses_to_start_a_stray_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUSTODES_DATA_DIR", raising=False)
    monkeypatch.delenv("CUSTODES_DATABASE_URL", raising=False)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = run_cli(["findings", "list", "--as", "alice@lab"], capsys)
    assert code == 1 and "no custodes database at" in err and ".custodes/demo" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def _cli_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path / "data")]
    spec = tmp_path / "finding.json"
    spec.write_text(
        json.dumps(
            {
                **FINDING,
                "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                "policy": "project-zero",
            }
        )
    )
    poc = tmp_path / "poc.bin"
    poc.write_bytes(b"\x00PoC\xff")
    code, out, err = run_cli(
        [
            *d,
            "findings",
            "register",
            "--file",
            str(spec),
            "--details",
            str(poc),
            "--as",
            "alice@lab",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    fid = json.loads(out)["id"]
    assert run_cli([*d, "findings", "notify", fid, "--as", "alice@lab"], capsys)[0] == 0
    code, out, _ = run_cli(
        [*d, "findings", "transition", fid, "--event", "attacks-observed", "--as", "dana@asi"],
        capsys,
    )
    assert code == 0 and "attacks-observed" in out
    code, out, _ = run_cli([*d, "clock", fid, "--as", "alice@lab", "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["clock"]["in_the_wild"] is True
    code, _, err = run_cli(
        [*d, "findings", "transition", fid, "--rm", "closed", "--as", "bob@lab"], capsys
    )
    assert code == 1 and "does not allow received -> closed" in err
    code, _, err = run_cli(
        [*d, "findings", "transition", fid, "--rm", "valid", "--as", "x@invented"], capsys
    )
    assert code == 1 and "'x@invented' is not a principal" in err and "Traceback" not in err
    code, _, err = run_cli([*d, "findings", "read", fid, "--as", "alice@lab"], capsys)
    assert code == 1 and "exploit-details" in err and "Traceback" not in err
    code, _, err = run_cli([*d, "findings", "reveal", fid, "--as", "alice@lab"], capsys)
    assert code == 1 and "cannot be revealed yet" in err
    code, out, _ = run_cli(
        [*d, "findings", "export", fid, "--format", "csaf", "--as", "alice@lab"], capsys
    )
    assert code == 0 and json.loads(out)["document"]["tracking"]["id"] == fid
    code, out, _ = run_cli([*d, "findings", "list", "--as", "alice@lab", "--json"], capsys)
    assert [f["id"] for f in json.loads(out)] == [fid]
    code, out, _ = run_cli([*d, "alarms", "--as", "dana@asi", "--json"], capsys)
    assert code == 0 and json.loads(out) == []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**FINDING, "cvss": "CVSS:3.1/AV:N"}))
    code, _, err = run_cli(
        [
            *d,
            "findings",
            "register",
            "--file",
            str(bad),
            "--details",
            str(poc),
            "--as",
            "alice@lab",
        ],
        capsys,
    )
    assert code == 1 and "cvss: invalid CVSS vector" in err
