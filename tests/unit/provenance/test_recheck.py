"""The serving check's re-verification is incremental: a lineage verified again audits only the
log entries written since and checks each stored signature once, yet a byte changed anywhere
it read since (an envelope, a log entry, a stored constitution) is caught at the next check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.authority import Authority
from custodes.clock import FrozenClock
from custodes.errors import InputError, ProvenanceError
from custodes.log import TransparencyLog
from custodes.provenance import Envelope, ModelRegistry, _dsse
from custodes.wiring import GrantAuditor
from tests.unit.provenance.conftest import Pipeline


class Counted:
    """How many DSSE signatures were checked (``Envelope.verify`` calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = Envelope.verify

        def counted(env: Envelope, *args: object, **kwargs: object) -> str:
            self.calls += 1
            return real(env, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Envelope, "verify", counted)
        # What this process verified before (the same test on another backend signs the same
        # bytes under the same keys) is forgotten for the test.
        monkeypatch.setattr(_dsse, "_VERIFIED", {})

    def since(self) -> int:
        calls, self.calls = self.calls, 0
        return calls


def _feeds(log: TransparencyLog) -> int:
    """The entries the grant audit reads: the authority's and the constitution's."""
    return sum(
        1 for _, d in log.entries(0, log.size()) if b'"authority.' in d or b'"constitution.' in d
    )


@contextmanager
def _changed(
    engine: Engine, table: str, key: str, ident: object, column: str, value: bytes
) -> Iterator[None]:
    """``table.column`` of the row ``key = ident`` set to ``value`` for the block."""
    with engine.begin() as conn:
        saved = conn.execute(
            sa.text(f"SELECT {column} FROM {table} WHERE {key} = :k"),  # noqa: S608
            {"k": ident},
        ).scalar_one()
        conn.execute(
            sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"),  # noqa: S608
            {"v": value, "k": ident},
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"),  # noqa: S608
                {"v": saved, "k": ident},
            )


@pytest.fixture
def audit(engine: Engine) -> GrantAuditor:
    return GrantAuditor(engine)


@pytest.fixture
def checker(
    engine: Engine,
    transparency_log: TransparencyLog,
    clock: FrozenClock,
    authority: Authority,
    audit: GrantAuditor,
) -> ModelRegistry:
    """A registry as the serving check's worker holds it: one grant auditor, kept."""
    return ModelRegistry(
        engine,
        transparency_log,
        clock=clock,
        approvals=authority,
        reader=transparency_log,
        grant_audit=audit,
    )


def test_a_recheck_audits_only_new_entries_and_checks_each_signature_once(
    pipeline: Pipeline,
    checker: ModelRegistry,
    audit: GrantAuditor,
    engine: Engine,
    transparency_log: TransparencyLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inputs = pipeline.register_inputs()
    first = pipeline.train(inputs.plan(tag="1"), "1")
    second = pipeline.train(inputs.plan(base=first, tag="2"), "2")
    signatures = Counted(monkeypatch)
    assert checker.verify(second).ok
    assert audit.audited == _feeds(transparency_log)
    assert signatures.since() == 2  # each run's envelope
    # Nothing new: nothing audited, no signature checked.
    assert checker.verify(second).ok
    assert (audit.audited, signatures.since()) == (0, 0)
    # A third run: only its request, approvals and grant are audited, only its envelope checked.
    before, size = _feeds(transparency_log), transparency_log.size()
    third = pipeline.train(inputs.plan(base=second, tag="3"), "3")
    signatures.since()  # registering it checked its signature
    report = checker.verify(third)
    assert report.ok and report.runs == 3, report.problems
    assert audit.audited == _feeds(transparency_log) - before > 0
    assert signatures.since() == 1
    # The incremental audit says what a fresh one says.
    entries = dict(transparency_log.entries(0, transparency_log.size()))
    assert audit.grant_problems(entries) == GrantAuditor(engine).grant_problems(entries)
    # A grant's approval entry changed in the database: caught at the next check (the audit
    # starts over), and verified again once it is back.
    approval = next(i for i, d in entries.items() if b'"approver":"dana@asi"' in d and i >= size)
    data = entries[approval]
    flipped = data.replace(b'"approver":"dana@asi"', b'"approver":"dana@asj"')
    assert flipped != data
    with _changed(engine, "log_entries", "idx", approval, "data", flipped):
        problems = checker.verify(third).problems
        assert audit.audited == _feeds(transparency_log)
        assert any("do not hash to its checkpoint" in p for p in problems), problems
        assert any(p.startswith("run ") and "grant" in p for p in problems), problems
    assert checker.verify(third).ok
    # A stored constitution text changed: the audit starts over under it, and it is caught.
    text = pipeline.authority.constitution.text
    with _changed(
        engine, "constitution_versions", "version", 1, "document", text.replace("dana", "dina")
    ):
        problems = checker.verify(third).problems
        assert audit.audited == _feeds(transparency_log)
        assert any("the stored text of version 1 has digest" in p for p in problems), problems
    assert checker.verify(third).ok


def test_every_flipped_envelope_byte_is_caught_at_the_next_recheck(
    pipeline: Pipeline, checker: ModelRegistry, engine: Engine
) -> None:
    inputs = pipeline.register_inputs()
    weights = pipeline.train(inputs.plan(), "1")
    pipeline.score(weights)
    assert checker.verify(weights).ok  # warm: every signature checked and remembered
    for table in ("provenance_runs", "provenance_evaluations"):
        with engine.connect() as conn:
            ident, envelope = conn.execute(
                sa.text(f"SELECT id, envelope FROM {table} ORDER BY log_index LIMIT 1")  # noqa: S608
            ).one()
        envelope = bytes(envelope)
        for i in range(0, len(envelope), 7):
            flipped = bytearray(envelope)
            flipped[i] ^= 0x01
            with _changed(engine, table, "id", ident, "envelope", bytes(flipped)):
                try:
                    report = checker.verify(weights)
                except (InputError, ProvenanceError):
                    continue  # refused even to read it: caught too
                assert not report.ok, (table, i)
        assert checker.verify(weights).ok
