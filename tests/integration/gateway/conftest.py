"""custodes on real uvicorn (loopback) in front of the test upstream, for the official client."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from custodes.authority import Authority, SigningKey
from custodes.config import Settings
from custodes.gateway import CALL, DetectorMonitor, Gateway, MonitorRegistry
from custodes.log import Entry
from custodes.monitors import Category, Detection, Span
from custodes.server import create_app
from custodes.wiring import Deployment, build_deployment
from tests.support.threaded import serve
from tests.support.upstream import TestUpstream

ROOT = Path(__file__).resolve().parents[3]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``real_model`` tests run only when asked for (``-m real_model``)."""
    if "real_model" in (config.getoption("markexpr") or ""):
        return
    opt_in = [item for item in items if item.get_closest_marker("real_model")]
    if opt_in:
        config.hook.pytest_deselected(items=opt_in)
        items[:] = [item for item in items if not item.get_closest_marker("real_model")]


class LaunchCodeDetector:
    """A rules-tier detector for the tests: 'launch code' is a command-override attempt."""

    name = "launch-codes"
    categories: tuple[Category, ...] = ("command_override",)

    def detect(self, text: str) -> list[Detection]:
        return [
            Detection(
                self.name,
                "command_override",
                1.0,
                "mentions a launch code",
                spans=(Span(m.start(), m.end()),),
            )
            for m in re.finditer(r"launch code", text, re.IGNORECASE)
        ]


class EchoCounter:
    """An observing detector: flags replies that echo the prompt (never blocks)."""

    name = "echo-observer"
    categories: tuple[Category, ...] = ("oversight_evasion",)

    def detect(self, text: str) -> list[Detection]:
        return (
            [Detection(self.name, "oversight_evasion", 0.9, "echoes the prompt")]
            if text.startswith("echo:")
            else []
        )


@dataclass
class GatewayServer:
    base_url: str
    ctx: Deployment
    upstream: TestUpstream
    data_dir: Path
    settings: Settings
    clients: list[openai.OpenAI] = field(default_factory=list)

    @property
    def gateway(self) -> Gateway:
        return self.ctx.gateway

    @property
    def authority(self) -> Authority:
        return self.ctx.authority

    def key(self, principal: str) -> str:
        return self.gateway.keys.create(principal, name="test").secret

    def client(self, key: str, **kwargs: Any) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=key, max_retries=0, **kwargs)
        self.clients.append(client)
        return client

    def calls(self) -> list[Entry]:
        """Every gateway.call/v1 entry in the log, in order."""
        entries = [Entry.from_json(self.ctx.log.entry_data(i)) for i in range(self.ctx.log.size())]
        return [e for e in entries if e.type == CALL]


@pytest.fixture
def upstream() -> Iterator[TestUpstream]:
    with TestUpstream(api_key="upstream-secret") as up:
        yield up


def write_models(path: Path, upstream: Any, *, timeout_s: float = 10) -> Path:
    path.write_text(f"""
models:
  - name: frontier-general
    capability: general
    upstream:
      base_url: "{upstream.base_url}"
      api_key_env: TEST_UPSTREAM_KEY
      model: test-model
      timeout_s: {timeout_s}
  - name: frontier-cyber
    capability: cyber-frontier
    upstream:
      base_url: "{upstream.base_url}"
      api_key_env: TEST_UPSTREAM_KEY
      timeout_s: {timeout_s}
  - name: demo-scripted
    capability: general
    upstream:
      scripted: {ROOT / "examples" / "scripted-replies.yaml"}
  - name: unreachable
    capability: general
    upstream:
      base_url: "http://127.0.0.1:9/v1"
      timeout_s: 2
""")
    return path


def write_constitution(path: Path) -> Path:
    """The demo constitution, with the test-only models added to the general tier."""
    text = (ROOT / "examples" / "constitution.yaml").read_text()
    marker = "models: [frontier-general, frontier-local]"
    assert marker in text, f"the demo constitution's general tier is no longer {marker!r}"
    added = "models: [frontier-general, frontier-local, demo-scripted, unreachable]"
    path.write_text(text.replace(marker, added))
    return path


def demo_key(name: str) -> SigningKey:
    """A demo principal's private key (examples/keys: DEMO-ONLY keys)."""
    return SigningKey.from_file(ROOT / "examples" / "keys" / f"{name}.key")


@contextmanager
def running_gateway(tmp: Path, upstream: Any, *, timeout_s: float = 10) -> Iterator[GatewayServer]:
    """custodes with the real authority (demo constitution) and two test monitors."""
    constitution = write_constitution(tmp / "constitution.yaml")
    settings = Settings(
        data_dir=tmp / "data",
        demo=True,
        constitution_file=constitution,
        gateway_models_file=write_models(tmp / "models.yaml", upstream, timeout_s=timeout_s),
        gateway_key_poll_ms=20,
        log_batch_wait_ms=0,
    )
    ctx = build_deployment(
        settings,
        gateway_monitors_override=MonitorRegistry(
            [
                DetectorMonitor(LaunchCodeDetector(), mode="gating"),
                DetectorMonitor(EchoCounter(), mode="observing", phases=("response",)),
            ]
        ),
    )
    server, thread, port = serve(create_app(settings, deployment=ctx))
    running = GatewayServer(f"http://127.0.0.1:{port}", ctx, upstream, tmp / "data", settings)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        server.should_exit = True
        thread.join(20)
        ctx.close()


@pytest.fixture
def gateway_server(
    tmp_path: Path, upstream: TestUpstream, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GatewayServer]:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "upstream-secret")
    with running_gateway(tmp_path, upstream) as running:
        yield running


@pytest.fixture(scope="module")
def shared_gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """One server for a module of tests that each look only at what they added."""
    saved = os.environ.get("TEST_UPSTREAM_KEY")
    os.environ["TEST_UPSTREAM_KEY"] = "upstream-secret"
    try:
        with (
            TestUpstream(api_key="upstream-secret") as up,
            running_gateway(tmp_path_factory.mktemp("gateway"), up) as running,
        ):
            yield running
    finally:
        if saved is None:
            os.environ.pop("TEST_UPSTREAM_KEY", None)
        else:
            os.environ["TEST_UPSTREAM_KEY"] = saved
