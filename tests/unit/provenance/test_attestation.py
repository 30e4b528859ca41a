"""Serving attestations: the sidecar's signed answer, and every way a wrong one is refused."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from custodes.authority import SigningKey
from custodes.clock import SystemClock
from custodes.errors import InputError, ProvenanceError
from custodes.gateway import AttestationSource, AttestedServing
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    Attester,
    ServingVerdict,
    build_attestation,
    check_attestation,
    hash_path,
    new_nonce,
    serve_attester,
    sign_envelope,
)
from tests.unit.provenance.conftest import write_weights

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
SERVER = SigningKey.generate()
OTHER = SigningKey.generate()


def _pub(k: SigningKey) -> bytes:
    from custodes.constitution import decode_public_key

    raw = decode_public_key(k.public_key)
    assert raw is not None
    return raw


def test_an_attestation_names_the_loaded_weights_and_wrong_ones_are_refused(
    tmp_path: Path,
) -> None:
    weights = write_weights(tmp_path / "w", b"w")
    attester = Attester(weights, server="ms@lab", key=SERVER.private, clock=lambda: NOW, rehash_s=0)
    nonce = new_nonce()
    good = attester.attest(nonce)
    ok = {"signer": "ms@lab", "key": _pub(SERVER), "nonce": nonce, "now": NOW}
    assert check_attestation(good, **ok) == hash_path(weights).digest  # type: ignore[arg-type]

    def refused(envelope: bytes, match: str, **changes: object) -> None:
        with pytest.raises((ProvenanceError, InputError), match=match):
            check_attestation(envelope, **{**ok, **changes})  # type: ignore[arg-type]

    refused(good, "another nonce", nonce=new_nonce())  # a replayed answer
    refused(good, "more than", now=NOW + timedelta(minutes=6))  # a stale one
    refused(good, "does not verify", key=_pub(OTHER))  # not the server's key
    refused(good, "none of whom may sign", signer="other@lab")
    # Signed by the right key, but naming another server.
    payload = build_attestation(hash_path(weights).digest, server="x@lab", nonce=nonce, at=NOW)
    forged = sign_envelope(
        payload, payload_type=IN_TOTO_PAYLOAD_TYPE, key=SERVER.private, keyid="ms@lab"
    ).to_json()
    refused(forged, "names server")
    for bad in ("", "zz" * 16, "a" * 15):
        with pytest.raises(InputError, match="nonce"):
            attester.attest(bad)


def test_the_sidecar_answers_over_http_and_sees_changed_weights(tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "w", b"w")
    attester = Attester(
        weights, server="ms@lab", key=SERVER.private, clock=lambda: datetime.now(UTC), rehash_s=0
    )
    httpd = serve_attester(attester, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/attestation"
        nonce = new_nonce()
        r = httpx.get(url, params={"nonce": nonce}, timeout=30)
        assert r.status_code == 200
        before = check_attestation(
            r.content, signer="ms@lab", key=_pub(SERVER), nonce=nonce, now=datetime.now(UTC)
        )
        assert before == hash_path(weights).digest
        assert httpx.get(url, params={"nonce": "x"}, timeout=30).status_code == 400
        assert httpx.get(url.replace("attestation", "other"), timeout=30).status_code == 404
        # One byte of a shard flipped: the next hash attests other weights.
        shard = weights / "shard-00.bin"
        data = bytearray(shard.read_bytes())
        data[0] ^= 1
        shard.write_bytes(bytes(data))
        attester._rehash_s = 0.01
        attester.start()
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while attester.digest == before:
            assert datetime.now(UTC) < deadline
            threading.Event().wait(0.01)
        nonce = new_nonce()
        r = httpx.get(url, params={"nonce": nonce}, timeout=30)
        after = check_attestation(
            r.content, signer="ms@lab", key=_pub(SERVER), nonce=nonce, now=datetime.now(UTC)
        )
        assert after == hash_path(weights).digest != before
    finally:
        attester.stop()
        httpd.shutdown()
        httpd.server_close()


def test_the_sidecar_stops_cleanly_when_its_weights_are_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    weights = write_weights(tmp_path / "w", b"w")
    attester = Attester(
        weights, server="ms@lab", key=SERVER.private, clock=lambda: datetime.now(UTC), rehash_s=0.01
    )
    httpd = serve_attester(attester, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/attestation"
    digest = attester.digest
    # The gateway's side: the sidecar's own reason reaches the refusal.
    check = AttestedServing(
        _Approves(),
        {(digest, "general"): AttestationSource(url, "ms@lab", _pub(SERVER))},
        clock=SystemClock(),
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger="custodes.provenance._attestation"),
            attester,
        ):
            assert check.serving_verdict(digest, "general").approved
            shutil.rmtree(weights)
            deadline = time.monotonic() + 60
            while attester.running:  # the thread ends by itself
                assert time.monotonic() < deadline, "the attester kept running"
                time.sleep(0.01)
            with pytest.raises(ProvenanceError, match="nothing to attest: the weights at .* gone"):
                attester.attest(new_nonce())
            r = httpx.get(url, params={"nonce": new_nonce()}, timeout=30)
            assert r.status_code == 503
            assert "are gone" in r.json()["error"]
            verdict = check.serving_verdict(digest, "general")
            assert not verdict.approved
            assert "answered 503: nothing to attest: the weights at" in verdict.reasons[0]
        gone = [rec for rec in caplog.records if "are gone" in rec.getMessage()]
        assert len(gone) == 1, caplog.records  # one clear line, not one per interval
        assert gone[0].levelno == logging.ERROR and not gone[0].exc_info
    finally:
        attester.stop()
        httpd.shutdown()
        httpd.server_close()


def test_unreadable_weights_are_not_attested_until_they_hash_again(tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "w", b"w")
    attester = Attester(
        weights, server="ms@lab", key=SERVER.private, clock=lambda: datetime.now(UTC), rehash_s=0.01
    )
    digest = attester.digest
    # A shard replaced by something model-signing cannot hash (a symbolic link): the last
    # digest is no longer known to be what the server loaded.
    shard = weights / "shard-00.bin"
    saved = shard.read_bytes()
    shard.unlink()
    shard.symlink_to(weights / "shard-01.bin")
    with attester:
        _wait(lambda: _refuses(attester, "cannot hash the weights at"))
        shard.unlink()
        shard.write_bytes(saved)
        _wait(lambda: not _refuses(attester, ""))
        assert attester.running
    assert not attester.running  # stop() waits for the thread
    nonce = new_nonce()
    assert (
        check_attestation(
            attester.attest(nonce),
            signer="ms@lab",
            key=_pub(SERVER),
            nonce=nonce,
            now=datetime.now(UTC),
        )
        == digest
    )


class _Approves:
    def serving_verdict(self, digest: str, capability: str) -> ServingVerdict:
        return ServingVerdict(digest, True, (), NOW, capability=capability)


def _refuses(attester: Attester, match: str) -> bool:
    try:
        attester.attest(new_nonce())
    except ProvenanceError as exc:
        assert match in exc.message
        return True
    return False


def _wait(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, "not reached within 60 s"
        time.sleep(0.01)
