"""One real server (uvicorn in its own process, the demo constitution) for every dashboard
test, API keys issued with the real CLI, and an httpx client that signs in like a browser."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.cli import main
from custodes.config import Settings
from tests.support.server import ServerProcess, running_server, settings_env

ROOT = Path(__file__).resolve().parents[3]


STOCKPILING_WINDOW = "2s"
SESSION_HOURS = 7.5  # not the default 8: the sign-in test checks the setting is used


@pytest.fixture(scope="package")
def dashboard_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo constitution, but a discovery must be linked to a finding within 2 s (not 72 h)
    and the server sweeps for due custody alarms every second: so a test sees a stockpiling
    alarm raised by the server's own sweep, without a fake clock."""
    data = tmp_path_factory.mktemp("dashboard")
    text = (ROOT / "examples" / "constitution.yaml").read_text()
    assert "stockpiling_window: 72h" in text
    constitution = data / "constitution.yaml"
    constitution.write_text(
        text.replace("stockpiling_window: 72h", f"stockpiling_window: {STOCKPILING_WINDOW}", 1)
    )
    return Settings(
        data_dir=data,
        demo=True,
        constitution_file=constitution,
        custody_alarm_interval_s=1.0,
        dashboard_session_hours=SESSION_HOURS,
    )


@pytest.fixture(scope="package")
def server(dashboard_settings: Settings) -> Iterator[ServerProcess]:
    with running_server(
        dashboard_settings, log_path=dashboard_settings.data_dir / "server.log"
    ) as s:
        yield s


class CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture(scope="package")
def cli(server: ServerProcess, dashboard_settings: Settings) -> Iterator[Callable[..., CliResult]]:
    """Run a ``custodes`` command configured like the server (its environment), in this
    process: the same code as the installed script without paying its start-up each time."""
    env = settings_env(dashboard_settings)
    saved = {name: os.environ.get(name) for name in env}

    def run(*args: str, remote: bool = True) -> CliResult:
        argv = [*args, *(["--server", server.base_url] if remote else [])]
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.environ.update(env)
        os.chdir(ROOT)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            os.chdir(cwd)
        result = CliResult(code, out.getvalue(), err.getvalue())
        assert code == 0, f"custodes {' '.join(argv)}: {result.stderr}{result.stdout}"
        return result

    yield run
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="package")
def api_key(cli: Callable[..., CliResult]) -> Callable[[str], str]:
    """An API key for a principal, issued once per principal with ``custodes keys create``."""
    issued: dict[str, str] = {}

    def key(principal: str) -> str:
        if principal not in issued:
            out = cli("keys", "create", principal, "--json", remote=False).stdout
            issued[principal] = json.loads(out)["key"]
        return issued[principal]

    return key


@pytest.fixture
def sign_in(server: ServerProcess) -> Iterator[Callable[[str], httpx.Client]]:
    """Sign in with an API key: an httpx client holding a dashboard session (closed after)."""
    clients: list[httpx.Client] = []

    def open_session(key: str) -> httpx.Client:
        client = httpx.Client(base_url=server.base_url, timeout=30)
        clients.append(client)
        return _sign_in(client, key)

    yield open_session
    for client in clients:
        client.close()


def _sign_in(client: httpx.Client, key: str) -> httpx.Client:
    """Sign ``client`` in with ``key``, form and CSRF token as a browser does."""
    form = client.get("/dashboard/sign-in")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = client.post("/dashboard/sign-in", data={"csrf": csrf.group(1), "api_key": key})
    assert answer.status_code == 303, answer.text
    return client


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,768",
)


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real Chromium (Debian's ``chromium`` + ``chromium-driver``) for every page test.

    Nothing downloads a browser: Selenium gets both paths, and Selenium Manager is told to stay
    offline. Skips loudly when Debian's packages are missing (scripts/test-deps.sh installs
    them).
    """
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed: "
            "run scripts/test-deps.sh as root (apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    # The viewport itself is 1366×768 (a laptop screen), not the window around it.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots (1366×768) are kept as test artifacts."""
    return tmp_path_factory.mktemp("dashboard-screenshots")
