"""One witness process over real HTTP: bad input never changes state; SIGKILL never rolls back."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from custodes.log import NoteSigner, SignedCheckpoint
from custodes.witness import MAX_BODY_BYTES, AddCheckpointRequest
from tests.integration.witness.support import WitnessProcess
from tests.unit.witness.helpers import FakeLog

pytestmark = pytest.mark.slow


def _post(w: WitnessProcess, body: bytes) -> httpx.Response:
    return httpx.post(w.url + "/add-checkpoint", content=body, timeout=10)


def test_bad_input_gets_4xx_and_changes_nothing(
    witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    w = witnesses[0]
    origin = log_signer.name
    log = FakeLog(log_signer).grow(8)
    good = log.request(0)
    note = log.checkpoint()
    cases = {
        "no blank line": (b"old 0\n" + note.encode().replace(b"\n\n", b"\n"), 400),
        "malformed note": (b"old 0\n\n" + note.encode().split(b"\n\n")[0] + b"\n", 400),
        "leading zero": (good.replace(b"old 0\n", b"old 00\n", 1), 400),
        "not utf-8": (b"old 0\n\n\xff\xfe" + note.encode(), 400),
        "bad proof line": (b"old 3\n!!!notbase64\n\n" + note.encode(), 400),
        "short proof hash": (b"old 3\nAAAA\n\n" + note.encode(), 400),
        "64 proof lines": (AddCheckpointRequest.build(3, [b"\x00" * 32] * 64, note), 400),
        "old above size": (AddCheckpointRequest.build(9, [], note), 400),
        "proof after old 0": (AddCheckpointRequest.build(0, [b"\x00" * 32], note), 400),
        "unknown origin": (FakeLog(NoteSigner.generate("nobody.test/log")).grow(2).request(0), 404),
        "wrong origin in body": (good.replace(origin.encode(), b"other.test/log", 1), 404),
        "forged signature": (FakeLog(NoteSigner.generate(origin)).grow(2).request(0), 403),
        "huge body": (good + b"x" * (MAX_BODY_BYTES + 1), 413),
        "empty body": (b"", 400),
    }
    for name, (body, status) in cases.items():
        resp = _post(w, body)
        assert resp.status_code == status, (name, resp.status_code, resp.text)
    huge_streamed = httpx.post(
        w.url + "/add-checkpoint", timeout=10, content=iter([b"old 0\n" + b"A" * 65536] * 4)
    )
    assert huge_streamed.status_code == 413
    assert httpx.get(w.url + "/add-checkpoint", timeout=5).status_code == 405
    assert w.held()[origin] is None
    assert w.evidence(origin) == []
    # After a valid first checkpoint, a bad proof is 422 and still changes nothing.
    assert _post(w, good).status_code == 200
    log.grow(5)
    body = log.request(8)
    tampered = body.replace(body.split(b"\n")[1], b"A" * 43 + b"=", 1)
    assert _post(w, tampered).status_code == 422
    assert w.held()[origin] == 8
    conflict = _post(w, log.request(0))
    assert (conflict.status_code, conflict.text) == (409, "8\n")
    assert conflict.headers["content-type"] == "text/x.tlog.size"


def test_sigkill_mid_request_never_rolls_back(
    witnesses: list[WitnessProcess], log_signer: NoteSigner
) -> None:
    w = witnesses[1]
    log = FakeLog(log_signer)
    rng = random.Random(6)
    cosigned: list[int] = []  # sizes the witness answered 200 for, in order
    known = 0
    for _round in range(4):
        stop = threading.Event()

        def feed(stop: threading.Event) -> None:
            nonlocal known
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    log.grow(rng.randint(1, 3))
                    try:
                        resp = client.post(w.url + "/add-checkpoint", content=log.request(known))
                    except httpx.TransportError:
                        return
                    if resp.status_code == 409:
                        known = int(resp.text)
                    elif resp.status_code == 200:
                        size = len(log.leaves)
                        text = log.checkpoint() + resp.text
                        signed = SignedCheckpoint.from_text(text, log_signer.verifier)
                        assert signed.cosigned_by([w.verifier]) == [w.verifier]
                        cosigned.append(size)
                        known = size
                    else:
                        raise AssertionError(f"{resp.status_code}: {resp.text}")

        thread = threading.Thread(target=feed, args=(stop,))
        thread.start()
        time.sleep(rng.uniform(0.05, 0.5))
        w.kill()  # SIGKILL while requests are in flight
        stop.set()
        thread.join(10)
        w.start()
        held = w.held()[log_signer.name]
        assert held is not None
        # Everything it cosigned is durable; it holds nothing the log did not sign.
        assert held >= max(cosigned, default=0)
        assert held <= len(log.leaves)
        # A fork at the size it holds is refused across the restart.
        fork = log.fork(keep=held - 1, n=1) if held > 1 else None
        if fork is not None:
            assert _post(w, fork.request(held, size=held)).status_code == 409
        known = held
    assert len(cosigned) > 4


def test_cli_serve_runs_a_witness(tmp_path: Path, log_signer: NoteSigner) -> None:
    # The `custodes witness serve` command itself (the other tests use the lighter
    # `python -m custodes.witness` entry point, which runs the same server).
    w = WitnessProcess("cli.witness.test", tmp_path / "cli", [log_signer.verifier], use_cli=True)
    w.start()
    try:
        log = FakeLog(log_signer).grow(3)
        resp = _post(w, log.request(0))
        assert resp.status_code == 200
        assert SignedCheckpoint.from_text(
            log.checkpoint() + resp.text, log_signer.verifier
        ).cosigned_by([w.verifier]) == [w.verifier]
        assert w.held()[log_signer.name] == 3
    finally:
        w.stop()
