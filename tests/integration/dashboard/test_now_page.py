"""The "Now" page over HTTP on a real server: sign-in (API key, CSRF), what each viewer sees,
a request becoming a grant through CLI approvals, sessions ending."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx
import markupsafe

from tests.integration.dashboard.conftest import SESSION_HOURS, CliResult
from tests.support.server import ServerProcess

Cli = Callable[..., CliResult]


def _request(cli: Cli, key: str, purpose: str) -> str:
    made = cli(
        "request",
        "cyber-frontier",
        "--key",
        key,
        "--purpose",
        purpose,
        "--duration",
        "4h",
        "--json",
    )
    record = json.loads(made.stdout)
    assert record["status"] == "pending"
    return str(record["id"])


def test_signed_out_visitors_are_sent_to_the_sign_in_form(server: ServerProcess) -> None:
    answer = httpx.get(server.url("/dashboard/"))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/sign-in"
    assert httpx.get(server.url("/dashboard/now/live")).status_code == 401
    form = httpx.get(server.url("/dashboard/sign-in"))
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert '<label for="api_key">API key</label>' in form.text
    assert "custodes_signin_csrf" in form.headers["set-cookie"]
    assert "samesite=strict" in form.headers["set-cookie"].lower()


def test_sign_in_needs_the_forms_csrf_token_and_a_live_key(
    server: ServerProcess, api_key: Callable[[str], str]
) -> None:
    key = api_key("dana@asi")
    # A cross-site form post has no token matching the cookie: refused, no session.
    forged = httpx.post(server.url("/dashboard/sign-in"), data={"api_key": key, "csrf": "x"})
    assert forged.status_code == 403 and "did not come from this page" in forged.text
    assert "custodes_session" not in forged.headers.get("set-cookie", "")
    with httpx.Client(base_url=server.base_url) as client:
        page = client.get("/dashboard/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        wrong = client.post(
            "/dashboard/sign-in", data={"csrf": csrf.group(1), "api_key": "cust_" + "0" * 40}
        )
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
        malformed = client.post(
            "/dashboard/sign-in",
            content=b"x" * 5000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert malformed.status_code == 400 and "over 4 KiB" in malformed.text


def test_a_session_lasts_as_long_as_the_setting_says(
    server: ServerProcess, api_key: Callable[[str], str]
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        page = client.get("/dashboard/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        signed = client.post(
            "/dashboard/sign-in", data={"csrf": csrf.group(1), "api_key": api_key("erin@auditor")}
        )
        assert signed.status_code == 303
        cookie = next(
            c for c in signed.headers.get_list("set-cookie") if c.startswith("custodes_session=")
        )
        expires = re.search(r"expires=([^;]+)", cookie, re.I)
        assert expires, cookie
        # Against the server's own Date header (whole seconds), not this machine's clock.
        lasts = parsedate_to_datetime(expires.group(1)) - parsedate_to_datetime(
            signed.headers["date"]
        )
        assert abs(lasts - timedelta(hours=SESSION_HOURS)) <= timedelta(seconds=2), lasts


def test_a_request_appears_then_becomes_a_grant_after_cli_approvals(
    server: ServerProcess,
    api_key: Callable[[str], str],
    cli: Cli,
    sign_in: Callable[[str], httpx.Client],
) -> None:
    overseer = sign_in(api_key("dana@asi"))
    partner = sign_in(api_key("frank@cyberdef"))
    requester = sign_in(api_key("alice@lab"))
    page = overseer.get("/dashboard/")
    assert page.status_code == 200 and "<h1>Now</h1>" in page.text
    assert "Signed in as <strong>dana@asi</strong>" in page.text

    request_id = _request(cli, "examples/keys/alice.key", "triage a kernel driver 0-day")
    live = overseer.get("/dashboard/now/live").text
    row = re.search(rf'<tr data-request="{request_id}">(.*?)</tr>', live, re.S)
    assert row, live
    assert "alice@lab" in row.group(1) and "nobody yet" in row.group(1)
    assert "triage a kernel driver 0-day" in row.group(1)
    assert "cyber-frontier" in row.group(1)
    # The requester's organisation sees it; a partner organisation does not.
    assert request_id in requester.get("/dashboard/now/live").text
    assert request_id not in partner.get("/dashboard/now/live").text

    cli("approve", request_id, "--key", "examples/keys/dana.key", "--yes")
    row = re.search(
        rf'<tr data-request="{request_id}">(.*?)</tr>',
        overseer.get("/dashboard/now/live").text,
        re.S,
    )
    assert row and "dana@asi (asi)" in row.group(1)
    assert "no approval yet" not in row.group(1)  # the approval's lapse time is shown

    cli("approve", request_id, "--key", "examples/keys/erin.key", "--yes")
    live = overseer.get("/dashboard/now/live").text
    assert f'<tr data-request="{request_id}">' not in live
    grant = re.search(rf'<tr data-grant="[^"]+" data-request="{request_id}">(.*?)</tr>', live, re.S)
    assert grant, live
    assert "dana@asi (asi)" in grant.group(1) and "erin@auditor (auditor)" in grant.group(1)
    assert re.search(r"[34]h \d\dm", grant.group(1))  # about four hours left
    # The grant links to the entries naming it and to those naming its request, which list
    # the request, both approvals and the grant itself.
    assert f'href="/dashboard/log?about={request_id}"' in grant.group(1)
    about = overseer.get(f"/dashboard/log?about={request_id}").text
    types = re.findall(r'<td class="nowrap"><code>([^<]+)</code>', about)
    assert types.count("authority.approval/v1") == 2 and "authority.request/v1" in types
    assert any(t.startswith("authority.grant") for t in types), types
    assert request_id not in partner.get("/dashboard/now/live").text


def test_sign_out_needs_its_token_and_ends_the_session(
    server: ServerProcess,
    api_key: Callable[[str], str],
    cli: Cli,
    sign_in: Callable[[str], httpx.Client],
) -> None:
    client = sign_in(api_key("erin@auditor"))
    page = client.get("/dashboard/").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    assert client.post("/dashboard/sign-out", data={"csrf": "forged"}).status_code == 403
    assert client.get("/dashboard/").status_code == 200
    assert client.post("/dashboard/sign-out", data={"csrf": csrf.group(1)}).status_code == 303
    assert client.get("/dashboard/").status_code == 303

    # Revoking the key ends every session opened with it.
    out = json.loads(cli("keys", "create", "grace@bankcert", "--json", remote=False).stdout)
    revoked = sign_in(out["key"])
    assert revoked.get("/dashboard/").status_code == 200
    cli("keys", "revoke", out["key_id"], remote=False)
    import time

    # The gateway's key cache polls for revocations (gateway_key_poll_ms): wait for it, within a
    # deadline generous for a loaded machine.
    deadline = time.monotonic() + 30
    while revoked.get("/dashboard/now/live").status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still signs in after 30 s"
        time.sleep(0.1)
    assert revoked.get("/dashboard/").status_code == 303


def test_the_front_page_links_the_dashboard(server: ServerProcess) -> None:
    assert httpx.get(server.url("/")).json()["dashboard"] == "/dashboard/"
    page = httpx.get(server.url("/"), headers={"accept": "text/html"}).text
    assert '<a href="/dashboard/">/dashboard/</a>' in page


def test_the_coalition_page_shows_every_goal_of_the_analysis(
    server: ServerProcess,
    api_key: Callable[[str], str],
    sign_in: Callable[[str], httpx.Client],
) -> None:
    analysis = httpx.get(server.url("/coalition"), timeout=60).json()
    page = sign_in(api_key("frank@cyberdef")).get("/dashboard/coalition", timeout=60)
    assert page.status_code == 200
    for goal in analysis["goals"]:
        row = re.search(
            rf'<tr data-goal="{re.escape(goal["goal"])}"[^>]*>(.*?)</tr>', page.text, re.S
        )
        assert row, goal["goal"]
        for spof in goal["single_points_of_failure"]:
            assert spof in row.group(1)
    assert '<img id="coalition-picture" src="/coalition/picture.svg"' in page.text
    assert analysis["findings"] and all(
        str(markupsafe.escape(f)) in page.text for f in analysis["findings"]
    )
