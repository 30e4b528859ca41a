"""Amendment attack samples (``attacks/amendments/*.yaml``): chains of amendments to the demo
constitution, proposed and signed through the authority with the signers' own keys. Every
refused step is refused with exactly the denials its file names, and nothing is adopted.

A step patches the previous version's text (``old -> new``, once each; ``{name-key}`` is a demo
principal's public key, ``{new-key:name}`` a fresh one) and bumps its version; bob@lab proposes
it, ``signers`` approve it, ``acks`` are the acknowledgements the proposal carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from custodes.authority import Authority, SigningKey
from custodes.authority._client import sign_approval
from custodes.clock import FrozenClock
from custodes.coalition import AmendmentEffects
from custodes.constitution import read_constitution
from custodes.log import NoteSigner, TransparencyLog
from tests.unit.authority.conftest import DEMO, Actors

ATTACKS = Path(__file__).parent / "attacks" / "amendments"


def variants() -> Iterator[Any]:
    for path in sorted(ATTACKS.glob("*.yaml")):
        for variant in yaml.safe_load(path.read_text(encoding="utf-8"))["variants"]:
            yield pytest.param(variant, id=f"{path.stem}:{variant['id']}")


def matches(pattern: str, text: str) -> bool:
    regex = "".join(".+?" if p == "*" else re.escape(p) for p in re.split(r"(\*)", pattern))
    return re.fullmatch(regex, text) is not None


def next_version(text: str, patch: list[list[str]], keys: dict[str, str]) -> str:
    for old, new in patch:
        old, new = (_keys(s, keys) for s in (old, new))
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    version = int(re.search(r"^version: (\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return re.sub(r"^version: \d+$", f"version: {version + 1}", text, count=1, flags=re.M)


def _keys(text: str, keys: dict[str, str]) -> str:
    for name in re.findall(r"\{new-key:([a-z]+)\}", text):
        keys.setdefault(f"new:{name}", SigningKey.generate().public_key)
        text = text.replace("{new-key:" + name + "}", keys[f"new:{name}"])
    for name, key in keys.items():
        text = text.replace("{" + name + "-key}", key)
    return text


@pytest.mark.parametrize("variant", list(variants()))
def test_amendment_attack_is_refused_exactly(
    variant: dict[str, Any],
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    demo_keys: dict[str, SigningKey],
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    try:
        authority = Authority(sqlite_engine, log, clock=clock, effects=AmendmentEffects())
        authority.start(read_constitution(DEMO), source="demo")
        actors = Actors(authority, demo_keys, clock)
        keys = {name: key.public_key for name, key in demo_keys.items()}
        text = DEMO.read_text(encoding="utf-8")
        for step in variant["chain"]:
            proposed = next_version(text, step["patch"], keys)
            new = read_constitution(proposed)
            req, sig = actors.signed(
                "amendment",
                "bob@lab",
                purpose="amend",
                amendment={"version": new.version, "digest": new.digest},
                acknowledgements=step.get("acks", []),
            )
            record = authority.propose_amendment(proposed, req, sig)
            for signer in step["signers"]:
                _, signature = sign_approval(record.request, actors.key(signer))
                record = authority.approve(record.id, signer, signature)
            before = log.size()
            if step["adopted"]:
                assert record.status == "adopted", record.rules
                assert authority.constitution.digest == new.digest
                text = proposed
                continue
            assert record.status == "pending"
            assert authority.constitution.version == new.version - 1
            [status] = record.rules
            expected = step.get("denials")
            if expected is None:
                pytest.fail("denials to be named:\n" + "\n".join(status.missing))
            assert len(status.missing) == len(expected), status.missing
            for pattern, got in zip(expected, status.missing, strict=True):
                assert matches(pattern, got), got
            # Nothing claims an adoption: the last entries are the proposal and approvals.
            types = [json.loads(log.entry_data(i))["type"] for i in range(log.size())]
            assert types.count("constitution.amend/v1") == sum(
                1 for s in variant["chain"][: variant["chain"].index(step)] if s["adopted"]
            )
            assert log.size() == before
    finally:
        log.close()


def test_every_amendment_attack_file_has_several_variants() -> None:
    for path in ATTACKS.glob("*.yaml"):
        assert len(yaml.safe_load(path.read_text(encoding="utf-8"))["variants"]) >= 3, path


def test_an_authority_without_a_measurer_fails_closed(
    sqlite_engine: Engine,
    log_signer: NoteSigner,
    clock: FrozenClock,
    demo_keys: dict[str, SigningKey],
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    try:
        authority = Authority(sqlite_engine, log, clock=clock)  # no effects: nothing measured
        authority.start(read_constitution(DEMO), source="demo")
        actors = Actors(authority, demo_keys, clock)
        keys = {name: key.public_key for name, key in demo_keys.items()}
        harmless = [["capabilities:\n", "capabilities:\n  - id: new-tier\n    models: [m]\n"]]
        proposed = next_version(DEMO.read_text(encoding="utf-8"), harmless, keys)
        new = read_constitution(proposed)
        req, sig = actors.signed(
            "amendment",
            "bob@lab",
            purpose="amend",
            amendment={"version": new.version, "digest": new.digest},
            acknowledgements=[],
        )
        record = authority.propose_amendment(proposed, req, sig)
        for signer in ("bob@lab", "dana@asi"):
            _, signature = sign_approval(record.request, actors.key(signer))
            record = authority.approve(record.id, signer, signature)
        assert record.status == "pending"
        assert record.rules[0].missing[0] == (
            "entrenched-effect:amend: amend weakens: not measured (no coalition measurer is "
            "attached to the authority). Weakening an entrenched goal needs 3 amendment signers "
            "of version 1 from 3 organisations (clause log-always-on of version 1; clause "
            "overseer-on-cyber of version 1); has 2 from 2 organisations"
        )
        _, signature = sign_approval(record.request, actors.key("erin@auditor"))
        assert authority.approve(record.id, "erin@auditor", signature).status == "adopted"
    finally:
        log.close()
