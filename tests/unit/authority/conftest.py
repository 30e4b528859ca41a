"""An authority over the demo constitution, on each database backend, with a frozen clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from custodes.authority import Authority, RequestRecord, SigningKey
from custodes.authority._client import new_request, sign_approval, sign_request
from custodes.clock import FrozenClock
from custodes.coalition import AmendmentEffects
from custodes.constitution import Constitution, read_constitution
from custodes.log import TransparencyLog

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "constitution.yaml"


@pytest.fixture(scope="session")
def demo() -> Constitution:
    return read_constitution(DEMO)


@pytest.fixture(scope="session")
def demo_keys() -> dict[str, SigningKey]:
    return {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}


@pytest.fixture
def authority(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock, demo: Constitution
) -> Iterator[Authority]:
    a = Authority(engine, transparency_log, clock=clock, effects=AmendmentEffects())
    a.start(demo, source="demo")
    yield a


class Actors:
    """Demo principals acting with their own keys."""

    def __init__(
        self, authority: Authority, keys: dict[str, SigningKey], clock: FrozenClock
    ) -> None:
        self.authority = authority
        self.keys = keys
        self.clock = clock

    def key(self, principal: str) -> SigningKey:
        return self.keys[principal.split("@")[0]]

    def request(
        self,
        principal: str,
        capability: str = "cyber-frontier",
        *,
        duration: int = 3600,
        purpose: str = "triage",
        **extra: Any,
    ) -> RequestRecord:
        req = new_request(
            "grant",
            constitution_version=self.authority.constitution.version,
            requester=principal,
            created=self.clock.now(),
            capability=capability,
            purpose=purpose,
            duration_seconds=duration,
            **extra,
        )
        return self.authority.submit_request(req, sign_request(req, self.key(principal)))

    def approve(
        self, record: RequestRecord, principal: str, signer: str | None = None
    ) -> RequestRecord:
        _, signature = sign_approval(record.request, self.key(signer or principal))
        return self.authority.approve(record.id, principal, signature)

    def signed(self, kind: str, principal: str, **fields: Any) -> tuple[dict[str, Any], str]:
        req = new_request(
            kind,
            constitution_version=self.authority.constitution.version,
            requester=principal,
            created=self.clock.now(),
            **fields,
        )
        return req, sign_request(req, self.key(principal))


@pytest.fixture
def actors(authority: Authority, demo_keys: dict[str, SigningKey], clock: FrozenClock) -> Actors:
    return Actors(authority, demo_keys, clock)


Signed = Callable[..., tuple[dict[str, Any], str]]


@pytest.fixture
def sqlite_actors(
    sqlite_engine: Engine,
    log_signer: Any,
    clock: FrozenClock,
    demo: Constitution,
    demo_keys: dict[str, SigningKey],
) -> Iterator[Actors]:
    """Actors over an authority on SQLite only, for checks that do not concern storage."""
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    a = Authority(sqlite_engine, log, clock=clock, effects=AmendmentEffects())
    a.start(demo, source="demo")
    yield Actors(a, demo_keys, clock)
    log.close()
