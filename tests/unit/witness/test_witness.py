"""The witness core: protocol status codes, CAS state, evidence, durability across restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from custodes.clock import FrozenClock
from custodes.log import ALG_COSIGNATURE_V1, NoteSigner, SignedCheckpoint
from custodes.witness import AddCheckpointError, Witness, verify_evidence
from custodes.witness._tables import witness_evidence, witness_state
from tests.unit.witness.helpers import FakeLog


@pytest.fixture
def witness_signer() -> NoteSigner:
    return NoteSigner.generate("witness.test/w1", alg=ALG_COSIGNATURE_V1)


@pytest.fixture
def witness(
    engine: Engine, witness_signer: NoteSigner, log_signer: NoteSigner, clock: FrozenClock
) -> Witness:
    w = Witness(engine, witness_signer, [log_signer.verifier], clock=clock)
    yield w
    w.close()


def _refused(witness: Witness, body: bytes) -> AddCheckpointError:
    with pytest.raises(AddCheckpointError) as info:
        witness.add_checkpoint(body)
    return info.value


def _state(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [(r.origin, r.size) for r in conn.execute(select(witness_state))]


def test_cosigns_first_checkpoint_and_growth(
    witness: Witness, log_signer: NoteSigner, witness_signer: NoteSigner
) -> None:
    log = FakeLog(log_signer).grow(5)
    line = witness.add_checkpoint(log.request(0))
    cosigned = SignedCheckpoint.from_text(log.checkpoint() + line, log_signer.verifier)
    assert cosigned.cosigned_by([witness_signer.verifier]) == [witness_signer.verifier]
    # The cosignature carries the clock's time (C2SP tlog-cosignature timestamp).
    assert int.from_bytes(cosigned.note.signatures[1].signature[:8]) == 1795348800
    log.grow(7)
    line = witness.add_checkpoint(log.request(5))
    assert SignedCheckpoint.from_text(log.checkpoint() + line, log_signer.verifier).cosigned_by(
        [witness_signer.verifier]
    )
    assert witness.held_sizes() == {log_signer.name: 12}
    # Same size and same root: cosigned again, state unchanged.
    witness.add_checkpoint(log.request(12))
    assert witness.held_sizes() == {log_signer.name: 12}


def test_old_size_mismatch_is_409_with_held_size(
    witness: Witness, log_signer: NoteSigner, engine: Engine
) -> None:
    log = FakeLog(log_signer).grow(5)
    witness.add_checkpoint(log.request(0))
    log.grow(3)
    err = _refused(witness, log.request(0))
    assert (err.status, err.body, err.content_type) == (409, "5\n", "text/x.tlog.size")
    err = _refused(witness, log.request(4))
    assert (err.status, err.body) == (409, "5\n")
    assert _state(engine) == [(log_signer.name, 5)]


def test_rollback_is_refused(witness: Witness, log_signer: NoteSigner, engine: Engine) -> None:
    log = FakeLog(log_signer).grow(10)
    witness.add_checkpoint(log.request(0))
    assert _refused(witness, log.request(10, size=8)).status == 400  # old > size
    assert _refused(witness, log.request(0, size=8)).status == 409
    assert _state(engine) == [(log_signer.name, 10)]


def test_fork_same_size_is_409_and_evidence(
    witness: Witness, log_signer: NoteSigner, engine: Engine
) -> None:
    log = FakeLog(log_signer).grow(10)
    witness.add_checkpoint(log.request(0))
    fork = log.fork(keep=6, n=4)
    err = _refused(witness, fork.request(10))
    assert (err.status, err.body) == (409, "10\n")
    [ev] = witness.evidence()
    assert ev.kind == "same-size"
    finding = verify_evidence(ev, log_signer.verifier)
    assert finding.conclusive
    assert _state(engine) == [(log_signer.name, 10)]


def test_a_fork_with_its_own_valid_proof_is_422_and_conclusive_evidence(
    witness: Witness, log_signer: NoteSigner, engine: Engine
) -> None:
    log = FakeLog(log_signer).grow(10)
    witness.add_checkpoint(log.request(0))
    fork = log.fork(keep=6, n=8)
    # The fork's own proof from 10: it leads to the fork's root, and to the fork's size-10
    # root, which is not the one the witness holds. That proves the fork.
    err = _refused(witness, fork.request(10))
    assert err.status == 422 and "equivocation" in err.message
    [ev] = witness.evidence()
    assert ev.kind == "inconsistent"
    assert verify_evidence(ev, log_signer.verifier).conclusive
    assert _state(engine) == [(log_signer.name, 10)]


@pytest.mark.parametrize("size1", [10, 8])  # 8: a power of two, whose proof omits its root
def test_a_genuine_checkpoint_with_a_corrupted_proof_is_422_and_leaves_no_evidence(
    witness: Witness,
    log_signer: NoteSigner,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    size1: int,
) -> None:
    from custodes.witness import AddCheckpointRequest

    log = FakeLog(log_signer).grow(size1)
    witness.add_checkpoint(log.request(0))
    log.grow(7)
    honest = AddCheckpointRequest.from_bytes(log.request(size1))
    for i in range(len(honest.proof)):
        proof = list(honest.proof)
        proof[i] = bytes([proof[i][0] ^ 1]) + proof[i][1:]
        body = AddCheckpointRequest.build(size1, proof, log.checkpoint())
        err = _refused(witness, body)
        assert err.status == 422 and "does not verify" in err.message
    dropped = AddCheckpointRequest.build(size1, list(honest.proof[:-1]), log.checkpoint())
    assert _refused(witness, dropped).status == 422
    assert witness.evidence() == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert _state(engine) == [(log_signer.name, size1)]
    witness.add_checkpoint(log.request(size1))  # the honest proof is still accepted
    assert _state(engine) == [(log_signer.name, size1 + 7)]


def test_unknown_origin_404_and_bad_signature_403(
    witness: Witness, log_signer: NoteSigner, engine: Engine
) -> None:
    stranger = FakeLog(NoteSigner.generate("other.example/log")).grow(3)
    assert _refused(witness, stranger.request(0)).status == 404
    impostor = FakeLog(NoteSigner.generate(log_signer.name)).grow(3)
    assert _refused(witness, impostor.request(0)).status == 403
    assert _state(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(witness_evidence)).scalar() == 0


def test_state_survives_restart(
    engine: Engine, witness_signer: NoteSigner, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = FakeLog(log_signer).grow(4)
    first = Witness(engine, witness_signer, [log_signer.verifier], clock=clock)
    first.add_checkpoint(log.request(0))
    first.close()
    second = Witness(engine, witness_signer, [log_signer.verifier], clock=clock)
    try:
        assert _refused(second, log.request(0)).body == "4\n"
        log.grow(1)
        second.add_checkpoint(log.request(4))
    finally:
        second.close()


def test_key_must_be_a_cosignature_key(engine: Engine, log_signer: NoteSigner) -> None:
    with pytest.raises(Exception, match="cosignature/v1"):
        Witness(engine, NoteSigner.generate("w"), [log_signer.verifier])


def test_repeated_conflict_is_one_piece_of_evidence(
    witness: Witness, log_signer: NoteSigner
) -> None:
    log = FakeLog(log_signer).grow(10)
    witness.add_checkpoint(log.request(0))
    fork = log.fork(keep=6, n=4)
    for _ in range(3):
        assert _refused(witness, fork.request(10)).status == 409
    assert len(witness.evidence()) == 1
