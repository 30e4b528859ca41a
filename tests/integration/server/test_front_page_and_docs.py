"""`GET /` tells a person where everything is; `/docs` and `/redoc` work without internet.

A real server on loopback. The API pages must load every asset from the server itself (an
air-gapped lab has no CDN), and the front page's log key must be the one checkpoints verify with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from custodes.config import Settings
from custodes.log import NoteSigner, NoteVerifier, SignedCheckpoint
from tests.support.server import ServerProcess, running_server

pytestmark = pytest.mark.slow

_BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Every place an HTML page can name another resource: attributes, and URL strings in scripts.
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")
_ABSOLUTE = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("front")


@pytest.fixture(scope="module")
def server(data: Path) -> Iterator[ServerProcess]:
    with running_server(Settings(data_dir=data, demo=True)) as running:
        yield running


def _references(page: str) -> list[str]:
    return [a or b for a, b in _REFERENCES.findall(page)]


def test_a_browser_gets_a_page_with_the_links_and_the_log_key(server: ServerProcess) -> None:
    answer = httpx.get(server.url("/"), headers={"Accept": _BROWSER_ACCEPT}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "accept" in answer.headers["vary"].lower()
    page = answer.text
    links = _references(page)
    for path in (
        "/docs",
        "/checkpoint",
        "/log/key",
        "/checkpoint/cosigned",
        "/witnesses",
        "/constitution",
    ):
        assert path in links, f"{path} not linked from the front page"
    assert len(links) == len(set(links)), f"a link is listed twice: {links}"
    # Same-origin links only, and nothing loaded from elsewhere (the witnesses' URLs are text).
    assert all(link.startswith("/") and not link.startswith("//") for link in links), links
    assert "witness.asi.example" in page  # the demo's witnesses are named
    assert "demo deployment" in page


def test_a_program_gets_json_whose_log_key_verifies_the_checkpoint(
    server: ServerProcess, data: Path
) -> None:
    about = httpx.get(server.url("/"), timeout=10).json()
    assert about["links"]["docs"] == "/docs"
    assert about["links"]["checkpoint"] == "/checkpoint"
    assert {w["name"] for w in about["witnesses"]} == {
        "witness.asi.example",
        "witness.auditor.example",
    }
    assert about["witness_quorum"].startswith("1 of witness.")
    verifier = NoteVerifier.from_key(about["log"]["public_key"])
    checkpoint = httpx.get(server.url("/checkpoint"), timeout=10).text
    signed = SignedCheckpoint.from_text(checkpoint, verifier)
    assert signed.checkpoint.origin == about["log"]["origin"]
    # And it is the server's own key, not just any key that happens to verify.
    own = NoteSigner.from_key((data / "log.key").read_text()).verifier.to_key()
    assert about["log"]["public_key"] == own
    # Every link answers: the gateway's needs an API key; no witness runs beside this server,
    # so no checkpoint is cosigned yet (404 says so); the dashboard sends strangers to sign in.
    answers = {"models": {401}, "cosigned_checkpoint": {404}, "dashboard": {303}}
    for name, path in about["links"].items():
        status = httpx.get(server.url(path), timeout=10).status_code
        assert status in answers.get(name, {200}), f"{path}: {status}"
    published = httpx.get(server.url(about["links"]["log_key"]), timeout=10).text.strip()
    assert published == own


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_nothing_from_another_host(server: ServerProcess, page: str) -> None:
    answer = httpx.get(server.url(page), timeout=10)
    assert answer.status_code == 200
    html = answer.text
    assert _ABSOLUTE.search(html) is None, f"{page} names another host: {_ABSOLUTE.search(html)}"
    assets = [ref for ref in _references(html) if not ref.endswith("oauth2-redirect")]
    assert any(a.endswith(".js") for a in assets), assets
    origin = urlsplit(server.base_url).netloc
    for asset in assets:
        url = urljoin(server.url(page), asset)
        assert urlsplit(url).netloc == origin
        fetched = httpx.get(url, timeout=10)
        assert fetched.status_code == 200, f"{asset}: {fetched.status_code}"
        assert len(fetched.content) > 0
        if asset.endswith(".js"):
            assert "javascript" in fetched.headers["content-type"]
            assert len(fetched.content) > 100_000  # the whole bundle, not a stub
    if page == "/docs":
        assert '"validatorUrl": null' in html  # no spec sent to the online validator
        spec = httpx.get(server.url("/openapi.json"), timeout=10)
        assert spec.status_code == 200 and "/authority/requests" in spec.text
