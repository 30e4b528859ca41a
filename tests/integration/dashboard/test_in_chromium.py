"""The dashboard in real Chromium: sign in, watch a request arrive live and become a grant
after CLI approvals, verify the log in the browser (WebCrypto Ed25519 and an RFC 9162
consistency proof from the last checkpoint seen), and raise an alarm when the checkpoint the
server serves is tampered with or rolled back; check that every entry shown is in the verified
checkpoint (its raw bytes hashed in the browser) and raise an alarm on a changed entry."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from custodes.config import Settings
from custodes.log import NoteSigner
from tests.integration.dashboard.conftest import CliResult
from tests.integration.dashboard.test_monitors_custody_pages import DISCOVERY, FINDING
from tests.support.server import ServerProcess

Cli = Callable[..., CliResult]
_WAIT = 30  # seconds: the page polls every 2 s; generous for a loaded CI machine


def _wait(browser: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, _WAIT, poll_frequency=0.2).until(condition)
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what}; page text:\n{_text(browser)}")


def _text(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "body").text)


def _css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


@pytest.fixture(scope="module")
def signed_in_browser(
    browser: Any, server: ServerProcess, api_key: Callable[[str], str]
) -> Iterator[Any]:
    from selenium.webdriver.common.by import By

    browser.get(server.url("/dashboard/"))
    assert browser.current_url.endswith("/dashboard/sign-in")
    browser.find_element(By.ID, "api_key").send_keys(api_key("dana@asi"))
    browser.find_element(By.CSS_SELECTOR, "#api-key-sign-in button[type=submit]").click()
    _wait(browser, lambda b: b.current_url.endswith("/dashboard/"), "the Now page")
    yield browser


@pytest.fixture
def checkpoints(dashboard_settings: Settings) -> Iterator[sa.Engine]:
    """The server's database, to read its checkpoints and tamper with them (see tampered)."""
    engine = sa.create_engine(dashboard_settings.resolved_database_url)
    yield engine
    engine.dispose()


@contextmanager
def tampered(engine: sa.Engine) -> Iterator[tuple[int, str]]:
    """The newest checkpoint row (seq, note), put back as it was on exit, whatever happened."""
    with engine.connect() as conn:
        seq, note = conn.execute(
            sa.text("SELECT seq, note FROM log_checkpoints ORDER BY seq DESC LIMIT 1")
        ).one()
    try:
        yield int(seq), str(note)
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE log_checkpoints SET note = :n WHERE seq = :s"),
                {"n": note, "s": seq},
            )


def _serve(engine: sa.Engine, seq: int, note: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE log_checkpoints SET note = :n WHERE seq = :s"), {"n": note, "s": seq}
        )


def _request(cli: Cli, key: str) -> str:
    made = cli(
        "request",
        "cyber-frontier",
        "--key",
        key,
        "--purpose",
        "triage a driver 0-day",
        "--duration",
        "4h",
        "--json",
    )
    return str(json.loads(made.stdout)["id"])


def test_a_stockpiling_alarm_appears_live(
    signed_in_browser: Any,
    server: ServerProcess,
    api_key: Callable[[str], str],
    screenshots: Path,
) -> None:
    """A discovery the monitors flag and nobody links to a finding within the stockpiling
    window (2 s in this server's constitution) raises custody's alarm, recorded by the server's
    own sweep; the open Now page shows it without a reload."""
    browser = signed_in_browser
    browser.get(server.url("/dashboard/"))
    screened = httpx.post(
        server.url("/monitors/screen"),
        json={"text": DISCOVERY, "source": "chromium-session"},
        headers={"authorization": f"Bearer {api_key('alice@lab')}"},
        timeout=30,
    )
    assert screened.status_code == 201, screened.text
    [det] = [d["id"] for d in screened.json()["detections"] if d["category"] == "vuln_discovery"]
    alarm = _wait(
        browser,
        lambda b: next(
            (r for r in _css(b, "tr.alarm") if "stockpiling" in r.text and det in r.text), None
        ),
        f"the stockpiling alarm for {det}",
    )
    assert "#" in alarm.text  # linked to the log entry that records it
    browser.save_screenshot(str(screenshots / "now-stockpiling.png"))


def test_a_request_appears_live_and_becomes_a_grant(
    signed_in_browser: Any, cli: Cli, screenshots: Path
) -> None:
    browser = signed_in_browser
    assert "Signed in as dana@asi" in _text(browser)
    request_id = _request(cli, "examples/keys/alice.key")
    # No reload: the page's poller brings the new request in.
    row = _wait(
        browser,
        lambda b: (_css(b, f'#pending tr[data-request="{request_id}"]') or [None])[0],
        f"request {request_id} to appear live",
    )
    assert "alice@lab" in row.text and "nobody yet" in row.text
    assert "Updated" in browser.find_element("id", "live-status").text
    browser.save_screenshot(str(screenshots / "now-pending.png"))

    cli("approve", request_id, "--key", "examples/keys/dana.key", "--yes")
    cli("approve", request_id, "--key", "examples/keys/erin.key", "--yes")
    grant = _wait(
        browser,
        lambda b: (_css(b, f'#grants tr[data-request="{request_id}"]') or [None])[0],
        f"request {request_id} to become a grant",
    )
    assert "dana@asi (asi)" in grant.text and "erin@auditor (auditor)" in grant.text
    assert not _css(browser, f'#pending tr[data-request="{request_id}"]')
    browser.save_screenshot(str(screenshots / "now-granted.png"))


def _verify(browser: Any, server: ServerProcess) -> tuple[str, str]:
    browser.get(server.url("/dashboard/log"))
    panel = _wait(
        browser,
        lambda b: (
            (p := b.find_element("id", "verification")).get_attribute("data-state")
            not in ("pending", "running")
            and p
        ),
        "the in-browser verification to finish",
    )
    return str(panel.get_attribute("data-state")), str(panel.text)


def test_the_browser_verifies_the_log_then_raises_an_alarm_on_tampering(
    signed_in_browser: Any,
    server: ServerProcess,
    dashboard_settings: Settings,
    checkpoints: sa.Engine,
    cli: Cli,
    screenshots: Path,
) -> None:
    from selenium.webdriver.common.by import By

    browser = signed_in_browser
    state, text = _verify(browser, server)
    assert state == "unconfigured", text
    # The overseer's key comes out of band (the key file), not from the server's page.
    key_file = dashboard_settings.data_dir / "log.key"
    log_key = NoteSigner.from_key(key_file.read_text()).verifier.to_key()
    browser.find_element(By.ID, "trust-log").send_keys(log_key)
    browser.find_element(By.CSS_SELECTOR, "form[data-trust] button[type=submit]").click()
    _wait(
        browser,
        lambda b: b.find_element("id", "verification").get_attribute("data-state") == "ok",
        "the first verification",
    )
    assert "first visit" in browser.find_element("id", "verification").text

    # More entries; the next visit checks a consistency proof from the size it saw.
    with checkpoints.connect() as conn:
        seen = conn.execute(sa.text("SELECT max(size) FROM log_checkpoints")).scalar()
    _request(cli, "examples/keys/alice.key")
    _wait(browser, lambda b: _newest_size(checkpoints) > seen, "a new checkpoint")
    state, text = _verify(browser, server)
    assert state == "ok", text
    assert f"consistent with the checkpoint of {seen} entries" in text
    browser.save_screenshot(str(screenshots / "log-verified.png"))

    # Tamper with the checkpoint the server serves: same signature, another root hash.
    with tampered(checkpoints) as (seq, note):
        origin, size, _root, rest = note.split("\n", 3)
        forged = base64.b64encode(bytes(32)).decode()
        _serve(checkpoints, seq, "\n".join([origin, size, forged, rest]))
        state, text = _verify(browser, server)
        assert state == "failed", text
        assert "Alarm: verification failed" in text and "does not verify" in text
        assert _css(browser, '#verification [role="alert"]')
        browser.save_screenshot(str(screenshots / "log-tampered.png"))

        # Roll back: serve an older checkpoint, validly signed; the browser remembers more.
        with checkpoints.connect() as conn:
            older = conn.execute(
                sa.text("SELECT note FROM log_checkpoints WHERE size < :k ORDER BY seq DESC"),
                {"k": int(size)},
            ).scalar()
        _serve(checkpoints, seq, str(older))
        state, text = _verify(browser, server)
        assert state == "failed", text
        assert "rollback" in text
    # Restored: the browser verifies again, from the checkpoint it last trusted.
    state, text = _verify(browser, server)
    assert state == "ok", text


# Runs in the page before a verification: what a lying server (or a network in the middle)
# would serve, made by rewriting this page's own fetch answers, so the server's real log is
# never altered (its self-check would halt it for every other test).
_LIE = """
const [how, index] = arguments;
const real = window.__realFetch || (window.__realFetch = window.fetch);
window.fetch = async (url, options) => {
  let target = String(url);
  if (how === "proof-of-another" && target.startsWith("/log/proof/inclusion")) {
    target = target.replace(`index=${index}&`, `index=${index - 1}&`);
  }
  const answer = await real(target, options);
  if (how !== "entry" || !target.startsWith("/tile/entries/")) return answer;
  const bytes = new Uint8Array(await answer.arrayBuffer());
  let at = 0;
  for (let i = 0; i < index % 256; i++) at += 2 + ((bytes[at] << 8) | bytes[at + 1]);
  const length = (bytes[at] << 8) | bytes[at + 1];
  bytes[at + 2 + Math.floor(length / 2)] ^= 0x01;  // one bit of the entry, length kept
  return new Response(bytes, { status: answer.status, headers: answer.headers });
};
"""


def _trust_the_log(browser: Any, server: ServerProcess, settings: Settings) -> None:
    """Configure the log key (read out of band, from the key file) unless this browser has."""
    from selenium.webdriver.common.by import By

    state, _ = _verify(browser, server)
    if state != "unconfigured":
        return
    log_key = NoteSigner.from_key((settings.data_dir / "log.key").read_text()).verifier.to_key()
    browser.find_element(By.ID, "trust-log").send_keys(log_key)
    browser.find_element(By.CSS_SELECTOR, "form[data-trust] button[type=submit]").click()


def _inclusion(browser: Any) -> tuple[str, str, dict[str, str]]:
    """Wait for the entries' inclusion checks; their summary's state and text, and each row's."""
    status = _wait(
        browser,
        lambda b: (
            (s := b.find_element("id", "inclusion-status")).get_attribute("data-state")
            not in ("pending", "running")
            and s
        ),
        "the entries' inclusion checks",
    )
    rows = {
        str(r.get_attribute("data-index")): str(r.get_attribute("data-inclusion"))
        for r in _css(browser, "#entries tr[data-index]")
    }
    return str(status.get_attribute("data-state")), str(status.text), rows


def _reverify(browser: Any) -> None:
    """Verify again without a reload (a reload would drop the page's lying fetch)."""
    browser.execute_script(
        "document.getElementById('inclusion-status').dataset.state = 'pending';"
        "document.querySelector('form[data-trust]').requestSubmit();"
    )


def test_the_browser_verifies_each_entry_shown_is_in_the_checkpoint(
    signed_in_browser: Any,
    server: ServerProcess,
    dashboard_settings: Settings,
    cli: Cli,
    screenshots: Path,
) -> None:
    """Every entry on the log page is checked in the browser: its raw bytes from the C2SP
    entry bundle, hashed there (RFC 9162 §2.1.1), its audit path walked to the root of the
    checkpoint the browser verified. A changed entry, a proof of another entry, and a page
    that shows an entry as something its bytes do not say are alarms on their rows."""
    from selenium.webdriver.common.by import By

    browser = signed_in_browser
    _request(cli, "examples/keys/alice.key")  # at least one entry of a known principal
    _trust_the_log(browser, server, dashboard_settings)
    browser.get(server.url("/dashboard/log"))
    state, text, rows = _inclusion(browser)
    assert state == "ok", text
    verified = [i for i, s in rows.items() if s == "ok"]
    assert len(verified) >= 2 and set(rows.values()) <= {"ok", "later"}, rows
    assert f"{len(verified)} entries shown are in the checkpoint of" in text
    _fits(browser)
    browser.save_screenshot(str(screenshots / "log-entries-verified.png"))

    # A link from another page to one entry: that entry is shown, marked and verified.
    target = int(min(verified, key=int))
    browser.get(server.url(f"/dashboard/log?index={target}"))
    _inclusion(browser)
    marked = browser.find_element(By.CSS_SELECTOR, "tr.target")
    assert marked.get_attribute("data-index") == str(target)
    assert marked.get_attribute("data-inclusion") == "ok", marked.text

    newest = int(max(verified, key=int))
    for how, row in (("entry", newest), ("proof-of-another", newest)):
        browser.get(server.url("/dashboard/log"))
        _inclusion(browser)
        browser.execute_script(_LIE, how, row)
        _reverify(browser)
        state, text, rows = _inclusion(browser)
        assert state == "failed", (how, text)
        assert rows[str(row)] == "failed", (how, rows)
        assert [i for i, s in rows.items() if s == "failed"] == [str(row)], (how, rows)
        assert _css(browser, '#inclusion-status[role="alert"]')
        cell = browser.find_element(By.CSS_SELECTOR, f'tr[data-index="{row}"] [role="alert"]')
        if how == "entry":
            assert "is not in the checkpoint" in cell.text, cell.text
            browser.save_screenshot(str(screenshots / "log-entry-tampered.png"))
        else:
            assert "malformed or for another entry" in cell.text, cell.text

    # The page itself lies: it shows an entry as another type than its verified bytes say.
    browser.get(server.url("/dashboard/log"))
    _inclusion(browser)
    browser.execute_script(
        "document.querySelector(`tr[data-index='${arguments[0]}']`).dataset.type = "
        "'custody.finding/v1';",
        newest,
    )
    _reverify(browser)
    state, text, rows = _inclusion(browser)
    assert state == "failed" and rows[str(newest)] == "failed", (text, rows)
    cell = browser.find_element(By.CSS_SELECTOR, f'tr[data-index="{newest}"] [role="alert"]')
    assert "as custody.finding/v1 by" in cell.text and "but the verified entry says" in cell.text

    # Nothing lies any more: everything verifies again.
    browser.get(server.url("/dashboard/log"))
    state, text, rows = _inclusion(browser)
    assert state == "ok", text


def _newest_size(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT size FROM log_checkpoints ORDER BY seq DESC LIMIT 1")
            ).scalar()
            or 0
        )


def test_the_coalition_picture_loads(
    signed_in_browser: Any, server: ServerProcess, screenshots: Path
) -> None:
    browser = signed_in_browser
    browser.get(server.url("/dashboard/coalition"))
    picture = browser.find_element("id", "coalition-picture")
    _wait(browser, lambda b: picture.get_attribute("complete") == "true", "the picture")
    assert int(picture.get_attribute("naturalWidth") or 0) > 0  # the SVG rendered
    assert _css(browser, "#goals tbody tr")
    browser.save_screenshot(str(screenshots / "coalition.png"))


def _fits(browser: Any) -> None:
    """Readable on a laptop screen: nothing wider than the 1366 px viewport."""
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 1366, f"the page is {width} px wide at a 1366 px viewport"


def test_the_constitution_custody_and_monitors_pages_render(
    signed_in_browser: Any,
    server: ServerProcess,
    api_key: Callable[[str], str],
    screenshots: Path,
) -> None:
    from selenium.webdriver.common.by import By

    browser = signed_in_browser
    alice = {"authorization": f"Bearer {api_key('alice@lab')}"}
    body = {**FINDING, "details_base64": base64.b64encode(b"PoC").decode()}
    made = httpx.post(server.url("/custody/findings"), json=body, headers=alice, timeout=30)
    assert made.status_code == 201, made.text
    fid = made.json()["id"]
    notified = httpx.post(
        server.url(f"/custody/findings/{fid}/events"),
        json={"event": "vendor-notified"},
        headers=alice,
        timeout=30,
    )
    assert notified.status_code == 200, notified.text

    browser.get(server.url("/dashboard/custody"))
    timeline = browser.find_element(By.CSS_SELECTOR, f'[data-finding="{fid}"] svg.timeline')
    assert timeline.size["width"] > 500 and timeline.size["height"] > 20
    labels = [t.text for t in timeline.find_elements(By.TAG_NAME, "text")]
    assert "vendor notified" in labels and "disclosure due" in labels and "now" in labels
    _fits(browser)
    browser.save_screenshot(str(screenshots / "custody.png"))

    browser.get(server.url("/dashboard/monitors"))
    chart = browser.find_element(By.ID, "detections-chart")
    assert chart.size["width"] > 500
    assert chart.find_elements(By.TAG_NAME, "rect")  # the screened discovery is counted
    _fits(browser)
    browser.save_screenshot(str(screenshots / "monitors.png"))

    browser.get(server.url("/dashboard/constitution"))
    assert browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert "is in force" in _text(browser)
    _fits(browser)
    browser.save_screenshot(str(screenshots / "constitution.png"))
    # Keyboard: the first Tab reaches the skip link, and following it moves focus to main.
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("class") == "skip"
    focused.send_keys(Keys.ENTER)
    _wait(browser, lambda b: b.switch_to.active_element.get_attribute("id") == "main", "focus")


def test_sign_in_with_the_principals_own_key(
    signed_in_browser: Any, server: ServerProcess, cli: Cli, screenshots: Path
) -> None:
    """`custodes dashboard login` signs the server's challenge with the key file; the link it
    prints, confirmed in the browser, opens a session for that principal (and only once)."""
    from selenium.webdriver.common.by import By

    browser = signed_in_browser
    kept = browser.get_cookie("custodes_session")  # dana's session, put back after
    browser.delete_all_cookies()
    try:
        made = json.loads(
            cli("dashboard", "login", "--key", "examples/keys/erin.key", "--json").stdout
        )
        browser.get(made["url"])
        assert "Sign in as erin@auditor?" in _text(browser)
        browser.save_screenshot(str(screenshots / "sign-in-with-key.png"))
        browser.find_element(By.CSS_SELECTOR, "#confirm-sign-in button[type=submit]").click()
        _wait(browser, lambda b: b.current_url.endswith("/dashboard/"), "the Now page")
        assert "Signed in as erin@auditor" in _text(browser)
        browser.get(made["url"])  # used: the link signs nobody in again
        assert "unknown, used or expired" in _text(browser)
    finally:
        browser.delete_all_cookies()
        browser.get(server.url("/dashboard/sign-in"))
        if kept is not None:
            browser.add_cookie(kept)


def test_sign_in_by_pasting_a_signature_into_the_page(
    signed_in_browser: Any, server: ServerProcess, screenshots: Path, tmp_path: Path
) -> None:
    """Key sign-in without the CLI: the page gives a challenge and the command that signs it;
    the command's output (OpenSSL over erin's key file), pasted back, signs the browser in as
    erin@auditor. It is the signature `custodes dashboard login` makes over the same bytes."""
    import shutil
    import subprocess

    from selenium.webdriver.common.by import By

    from custodes.authority import SigningKey

    browser = signed_in_browser
    root = Path(__file__).resolve().parents[3]
    kept = browser.get_cookie("custodes_session")  # dana's session, put back after
    browser.delete_all_cookies()
    try:
        browser.get(server.url("/dashboard/sign-in"))
        _fits(browser)
        browser.save_screenshot(str(screenshots / "sign-in.png"))
        browser.find_element(By.ID, "principal").send_keys("erin@auditor")
        browser.find_element(By.CSS_SELECTOR, "#key-sign-in button[type=submit]").click()
        message = _wait(
            browser, lambda b: (_css(b, "#challenge-message") or [None])[0], "the challenge"
        ).text
        command = browser.find_element(By.ID, "sign-command").text
        browser.save_screenshot(str(screenshots / "sign-in-paste-signature.png"))
        _fits(browser)
        # The shown message is one line per field; the bytes signed end each with a newline.
        signed_bytes = (message.strip("\n") + "\n").encode()
        signature = SigningKey.from_file(root / "examples/keys/erin.key").sign(signed_bytes)
        if shutil.which("openssl"):  # the page's own instructions, run as a user would
            script = command.replace("YOUR.key", str(root / "examples/keys/erin.key"))
            made = subprocess.run(
                ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
            )
            assert made.returncode == 0, made.stderr
            assert (tmp_path / "challenge.txt").read_bytes() == signed_bytes
            assert made.stdout.strip() == signature
        browser.find_element(By.ID, "signature").send_keys(signature)
        browser.find_element(By.CSS_SELECTOR, "#key-answer button[type=submit]").click()
        _wait(browser, lambda b: b.current_url.endswith("/dashboard/"), "the Now page")
        assert "Signed in as erin@auditor" in _text(browser)
    finally:
        browser.delete_all_cookies()
        browser.get(server.url("/dashboard/sign-in"))
        if kept is not None:
            browser.add_cookie(kept)
