"""Serving attestations: the sidecar's signed answer, and every way a wrong one is refused."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from custodes.authority import SigningKey
from custodes.errors import InputError, ProvenanceError
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    Attester,
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
