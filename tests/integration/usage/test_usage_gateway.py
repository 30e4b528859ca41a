"""Concentration of use on a real server: uvicorn on loopback, the real openai client, the
gateway in front of a test upstream speaking the OpenAI wire protocol over a socket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from custodes.config import Settings
from custodes.gateway import CALL
from custodes.log import Entry, format_time
from custodes.server import create_app
from custodes.usage import ALARM, delegation_message, override_message
from custodes.wiring import Deployment, build_deployment
from tests.integration.gateway.conftest import demo_key, write_models
from tests.support.threaded import serve
from tests.support.upstream import TestUpstream
from tests.support.usage import usage_document

RULES = {
    "rules": [
        {
            "id": "general-person-share",
            "kind": "max-person-share",
            "capability": "general",
            "measure": "calls",
            "share": 0.4,
            "window": "7d",
            "gate": True,
            "min_calls": 4,
        }
    ]
}


@pytest.fixture
def upstream() -> Iterator[TestUpstream]:
    with TestUpstream(api_key="upstream-secret") as up:
        yield up


@contextmanager
def usage_server(tmp: Path, upstream: TestUpstream) -> Iterator[tuple[str, Deployment]]:
    doc = usage_document(**RULES)
    general = next(c for c in doc["capabilities"] if c["id"] == "general")
    general["models"] = ["frontier-general", "demo-scripted", "unreachable"]
    (tmp / "constitution.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    settings = Settings(
        data_dir=tmp / "data",
        demo=True,
        constitution_file=tmp / "constitution.yaml",
        gateway_models_file=write_models(tmp / "models.yaml", upstream),
        gateway_key_poll_ms=20,
        usage_alarm_interval_s=0.1,
    )
    deployment = build_deployment(settings)
    server, thread, port = serve(create_app(settings, deployment=deployment))
    try:
        yield f"http://127.0.0.1:{port}", deployment
    finally:
        server.should_exit = True
        thread.join(20)
        deployment.close()


def ask(base: str, key: str, **headers: str) -> openai.types.chat.ChatCompletion:
    with openai.OpenAI(
        base_url=f"{base}/v1", api_key=key, max_retries=0, default_headers=headers
    ) as client:
        return client.chat.completions.create(
            model="frontier-general", messages=[{"role": "user", "content": "hello"}]
        )


def test_a_director_of_many_agents_is_one_concentration_gated_until_an_overseer_approves(
    tmp_path: Path, upstream: TestUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "upstream-secret")
    with usage_server(tmp_path, upstream) as (base, d):
        keys = {
            p: d.gateway.keys.create(p, name="t").secret
            for p in ["frank@cyberdef", *(f"agent-{i}@lab" for i in range(5)), "sub-agent@lab"]
        }
        for _ in range(3):
            ask(base, keys["frank@cyberdef"])
        for i in range(3):  # alice's agents: 1/4, 2/5 of the calls, then 40% exactly
            ask(base, keys[f"agent-{i}@lab"])
        # Now alice (through her agents) holds 3 of 6 calls: 50% > 40%; her next agent is
        # refused, and so is one reached through the orchestrator she directs.
        with pytest.raises(openai.PermissionDeniedError, match="alice@lab holds 50.0% of general"):
            ask(base, keys["agent-3@lab"])
        # The orchestrator may be directed by alice or grace. Naming grace, who never said
        # she directs it, would launder alice's use through her: refused.
        via = "orchestrator@lab,grace@bankcert"
        with pytest.raises(openai.PermissionDeniedError, match="grace@bankcert has no delegation"):
            ask(base, keys["sub-agent@lab"], **{"x-custodes-on-behalf-of": via})
        until = format_time(d.clock.now() + timedelta(hours=8))
        delegation = {"workload": "orchestrator@lab", "director": "alice@lab", "until": until}
        message = delegation_message("orchestrator@lab", "alice@lab", until)
        forged = httpx.post(
            f"{base}/usage/delegations",
            json={
                **delegation,
                "director": "grace@bankcert",
                "signature": demo_key("alice").sign(message),
            },
        )
        assert forged.status_code == 422 and "does not verify" in forged.text
        signed = httpx.post(
            f"{base}/usage/delegations",
            json={**delegation, "signature": demo_key("alice").sign(message)},
        )
        assert signed.status_code == 201, signed.text
        [listed] = httpx.get(f"{base}/usage/delegations").json()
        assert (
            listed["director"] == "alice@lab" and listed["log_index"] == signed.json()["log_index"]
        )
        with pytest.raises(openai.PermissionDeniedError, match="alice@lab holds 50.0%"):
            ask(
                base,
                keys["sub-agent@lab"],
                **{"x-custodes-on-behalf-of": "orchestrator@lab,alice@lab"},
            )
        with pytest.raises(
            openai.PermissionDeniedError,
            match="unknown principal .mallory@lab. named as the director",
        ):
            ask(base, keys["sub-agent@lab"], **{"x-custodes-on-behalf-of": "mallory@lab"})

        calls = [Entry.from_json(d.log.entry_data(i)) for i in range(d.log.size())]
        answered = [e for e in calls if e.type == CALL and e.body["outcome"] == "answered"]
        chains = [e.body["on_behalf_of"]["chain"] for e in answered]
        assert chains.count(["frank@cyberdef"]) == 3
        assert ["agent-1@lab", "alice@lab"] in chains

        figures = httpx.get(f"{base}/usage", params={"capability": "general", "window": "week"})
        assert figures.status_code == 200
        week = figures.json()["tiers"][0]
        # Beside who did use the tier, who could open it (the coalition analysis): alice alone.
        assert figures.json()["could_open"] == {"general": ["alice@lab"]}
        assert week["persons_calls"]["top"] == "alice@lab"
        assert week["persons_calls"]["top_share"] == pytest.approx(0.5)
        assert week["persons_calls"]["distinct"] == 2  # five agents, two persons
        assert httpx.get(f"{base}/usage", params={"window": "month"}).status_code == 400

        # The breach is recorded once by the server's watcher, as an alarm entry in the log.
        # Each alarm is claimed in the database first, then appended: wait for both entries.
        deadline = time.monotonic() + 60
        while sum(a["log_index"] is not None for a in httpx.get(f"{base}/usage/alarms").json()) < 2:
            assert time.monotonic() < deadline, "no alarm was raised"
            time.sleep(0.1)
        for _ in range(3):  # several more rounds (run here, so not a matter of timing)
            d.usage.raise_alarms()
        # frank's 3 calls were above 40% from the fourth call of the tier on, alice's from the
        # sixth; each breach is one alarm, however many rounds saw it.
        alarms = httpx.get(f"{base}/usage/alarms").json()
        assert sorted((a["rule"], a["subject"]) for a in alarms) == [
            ("general-person-share", "alice@lab"),
            ("general-person-share", "frank@cyberdef"),
        ]
        types = [Entry.from_json(d.log.entry_data(i)).type for i in range(d.log.size())]
        assert types.count(ALARM) == 2

        until = format_time(d.clock.now() + timedelta(hours=2))
        reason = "exercise with the partner CERTs"
        message = override_message("general-person-share", "alice@lab", until, reason)
        body = {
            "rule": "general-person-share",
            "subject": "alice@lab",
            "approver": "dana@asi",
            "until": until,
            "reason": reason,
            "signature": demo_key("dana").sign(message),
        }
        forged = httpx.post(f"{base}/usage/overrides", json={**body, "approver": "bob@lab"})
        assert forged.status_code == 422 and "not an overseer" in forged.text
        assert httpx.post(f"{base}/usage/overrides", json=body).status_code == 201
        assert ask(base, keys["agent-3@lab"]).choices  # let through by the overseer
