"""The monitors and custody pages on a real server: a detection reaches the review queue of
reviewers outside the actor's organisation only, the chart counts it, a finding's disclosure
clock is drawn as a timeline, exports download for those who may see the case and are refused
(and logged) for others, and bad parameters get a page saying what was expected."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from tests.support.server import ServerProcess

# An AddressSanitizer report and a claim of a PoC: what the vulnerability-discovery detector
# flags (the same shape as the custody end-to-end test's transcript).
DISCOVERY = (
    "==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000011 at "
    "pc 0x4f5a1b bp 0x7ffd sp 0x7ffd\nREAD of size 4 at 0x602000000011 thread T0\n"
    "    #0 0x4f5a1a in png_read_row /src/libpng/pngread.c:512:9\n"
    "    #1 0x4f3b2c in main /src/fuzz.c:20:5\n"
    "I found a heap overflow in png_read_row; here is the PoC input that triggers it."
)
FINDING = {
    "title": "Heap overflow in png_read_row <script>alert(1)</script>",
    "vendor": "Operating System Vendor",
    "product": "libpng",
    "purl": "pkg:pypi/libpng",
    "versions": ["< 1.6.44"],
    "cwe": "CWE-787",
    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
    "finder": "alice@lab",
    "model": "frontier-cyber",
    "session": "sess-19",
    "policy": "project-zero",
}


def _api(server: ServerProcess, key: str, method: str, path: str, body: object = None) -> dict:  # type: ignore[type-arg]
    answer = httpx.request(
        method,
        server.url(path),
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text
    result: dict = answer.json()  # type: ignore[type-arg]
    return result


def _rows(page: str, table: str) -> list[str]:
    found = re.search(rf'<table id="{table}">(.*?)</table>', page, re.S)
    return re.findall(r'<tr data-detection="([^"]+)"', found.group(1)) if found else []


def test_the_review_queue_is_the_reviewers_own_and_the_chart_counts_it(
    server: ServerProcess, api_key: Callable[[str], str], sign_in: Callable[[str], httpx.Client]
) -> None:
    made = _api(
        server,
        api_key("alice@lab"),
        "POST",
        "/monitors/screen",
        {"text": DISCOVERY, "source": "session-19"},
    )
    [detection] = [d for d in made["detections"] if d["category"] == "vuln_discovery"]
    det = detection["id"]
    assert "frank@cyberdef" in detection["reviewers"]

    reviewer = sign_in(api_key("frank@cyberdef")).get("/dashboard/monitors")
    assert reviewer.status_code == 200
    assert det in _rows(reviewer.text, "mine")
    assert 'id="all-open"' not in reviewer.text  # only overseers see every open detection
    # The actor's own organisation never reviews it: not in any queue of theirs.
    lab = sign_in(api_key("bob@lab")).get("/dashboard/monitors").text
    assert det not in lab and "Nothing is waiting for your review." in lab
    overseer = sign_in(api_key("dana@asi")).get("/dashboard/monitors").text
    assert det in _rows(overseer, "all-open") and det in _rows(overseer, "mine")

    # Today's bar counts it, in the table that is the chart's text alternative.
    today = datetime.now(UTC).date().isoformat()
    header = re.search(r'<table id="per-day">.*?<thead><tr>(.*?)</tr>', overseer, re.S)
    assert header is not None
    columns = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in header.group(1).split("</th>")]
    row = re.search(rf'<tr data-day="{today}">(.*?)</tr>', overseer, re.S)
    assert row is not None, overseer
    cells = [re.sub(r"<[^>]+>", "", c) for c in row.group(1).split("</td>")]
    assert int(cells[columns.index("vuln_discovery")]) >= 1
    assert '<svg id="detections-chart"' in overseer and "<rect " in overseer
    assert len(re.findall(r"<tr data-day=", overseer)) == 14
    week = sign_in(api_key("dana@asi")).get("/dashboard/monitors?days=7").text
    assert len(re.findall(r"<tr data-day=", week)) == 7

    for query, says in (("days=0", "between 1 and 90"), ("days=91", "between 1 and 90"),
                        ("days=x", "days must be a whole number")):  # fmt: skip
        answer = sign_in(api_key("erin@auditor")).get(f"/dashboard/monitors?{query}")
        assert answer.status_code == 400 and says in html.unescape(answer.text), query


def test_a_findings_clock_is_a_timeline_and_exports_follow_the_case_record(
    server: ServerProcess, api_key: Callable[[str], str], sign_in: Callable[[str], httpx.Client]
) -> None:
    alice = api_key("alice@lab")
    body = {**FINDING, "details_base64": base64.b64encode(b"PoC bytes").decode()}
    finding = _api(server, alice, "POST", "/custody/findings", body)
    fid = finding["id"]
    client = sign_in(alice)
    page = client.get("/dashboard/custody").text
    article = re.search(
        rf'<article class="finding[^"]*" data-finding="{fid}".*?</article>', page, re.S
    )
    assert article is not None, page
    shown = article.group(0)
    # Escaped, never markup: a finding's title comes from a (possibly hostile) finder.
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in shown
    assert "The disclosure clock starts when the vendor is notified" in shown
    assert (
        f'href="/dashboard/log?index={finding["log_index"]}#entry-{finding["log_index"]}"' in shown
    )
    assert "Nobody has read its escrowed details." in shown

    notified = _api(
        server, alice, "POST", f"/custody/findings/{fid}/events", {"event": "vendor-notified"}
    )
    clock = notified["clock"]
    shown = re.search(
        rf'data-finding="{fid}".*?</article>', client.get("/dashboard/custody").text, re.S
    ).group(0)  # type: ignore[union-attr]
    marks = re.search(r'<ol class="marks">(.*?)</ol>', shown, re.S).group(1)  # type: ignore[union-attr]
    labels = [
        html.unescape(re.sub(r"<[^>]+>", "", m)).split(":")[0] for m in marks.split("</li>")[:-1]
    ]
    # In time order: what happened, now, then what is due (the clock's dates).
    assert [x.strip() for x in labels][:4] == [
        "registered",
        "vendor notified",
        "now",
        "disclosure due",
    ]
    assert f"disclosure due: {clock['disclose_at']}" in html.unescape(marks)
    assert "(day 0)" in marks  # vendor notice is day 0 of the clock
    assert '<svg class="timeline"' in shown and 'class="m-due"' in shown

    export = client.get(f"/dashboard/custody/{fid}/export/osv")
    assert export.status_code == 200, export.text
    assert export.json()["id"] == f"x_{fid}"
    assert export.headers["content-disposition"] == f'attachment; filename="{fid}.osv.json"'
    assert client.get(f"/dashboard/custody/{fid}/export/csaf").status_code == 200
    bad = client.get(f"/dashboard/custody/{fid}/export/pdf")
    assert bad.status_code == 400 and "unknown export format" in bad.text

    # An overseer sees the case; a partner outside it sees at most that it exists.
    assert f'data-finding="{fid}"' in sign_in(api_key("dana@asi")).get("/dashboard/custody").text
    outsider = sign_in(api_key("heidi@unilab"))
    listing = outsider.get("/dashboard/custody").text
    assert f'data-finding="{fid}"' not in listing
    refused = outsider.get(f"/dashboard/custody/{fid}/export/osv")
    assert refused.status_code in (403, 404), refused.text
    assert "png_read_row" not in refused.text
    # The refusal is in the log (custody logs every refusal), as the log page shows it.
    denied = sign_in(api_key("dana@asi")).get("/dashboard/log?type=custody.denied/v1").text
    rows = re.findall(r'<tr data-index="\d+"[^>]*>(.*?)</tr>', denied, re.S)
    assert any("heidi@unilab" in r and "action=export" in r for r in rows), denied
