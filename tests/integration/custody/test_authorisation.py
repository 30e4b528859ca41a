"""Need-to-know over HTTP, on a real server with the demo constitution: a partner's key cannot
list, read or change another organisation's embargoed finding on any route; an unknown
principal is refused (over HTTP and as ``--as`` on the CLI); every refusal is in the log."""

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
    "vendor": "Operating System Vendor",  # the demo's osvendor, by name
    "product": "libpng",
    "purl": "pkg:pypi/libpng",
    "versions": ["< 1.6.44"],
    "cwe": "CWE-787",
    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
    "finder": "alice@lab",
    "model": "frontier-cyber",
    "session": "sess-7",
    "policy": "project-zero",
    "details_base64": base64.b64encode(b"PoC").decode(),
}
PRINCIPALS = [
    "alice@lab",
    "dana@asi",
    "frank@cyberdef",
    "vera@osvendor",
    "nick@netvendor",
    "eve@invented",  # a key for a name the constitution does not (or no longer) names
]

Server = tuple[ServerProcess, dict[str, str], Path]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("custody-authz")
    with demo_server_with_keys(data, PRINCIPALS) as (srv, keys):
        yield srv, keys, data


def denials(srv: ServerProcess, since: int) -> list[dict[str, Any]]:
    r = call(srv, None, "GET", f"/log/entries?start={since}&end={since + 1000}")
    if r.status_code == 404:
        return []
    return [
        {"actor": e["entry"]["principal"], **e["entry"]["body"]}
        for e in r.json()["entries"]
        if e["entry"]["type"] == "custody.denied/v1"
    ]


def log_size(srv: ServerProcess) -> int:
    size = 0
    while True:
        r = call(srv, None, "GET", f"/log/entries?start={size}&end={size + 1000}")
        if r.status_code == 404:
            return size
        got = r.json()["entries"]
        size += len(got)
        if len(got) < 1000:
            return size


def register(srv: ServerProcess, keys: dict[str, str], **change: Any) -> str:
    r = call(srv, keys["alice@lab"], "POST", "/custody/findings", {**FINDING, **change})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_partner_cannot_list_read_or_change_another_organisations_finding(
    server: Server,
) -> None:
    srv, keys, _ = server
    fid = register(srv, keys, fingerprint="crash:partner-test")
    frank = keys["frank@cyberdef"]
    before = log_size(srv)
    listed = call(srv, frank, "GET", "/custody/findings")
    assert listed.status_code == 200 and fid not in listed.text
    assert listed.json()["embargoed"] == []  # the demo does not show that findings exist
    routes: list[tuple[str, str, str, Any, int]] = [
        ("read", "GET", f"/custody/findings/{fid}", None, 404),
        ("export", "GET", f"/custody/findings/{fid}/export/osv", None, 404),
        ("export", "GET", f"/custody/findings/{fid}/export/csaf", None, 404),
        ("notify", "POST", f"/custody/findings/{fid}/events", {"event": "vendor-notified"}, 404),
        ("event", "POST", f"/custody/findings/{fid}/events", {"event": "fix-ready"}, 404),
        (
            "transition",
            "POST",
            f"/custody/findings/{fid}/transitions",
            {"machine": "em", "to": "proposed"},
            404,
        ),
        ("escrow-read", "POST", f"/custody/findings/{fid}/read", {"purpose": "x"}, 403),
        ("reveal", "POST", f"/custody/findings/{fid}/reveal", {"early": True}, 404),
    ]
    for _, method, path, body, status in routes:
        r = call(srv, frank, method, path, body)
        assert r.status_code == status, (path, r.text)
        assert "libpng" not in r.text and "png_read_row" not in r.text
    got = denials(srv, before)
    assert [(d["action"], d["finding_id"], d["principal"], d["actor"]) for d in got] == [
        (action, fid, "frank@cyberdef", "frank@cyberdef") for action, *_ in routes
    ]
    # A hidden finding and a missing one answer alike.
    missing = call(srv, frank, "GET", "/custody/findings/CUSTODES-2026-9999").json()["error"]
    hidden = call(srv, frank, "GET", f"/custody/findings/{fid}").json()["error"]
    assert missing["message"].replace("CUSTODES-2026-9999", fid) == hidden["message"]
    # Nothing changed: alice's record shows only its registration.
    shown = call(srv, keys["alice@lab"], "GET", f"/custody/findings/{fid}").json()
    assert shown["events"] == [] and shown["em_state"] == "none"
    # Nor does the public log tell anyone what the embargoed finding is: its registration holds
    # a commitment to the case record, which alice's record (and its salt) opens.
    public = call(srv, None, "GET", f"/log/entries?start=0&end={log_size(srv)}").text
    for secret in ("libpng", "png_read_row", "Operating System Vendor", "CVSS:3.1", "sess-7"):
        assert secret not in public, secret
    from custodes.custody import record_bytes, verify_commitment

    (entry,) = [
        e["entry"]
        for e in call(srv, None, "GET", f"/log/entries?start=0&end={log_size(srv)}").json()[
            "entries"
        ]
        if e["entry"]["type"] == "custody.finding.register/v2"
        and e["entry"]["body"]["finding_id"] == fid
    ]
    record = {**shown, "cvss_vector": shown["cvss"]["vector"], "purl": shown["purl"] or ""}
    assert shown["record_commitment"] == entry["body"]["record_commitment"]
    assert verify_commitment(
        entry["body"]["record_commitment"], shown["record_salt"], record_bytes(record)
    )


def test_overseers_and_the_notified_vendor_see_the_record_other_vendors_do_not(
    server: Server,
) -> None:
    srv, keys, _ = server
    fid = register(srv, keys, fingerprint="crash:vendor-test")
    path = f"/custody/findings/{fid}"
    assert call(srv, keys["dana@asi"], "GET", path).status_code == 200
    assert call(srv, keys["vera@osvendor"], "GET", path).status_code == 404  # not yet told
    r = call(srv, keys["alice@lab"], "POST", f"{path}/events", {"event": "vendor-notified"})
    assert r.status_code == 200, r.text
    assert call(srv, keys["vera@osvendor"], "GET", path).status_code == 200
    r = call(srv, keys["vera@osvendor"], "POST", f"{path}/events", {"event": "fix-ready"})
    assert r.status_code == 200 and "fix-ready" in r.json()["flags"]
    # The vendor may not grant itself more time, nor triage as the coordinator.
    before = log_size(srv)
    r = call(srv, keys["vera@osvendor"], "POST", f"{path}/events", {"event": "grace-granted"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "policy_denied"
    r = call(srv, keys["dana@asi"], "POST", f"{path}/transitions", {"machine": "rm", "to": "valid"})
    assert r.status_code == 403
    assert [(d["action"], d["principal"]) for d in denials(srv, before)] == [
        ("event", "vera@osvendor"),
        ("transition", "dana@asi"),
    ]
    assert call(srv, keys["nick@netvendor"], "GET", path).status_code == 404
    assert fid not in call(srv, keys["nick@netvendor"], "GET", "/custody/findings").text
    assert fid in call(srv, keys["vera@osvendor"], "GET", "/custody/findings").text


def test_an_unknown_principal_is_refused_and_logged(server: Server) -> None:
    srv, keys, _ = server
    fid = register(srv, keys, fingerprint="crash:unknown-test")
    eve = keys["eve@invented"]
    before = log_size(srv)
    for method, path, body in [
        ("POST", "/custody/findings", {**FINDING, "finder": "eve@invented"}),
        ("GET", "/custody/findings", None),
        ("GET", f"/custody/findings/{fid}", None),
        ("POST", f"/custody/findings/{fid}/transitions", {"machine": "rm", "to": "valid"}),
        ("GET", "/custody/alarms", None),
    ]:
        r = call(srv, eve, method, path, body)
        assert r.status_code == 403, (path, r.text)
        assert "'eve@invented' is not a principal of constitution" in r.json()["error"]["message"]
    got = denials(srv, before)
    assert [(d["action"], d["principal"], d["known"], d["actor"]) for d in got] == [
        (a, "eve@invented", False, "custodes")
        for a in ("register", "list", "read", "transition", "alarms")
    ]
    # An invented finder, registered by a real principal, is refused too.
    r = call(srv, keys["alice@lab"], "POST", "/custody/findings", {**FINDING, "finder": "zz@lab"})
    assert r.status_code == 403 and "finder 'zz@lab' is not a principal" in r.text


def test_unknown_cli_principal_is_refused_and_logged(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, keys, data = server
    fid = register(srv, keys, fingerprint="crash:cli-test")
    monkeypatch.setenv("CUSTODES_DEMO", "true")
    d = ["--data-dir", str(data)]
    before = log_size(srv)
    for args in (
        ["findings", "show", fid, "--as", "mallory@invented"],
        ["findings", "notify", fid, "--as", "mallory@invented"],
        ["findings", "transition", fid, "--rm", "valid", "--as", "mallory@invented"],
    ):
        code, _, err = run_cli([*d, *args], capsys)
        assert code == 1 and "'mallory@invented' is not a principal" in err, err
        assert "Traceback" not in err
    # A real principal without a part in the case is refused as well, and told nothing.
    code, out, err = run_cli([*d, "findings", "show", fid, "--as", "frank@cyberdef"], capsys)
    assert code == 1 and "libpng" not in out + err
    got = denials(srv, before)
    assert [(d["action"], d["principal"], d["known"]) for d in got] == [
        ("read", "mallory@invented", False),
        ("notify", "mallory@invented", False),
        ("transition", "mallory@invented", False),
        ("read", "frank@cyberdef", True),
    ]
    code, out, _ = run_cli([*d, "findings", "show", fid, "--as", "dana@asi", "--json"], capsys)
    assert code == 0 and json.loads(out)["events"] == []
