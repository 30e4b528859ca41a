"""Three witness processes shared by the module's tests; each test gets its own log origin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from custodes.log import NoteSigner
from tests.integration.witness.support import WitnessProcess

_LOGS = [NoteSigner.generate(f"it{i}.integration.test/log") for i in range(16)]


@pytest.fixture(scope="session")
def _witness_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WitnessProcess]]:
    # One set of three witness processes serves every test; each test has its own log origin.
    root = tmp_path_factory.mktemp("witnesses")
    # w1 runs two worker processes on one database (the CAS must hold across processes); it
    # is never SIGKILLed, since that would orphan its workers.
    ws = [
        WitnessProcess(
            f"w{i}.witness.test",
            root / f"w{i}",
            [s.verifier for s in _LOGS],
            workers=2 if i == 1 else 1,
        )
        for i in (1, 2, 3)
    ]
    for w in ws:
        w.launch()
    for w in ws:
        w.wait_ready()
    yield ws
    for w in ws:
        w.stop()


@pytest.fixture
def witnesses(_witness_processes: list[WitnessProcess]) -> list[WitnessProcess]:
    for w in _witness_processes:
        if w.process is None or w.process.poll() is not None:
            w.start()
    return _witness_processes


_next_log = iter(_LOGS)


@pytest.fixture
def log_signer() -> NoteSigner:
    return next(_next_log)
