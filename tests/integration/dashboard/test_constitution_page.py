"""The constitution page on a real server: the version in force, an amendment waiting for
signatures with its text diff and coalition effect, its adoption through CLI signatures, the
history with a diff between versions, and bad query parameters refused with a clear page."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.dashboard.conftest import CliResult
from tests.support.server import ServerProcess

Cli = Callable[..., CliResult]


def _propose(cli: Cli, path: Path, text: str) -> str:
    path.write_text(text)
    made = cli("constitution", "propose", str(path), "--key", "examples/keys/bob.key", "--json")
    return str(json.loads(made.stdout)["id"])


def _section(page: str, marker: str) -> str:
    """The HTML of the element that opens with ``marker`` up to the next ``<article`` or
    ``</section>`` (enough to tell one amendment's facts from another's)."""
    start = page.index(marker)
    ends = [i for i in (page.find("<article", start + 1), page.find("</section>", start)) if i > 0]
    return page[start : min(ends)]


def _next_version(text: str, version: int) -> str:
    assert f"\nversion: {version - 1}\n" in text
    return text.replace(f"\nversion: {version - 1}\n", f"\nversion: {version}\n", 1)


def test_an_amendment_is_shown_with_its_effect_then_adopted_into_the_history(
    server: ServerProcess,
    api_key: Callable[[str], str],
    sign_in: Callable[[str], httpx.Client],
    cli: Cli,
    tmp_path: Path,
) -> None:
    overseer = sign_in(api_key("dana@asi"))
    in_force = httpx.get(server.url("/constitution?format=yaml")).text
    first = overseer.get("/dashboard/constitution")
    assert first.status_code == 200
    version = int(re.search(r"Version <strong>(\d+)</strong>", first.text).group(1))  # type: ignore[union-attr]
    assert 'aria-current="page">Constitution</a>' in first.text

    # A harmless amendment: custody's follow-up window grows by a day (no goal changes).
    assert "read_follow_up_within: 3d" in in_force
    harmless = _next_version(in_force, version + 1).replace(
        "read_follow_up_within: 3d", "read_follow_up_within: 4d", 1
    )
    first_id = _propose(cli, tmp_path / "harmless.yaml", harmless)
    page = overseer.get("/dashboard/constitution").text
    shown = _section(page, f'data-amendment="{first_id}"')
    assert f"version {version} → {version + 1}" in shown and "Proposed by bob@lab" in shown
    assert "Signed by: nobody yet" in shown
    assert '<span class="d-del">-  read_follow_up_within: 3d</span>' in shown
    assert '<span class="d-add">+  read_follow_up_within: 4d</span>' in shown
    assert "Nothing: every goal needs the same people and organisations" in shown

    # A weakening one: without the break-glass rules, weights-export no longer falls to the
    # lab's incident commander alone; the page shows the coalition effect per goal.
    start, end = in_force.index("\nbreak_glass:"), in_force.index("\namendment:")
    weaker = _next_version(in_force, version + 1).replace(in_force[start:end], "", 1)
    second_id = _propose(cli, tmp_path / "weaker.yaml", weaker)
    page = overseer.get("/dashboard/constitution").text
    shown = _section(page, f'data-amendment="{second_id}"')
    row = re.search(r'<tr data-goal="use:weights-export"[^>]*>(.*?)</tr>', shown, re.S)
    assert row is not None, shown
    cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in row.group(1).split("</td>")]
    # Fewest organisations, before → after: two amendment signers of two organisations could
    # still append a standing rule for it.
    assert cells[2].strip() == "1 → 2"
    assert "no longer: carol@lab" in cells[3]  # no longer a single point of failure
    assert "2 amendments waiting for signatures" in page

    # A partner sees the same (the constitution and its amendments bind everyone).
    partner = sign_in(api_key("alice@lab")).get("/dashboard/constitution").text
    assert f'data-amendment="{first_id}"' in partner and f'data-amendment="{second_id}"' in partner

    # Two signers adopt the harmless one; the other, made against the old version, is
    # superseded and leaves the page.
    for key in ("dana", "erin"):
        cli("constitution", "sign", first_id, "--key", f"examples/keys/{key}.key", "--yes")
    page = overseer.get("/dashboard/constitution").text
    assert f"Version <strong>{version + 1}</strong>" in page
    assert f'data-amendment="{first_id}"' not in page
    assert f'data-amendment="{second_id}"' not in page
    assert "No amendment is waiting for signatures." in page
    status = json.loads(cli("requests", second_id, "--json").stdout)["status"]
    assert status == "superseded"
    history = re.findall(r'<tr data-version="(\d+)">', page)
    assert history == [str(v) for v in range(1, version + 2)]
    # The default diff is the newest step, and each version links to its adoption entry.
    assert f'id="h-diff">Version {version} → version {version + 1}' in page
    assert '<span class="d-add">+  read_follow_up_within: 4d</span>' in page
    versions = httpx.get(server.url("/constitution/versions")).json()["versions"]
    adopted = versions[-1]["log_index"]
    assert f'href="/dashboard/log?index={adopted}#entry-{adopted}"' in page
    entry = overseer.get(f"/dashboard/log?index={adopted}").text
    assert re.search(
        rf'<tr data-index="{adopted}" id="entry-{adopted}" class="target"[^>]*><td>.*?'
        r"<code>constitution\.",
        entry,
        re.S,
    ), entry
    # The log page finds bob's proposals: by principal and a type prefix, or his organisation.
    found = overseer.get("/dashboard/log?principal=bob@lab&type=authority.").text
    rows = re.findall(r'<tr data-index="\d+"[^>]*>.*?</tr>', found, re.S)
    assert len(rows) >= 2 and all(">bob@lab</a>" in r for r in rows), found
    assert all("<code>authority.request/v1</code>" in r for r in rows)
    by_org = overseer.get("/dashboard/log?organisation=lab&until=2999-01-01T00:00:00Z").text
    assert f"id={first_id}" in by_org
    # The amendment's "log" link finds every entry naming it: proposal, signatures, adoption.
    assert f'href="/dashboard/log?about={second_id}"' in shown
    about = overseer.get(f"/dashboard/log?about={first_id}").text
    types = set(re.findall(r'<td class="nowrap"><code>([^<]+)</code>', about))
    assert {"authority.request/v1", "authority.approval/v1", "constitution.amend/v1"} <= types
    # Any two versions can be compared, in order.
    older = overseer.get(f"/dashboard/constitution?from=1&to={version + 1}")
    assert older.status_code == 200 and f"Version 1 → version {version + 1}" in older.text


def test_bad_parameters_get_a_page_that_says_what_was_expected(
    server: ServerProcess, api_key: Callable[[str], str], sign_in: Callable[[str], httpx.Client]
) -> None:
    assert httpx.get(server.url("/dashboard/constitution")).status_code == 303  # signed out
    client = sign_in(api_key("erin@auditor"))
    for query, says in (
        ("from=abc", "from must be a whole number"),
        ("from=99999", "there is no adopted version 99999"),
        ("to=1&from=1", "the diff goes from an older version to a newer one"),
        ("from=" + "9" * 40, "from must be a whole number"),
    ):
        answer = client.get(f"/dashboard/constitution?{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert says in html.unescape(answer.text) and 'role="alert"' in answer.text
    for query, says in (
        ("index=-1", "index must be a whole number"),
        ("index=99999999", "there is no entry 99999999"),
        ("before=x", "before must be a whole number"),
        ("since=yesterday", "since must be a time"),
        ("until=" + "9" * 41, "until must be a time"),
        ("since=2026-12-08&until=2026-12-07T23:59Z", "since is after until"),
    ):
        answer = client.get(f"/dashboard/log?{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert says in html.unescape(answer.text)
