"""Witness cosignatures verified in real Chromium against running witnesses.

One deployment for the module, as a user runs it: ``custodes serve --demo`` with its two
overseer witnesses on free ports (real ``custodes witness serve`` processes, started by the
demo), the log publishing to them under the C2SP tlog-policy file the demo writes. The overseer
pastes that policy file (got out of band, as the log key) into the log page; the browser
checks every cosignature under the policy's keys and the quorum, and raises an alarm when a
cosignature is tampered with on its way to the browser.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.log import NoteSigner
from custodes.witness import WitnessPolicy
from tests.integration.dashboard.test_in_chromium import _css, _text, _wait
from tests.support.drills import Demo, demo_deployment

_START = 60  # seconds for the witnesses' first cosignatures on a loaded machine


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_deployment(tmp_path_factory.mktemp("witnessed") / "demo") as demo:
        yield demo


@pytest.fixture(scope="module")
def policy_file(deployment: Demo) -> Path:
    """The witness policy the log server publishes with, as ``custodes serve`` says it."""
    found = re.search(r"witness policy for these ports: (\S+)", deployment.output.read_text())
    assert found, deployment.output.read_text()
    return Path(found.group(1))


def _both_cosigned(deployment: Demo, names: set[str]) -> None:
    """Wait until the log server holds a checkpoint every witness cosigned (the witnesses
    are separate processes: their first round takes a moment after the server starts)."""
    deadline = time.monotonic() + _START
    seen = ""
    while time.monotonic() < deadline:
        got = httpx.get(f"{deployment.url}/checkpoint/cosigned", timeout=30)
        seen = got.headers.get("x-custodes-cosigners", "")
        if got.status_code == 200 and set(seen.split(",")) >= names:
            return
        time.sleep(0.2)  # polling for a state, with a deadline: not a timing assumption
    pytest.fail(f"the witnesses did not both cosign within {_START} s (cosigners: {seen!r})")


@pytest.fixture(scope="module")
def overseer_browser(browser: Any, deployment: Demo, policy_file: Path) -> Iterator[Any]:
    """The package's Chromium signed in to this deployment as dana@asi (an overseer). The
    package server's session cookie (same host, another port) is put back afterwards."""
    from selenium.webdriver.common.by import By

    names = {w.name for w in WitnessPolicy.from_file(policy_file).witnesses}
    _both_cosigned(deployment, names)
    kept = browser.get_cookie("custodes_session")
    kept_url = browser.current_url
    browser.delete_all_cookies()
    try:
        with deployment.credentials() as credentials:
            key = credentials.issue_api_key("dana@asi")
        browser.get(f"{deployment.url}/dashboard/sign-in")
        browser.find_element(By.ID, "api_key").send_keys(key)
        browser.find_element(By.CSS_SELECTOR, "#api-key-sign-in button[type=submit]").click()
        _wait(browser, lambda b: b.current_url.endswith("/dashboard/"), "the Now page")
        yield browser
    finally:
        browser.delete_all_cookies()
        if kept is not None and kept_url.startswith("http"):
            browser.get(kept_url)
            browser.add_cookie(kept)


def _panel(browser: Any) -> tuple[str, str]:
    """Wait for the verification panel to settle; its state and text."""
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


# Rewrites this page's answers from /checkpoint/cosigned, as a lying server or a network in
# the middle would: "flip" changes one bit of one witness's Ed25519 signature (after its 4-byte
# key id and 8-byte timestamp), "strip" serves the checkpoint without any cosignature.
_LIE = """
const [how, witness] = arguments;
const real = window.__realFetch || (window.__realFetch = window.fetch);
window.fetch = async (url, options) => {
  const answer = await real(url, options);
  if (!String(url).startsWith("/checkpoint/cosigned") || !answer.ok) return answer;
  const lines = (await answer.text()).split("\\n");
  const out = [];
  for (const line of lines) {
    if (!line.startsWith("\\u2014 ") || line.startsWith("\\u2014 " + window.__logName + " ")) {
      out.push(line);
    } else if (how === "flip" && line.startsWith("\\u2014 " + witness + " ")) {
      const [dash, name, blob] = line.split(" ");
      const raw = Uint8Array.from(atob(blob), (c) => c.charCodeAt(0));
      raw[4 + 8 + 10] ^= 0x01;
      out.push([dash, name, btoa(String.fromCharCode(...raw))].join(" "));
    } else if (how === "flip") {
      out.push(line);
    }
  }
  return new Response(out.join("\\n"), { status: 200, headers: answer.headers });
};
"""


def _reverify(browser: Any) -> None:
    """Verify again without a reload (a reload would drop the page's lying fetch)."""
    browser.execute_script(
        "document.getElementById('verification').dataset.state = 'pending';"
        "document.querySelector('form[data-trust]').requestSubmit();"
    )


def test_the_browser_checks_running_witnesses_cosignatures_under_the_servers_policy(
    overseer_browser: Any, deployment: Demo, policy_file: Path, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser = overseer_browser
    policy_text = policy_file.read_text()
    policy = WitnessPolicy.from_text(policy_text)
    names = [w.name for w in policy.witnesses]
    assert len(names) == 2 and policy.describe() == f"1 of {', '.join(names)}"

    # Now: the witness health of the two running witnesses.
    rows = _css(browser, "#h-witnesses ~ table tbody tr")
    assert [r.text.split("\n")[0] for r in rows] == names, _text(browser)

    browser.get(f"{deployment.url}/dashboard/log")
    state, _ = _panel(browser)
    assert state == "unconfigured"
    # What the page says the log publishes with is the very policy the log server uses.
    served = browser.find_element(By.ID, "served-witness-policy").text
    assert WitnessPolicy.from_text(served + "\n") == policy
    # The overseer pastes the log key and the policy file, both got out of band.
    log_key = NoteSigner.from_key((deployment.data / "log.key").read_text()).verifier.to_key()
    browser.find_element(By.ID, "trust-log").send_keys(log_key)
    browser.find_element(By.ID, "trust-policy").send_keys(policy_text)
    browser.find_element(By.CSS_SELECTOR, "form[data-trust] button[type=submit]").click()
    _wait(
        browser,
        lambda b: (
            b.find_element("id", "verification").get_attribute("data-state")
            not in ("pending", "running", "unconfigured")
        ),
        "the first verification",
    )
    state, text = _panel(browser)
    assert state == "ok", text
    found = re.search(r"valid cosignatures from (.+) on the checkpoint of (\d+) entries", text)
    assert found, text
    cosigners = found.group(1).split(", ")
    assert cosigners and set(cosigners) <= set(names), text
    assert f"quorum (1 of {', '.join(names)}) met" in text
    browser.save_screenshot(str(screenshots / "log-witnesses-verified.png"))
    browser.execute_script(f"window.__logName = {log_key.split('+')[0]!r};")

    # One bit of one witness's signature changed on the way: an alarm naming that witness.
    for name in cosigners:
        browser.execute_script(_LIE, "flip", name)
        _reverify(browser)
        state, text = _panel(browser)
        assert state == "failed", text
        assert "Alarm: verification failed" in text, text
        assert f"the cosignature of witness {name} does not verify" in text, text
        assert _css(browser, '#verification [role="alert"]')
    browser.save_screenshot(str(screenshots / "log-witness-tampered.png"))

    # The cosignatures withheld: not an alarm about a signature, but the quorum shown unmet.
    browser.execute_script(_LIE, "strip", "")
    _reverify(browser)
    state, text = _panel(browser)
    assert state == "warning", text
    assert f"no valid cosignature yet; quorum (1 of {', '.join(names)}) not met" in text, text

    # Nothing lies any more: the running witnesses' cosignatures verify again.
    browser.get(f"{deployment.url}/dashboard/log")
    state, text = _panel(browser)
    assert state == "ok", text
    assert f"quorum (1 of {', '.join(names)}) met" in text
