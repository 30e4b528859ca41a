"""The authority's attack samples (``attacks/*.yaml``, sigstore style): every variant of every
class is refused with its exact error and leaves nothing in the log that claims it happened.

See ``attacks/README.md`` for the steps a variant is made of.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

import custodes.errors
from custodes.authority import Authority, SigningKey
from custodes.authority._client import new_request, sign_approval, sign_renewal, sign_request
from custodes.clock import FrozenClock
from custodes.constitution import read_constitution
from custodes.log import NoteSigner, TransparencyLog
from tests.unit.authority.conftest import DEMO

ATTACKS = Path(__file__).parent / "attacks"


def variants() -> Iterator[Any]:
    for path in sorted(ATTACKS.glob("*.yaml")):
        for variant in yaml.safe_load(path.read_text(encoding="utf-8"))["variants"]:
            yield pytest.param(variant, id=f"{path.stem}:{variant['id']}")


def matches(pattern: str, text: str) -> bool:
    """Exact, except that ``*`` stands for a time (or any other run of characters)."""
    regex = "".join(
        ".+?" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)
    )
    return re.fullmatch(regex, text) is not None


class Runner:
    def __init__(
        self,
        authority: Authority,
        log: TransparencyLog,
        clock: FrozenClock,
        keys: dict[str, SigningKey],
    ) -> None:
        self.authority = authority
        self.log = log
        self.clock = clock
        self.keys = keys
        self.names: dict[str, str] = {}
        self.bodies: dict[str, tuple[str, dict[str, Any], str]] = {}
        self.records: dict[str, dict[str, Any]] = {}

    def key(self, step: dict[str, Any]) -> SigningKey:
        return self.keys[step.get("key") or step["as"].split("@")[0]]

    def types_since(self, size: int) -> list[str]:
        return [json.loads(self.log.entry_data(i))["type"] for i in range(size, self.log.size())]

    def fill(self, text: str) -> str:
        for name, value in self.names.items():
            text = text.replace("{" + name + "}", value)
        return text

    def signed(self, kind: str, step: dict[str, Any], **fields: Any) -> tuple[dict[str, Any], str]:
        req = new_request(
            kind,
            constitution_version=self.authority.constitution.version,
            requester=step["as"],
            created=self.clock.now(),
            **fields,
        )
        return req, sign_request(req, self.key(step))

    def request_of(self, ref: str) -> tuple[str, dict[str, Any]]:
        if ref.startswith("review-of:"):
            grant = self.authority.grant("bg-" + self.names[ref.split(":", 1)[1]])
            assert grant.review_request_id is not None
            record = self.authority.request(grant.review_request_id)
            return record.id, dict(record.request)
        record_id = self.names[ref]
        return record_id, self.records[record_id]

    def run(self, step: dict[str, Any]) -> Any:
        a = self.authority
        if "advance" in step:
            self.clock.advance(timedelta(seconds=step["advance"]))
            return None
        if "sweep" in step:
            return a.sweep()
        if "break_glass" in step:
            s = step["break_glass"]
            req, sig = self.signed(
                "break-glass",
                s,
                capability=s.get("capability", "weights-export"),
                rule=s.get("rule", "lab-incident-weights"),
                purpose=s.get("purpose", "serving cluster compromised"),
                duration_seconds=s.get("duration", 600),
            )
            grant = a.break_glass(req, sig)
            name = s.get("name") or ("first" if "first" not in self.names else grant.id)
            self.names.setdefault(name, grant.id.removeprefix("bg-"))
            self.bodies[name] = ("break-glass", req, sig)
            return grant
        if "request" in step:
            s = step["request"]
            req, sig = self.signed(
                "grant",
                s,
                capability=s.get("capability", "cyber-frontier"),
                purpose=s.get("purpose", "triage"),
                duration_seconds=s.get("duration", 3600),
            )
            record = a.submit_request(req, sig)
            self.names[s.get("name", record.id)] = record.id
            self.records[record.id] = req
            self.bodies[s.get("name", record.id)] = ("grant", req, sig)
            return record
        if "replay" in step:
            kind, req, sig = self.bodies[step["replay"]]
            return a.break_glass(req, sig) if kind == "break-glass" else a.submit_request(req, sig)
        if "approve" in step:
            s = step["approve"]
            record_id, req = self.request_of(s["request"])
            _, signature = sign_approval(req, self.key(s))
            return a.approve(record_id, s["as"], signature)
        if "renew" in step:
            s = step["renew"]
            record_id, req = self.request_of(s["request"])
            at, signature = sign_renewal(
                req, self.key(s), self.clock.now() + timedelta(seconds=s.get("at", 0))
            )
            return a.renew_approval(record_id, s["as"], at, signature)
        if "replay_approval" in step:
            s = step["replay_approval"]
            record_id, _ = self.request_of(s["request"])
            [mine] = [x for x in a.request(record_id).approvals if x["approver"] == s["as"]]
            now = self.clock.now().isoformat().replace("+00:00", "Z")
            return a.renew_approval(record_id, s["as"], now, mine["signature"])
        if "authorize" in step:
            s = step["authorize"]
            return a.authorize(s["as"], s["capability"])
        raise AssertionError(f"unknown step {step}")


def demo_text(keys: dict[str, SigningKey], patch: list[list[str]]) -> str:
    text = DEMO.read_text(encoding="utf-8")
    for old, new in patch:
        assert old in text, old
        for name, key in keys.items():
            new = new.replace("{" + name + "-key}", key.public_key)
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("variant", list(variants()))
def test_attack_variant_is_refused_exactly(
    variant: dict[str, Any],
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    demo_keys: dict[str, SigningKey],
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    try:
        constitution = read_constitution(demo_text(demo_keys, variant.get("patch", [])))
        authority = Authority(sqlite_engine, log, clock=clock)
        authority.start(constitution, source="attack")
        runner = Runner(authority, log, clock, demo_keys)
        refused = 0
        for step in variant["steps"]:
            before = log.size()
            expect = step.get("expect")
            if expect is None or expect == "allowed":
                result = runner.run(step)
                if "logs" in step:
                    assert runner.types_since(before) == step["logs"]
                if "outcome" in step:
                    assert result.status == step["outcome"]
                continue
            error = getattr(custodes.errors, expect["error"])
            with pytest.raises(custodes.errors.Error) as info:
                runner.run(step)
            assert type(info.value) is error, info.value.diagnostics()
            assert matches(runner.fill(expect["message"]), info.value.message), info.value.message
            if "reason" in expect:
                assert isinstance(info.value, custodes.errors.PolicyDenied)
                first = info.value.reasons[0]
                assert matches(runner.fill(expect["reason"]), f"{first.rule}: {first.missing}"), (
                    f"{first.rule}: {first.missing}"
                )
            # Refused before anything was logged: no entry claims what did not happen.
            assert runner.types_since(before) == step.get("logs", [])
            refused += 1
        assert refused or any("outcome" in s for s in variant["steps"])
    finally:
        log.close()


def test_every_attack_file_has_several_variants() -> None:
    counts = {
        p.stem: len(yaml.safe_load(p.read_text(encoding="utf-8"))["variants"])
        for p in ATTACKS.glob("*.yaml")
    }
    assert set(counts) >= {"break_glass_limits", "replayed_signed_bodies", "approvals"}
    assert min(counts.values()) >= 3, counts
