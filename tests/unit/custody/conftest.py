"""Fixtures for the custody tests: a registry on each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.constitution import Constitution, read_constitution
from custodes.custody import CustodyRegistry, KeyEncryptionKey
from custodes.errors import Denial, PolicyDenied
from custodes.log import TransparencyLog


@dataclass(frozen=True)
class Grant:
    id: str


@dataclass
class GrantBook:
    """Grants of capabilities held by principals (the authority's answer, for unit tests)."""

    grants: dict[tuple[str, str], str] = field(default_factory=dict)

    def authorize(self, principal: str, capability: str, /, *, resource: str | None = None) -> Any:
        gid = self.grants.get((principal, capability))
        if gid is None:
            raise PolicyDenied(
                f"{principal} holds no grant of {capability}",
                reasons=[Denial(capability, "a granted quorum")],
            )
        return Grant(gid)


FINDING = {
    "title": "Heap overflow in the PNG decoder",
    "description": "A crafted PNG overflows a heap buffer in the decoder.",
    "vendor": "Example Corp",
    "product": "exampleimg",
    "purl": "pkg:pypi/exampleimg",
    "versions": ["< 2.4.1", "2.4.0"],
    "cwe": "CWE-787",
    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
    "finder": "alice@lab",
    "model": "frontier-cyber-1",
    "session": "sess-42",
    "evidence": "transcript t-9 message 14",
    "policy": "project-zero",
}


# Who is who in the unit tests: a lab whose people find and coordinate, an overseer, the vendor
# of FINDING ("Example Corp"), another vendor and an unrelated partner.
CONSTITUTION = """
version: 1
organisations:
  - {id: lab, kind: developer}
  - {id: aisi, kind: overseer}
  - {id: example, name: Example Corp, kind: vendor}
  - {id: othervendor, name: Other Vendor Inc, kind: vendor}
  - {id: partner, kind: partner}
principals:
  - {id: alice@lab, organisation: lab, roles: [researcher]}
  - {id: mallory@lab, organisation: lab, roles: [researcher]}
  - id: bob@aisi
    organisation: aisi
    roles: [approver]
    key: ed25519:TXJ83dMoMfnw7jIduDJtmpOvLe8QSjmN5gmAEFlkmdk=
  - id: carol@aisi
    organisation: aisi
    roles: [approver]
    key: ed25519:0n/ULAwxP5GlMAO/vkT7V7b3WebuAqQXIbKA46e/FnY=
  - {id: vendor@example, organisation: example, roles: [vendor-contact]}
  - {id: olga@othervendor, organisation: othervendor, roles: [vendor-contact]}
  - {id: pat@partner, organisation: partner, roles: [partner-researcher]}
capabilities:
  - {id: exploit-details, actions: [escrow-read]}
access:
  - id: exploit-details-read
    capability: exploit-details
    requesters: {roles: [researcher]}
    approvers: {roles: [approver]}
    quorum: {approvals: 2, organisations: 1}
    max_duration: 2h
amendment: {signers: [bob@aisi, carol@aisi], threshold: 2}
"""


def constitution(extra: str = "") -> Constitution:
    """The unit tests' constitution, with ``extra`` YAML appended (a custody clause)."""
    return read_constitution(CONSTITUTION + extra, name="unit-test constitution")


@pytest.fixture
def grants() -> GrantBook:
    return GrantBook()


@pytest.fixture
def kek() -> KeyEncryptionKey:
    return KeyEncryptionKey.generate()


@pytest.fixture
def registry(
    engine: Engine,
    transparency_log: TransparencyLog,
    kek: KeyEncryptionKey,
    clock: FrozenClock,
    grants: GrantBook,
) -> Iterator[CustodyRegistry]:
    yield CustodyRegistry(
        engine,
        transparency_log,
        kek,
        authority=grants,
        clock=clock,
        constitution=constitution(),
    )
