"""The composition root on real parts: every component built from Settings into one typed
Deployment, closed without leftovers (also when a start is refused), served by a real uvicorn
server whose routes reach the components only through it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from custodes.clock import FrozenClock
from custodes.config import Settings
from custodes.custody import FindingInput
from custodes.errors import ConfigError
from custodes.server import create_app
from custodes.wiring import build_deployment
from tests.support.threaded import serving

ROOT = Path(__file__).resolve().parents[3]

FINDING = FindingInput(
    title="Heap overflow in png_read_row",
    vendor="Operating System Vendor",
    product="libpng",
    versions=["< 1.6.44"],
    cwe="CWE-787",
    cvss="CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    finder="alice@lab",
    model="frontier-cyber",
    session="sess-9",
    policy="frontier-lab",
)


def _custodes_threads() -> set[str]:
    return {
        t.name for t in threading.enumerate() if t.name.startswith("custodes-") and t.is_alive()
    }


def _settings(tmp: Path, **extra: object) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        demo=True,
        constitution_file=ROOT / "examples" / "constitution.yaml",
        log_batch_wait_ms=0,
        **extra,  # type: ignore[arg-type]
    )


def test_a_deployment_is_built_whole_and_closed_without_leftovers(tmp_path: Path) -> None:
    before = _custodes_threads()
    deployment = build_deployment(_settings(tmp_path, custody_alarm_interval_s=30))
    try:
        assert deployment.authority.constitution.version == 1
        assert deployment.coalition.analysis(deployment.authority.constitution).game.goals
        # The gateway's inline monitors are the monitors' rules tier, observing.
        assert deployment.gateway.monitors.screen("hello", phase="prompt").blocked_by is None
        assert len(deployment.gateway.monitors) == 2
        # The demo constitution names witnesses, so the log publishes to them.
        assert deployment.witness is not None
        assert "custodes-custody-alarms" in _custodes_threads() - before
    finally:
        deployment.close()
    assert _custodes_threads() - before == set()


def test_a_refused_start_leaves_no_thread_behind(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - name: frontier-general\n    capability: no-such-tier\n"
        "    upstream:\n      base_url: http://127.0.0.1:9/v1\n"
    )
    before = _custodes_threads()
    with pytest.raises(ConfigError, match="no capability 'no-such-tier'"):
        build_deployment(_settings(tmp_path, gateway_models_file=models))
    assert _custodes_threads() - before == set()


def test_reading_alarms_writes_nothing_and_raising_them_is_a_post(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    settings = _settings(tmp_path, custody_alarm_interval_s=0)
    deployment = build_deployment(settings, clock=clock)
    try:
        key = deployment.gateway.keys.create("dana@asi", name="test").secret
        finding = deployment.custody.register(FINDING, b"PoC", principal="alice@lab")
        clock.advance(timedelta(days=8))  # past the constitution's vendor_notice_within: 7d
        with serving(create_app(settings, deployment=deployment)) as url:
            auth = {"authorization": f"Bearer {key}"}
            size = deployment.log.size()
            read = httpx.get(f"{url}/custody/alarms", headers=auth, timeout=10)
            assert read.status_code == 200 and read.json() == {"alarms": []}
            assert deployment.log.size() == size  # a GET recorded nothing
            raised = httpx.post(f"{url}/custody/alarms", headers=auth, timeout=10)
            assert raised.status_code == 200, raised.text
            [alarm] = raised.json()["alarms"]
            assert alarm["kind"] == "vendor-not-notified" and alarm["subject"] == finding.id
            assert deployment.log.size() == size + 1
            again = httpx.get(f"{url}/custody/alarms", headers=auth, timeout=10)
            assert again.json()["alarms"] == [alarm]
            assert httpx.post(f"{url}/custody/alarms", timeout=10).status_code == 401
            assert deployment.log.size() == size + 1
    finally:
        deployment.close()


def test_the_gateway_is_served_only_by_its_entrance_and_documented(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    deployment = build_deployment(settings)
    app = create_app(settings, deployment=deployment)
    try:
        # No FastAPI route serves the gateway's space: the entrance answers it before routing.
        assert not [r for r in app.routes if getattr(r, "path", "").startswith("/v1")]
        with serving(app) as url:
            paths = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
            assert set(paths["/v1/chat/completions"]) == {"post"}
            assert set(paths["/v1/embeddings"]) == {"post"}
            assert set(paths["/v1/models"]) == {"get"}
            no_key = httpx.get(f"{url}/v1/models", timeout=10)
            assert no_key.status_code == 401
            assert no_key.json()["error"]["code"] == "invalid_api_key"
            odd = httpx.get(f"{url}/V1/Models/", timeout=10)  # refused, not routed
            assert odd.status_code == 400 and odd.json()["error"]["code"] == "non_canonical_path"
    finally:
        deployment.close()
