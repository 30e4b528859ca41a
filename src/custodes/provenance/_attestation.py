"""Serving attestations: a model server's signed statement of the weights it loaded.

The models file's ``weights:`` is what the operator says the upstream serves. An attesting
sidecar beside the model server says it itself: it hashes the weights directory the server
loaded (the same model-signing manifest digest the registry knows them by), re-hashes it at an
interval, and answers ``GET /attestation?nonce=N`` with a DSSE envelope (``keyid``: its
principal) around an in-toto v1 Statement whose subject is that digest and whose predicate
(``SERVING_ATTESTATION_PREDICATE``) names the server, the time and the gateway's nonce (so an
old answer cannot be replayed), signed with the server's workload key.

What it proves, and what not: that a holder of the workload key hashed those bytes at that
time. A compromised host can hash one directory and serve another, or hand its key to anyone;
hardware attestation (a TEE quote binding the measured weights to the running server) is the
production answer, and plugs in behind the gateway's same ``ServingCheck`` interface.
"""

from __future__ import annotations

import logging
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from google.protobuf.message import Error as ProtobufError
from in_toto_attestation.v1 import statement as intoto
from in_toto_attestation.v1 import statement_pb2

from custodes.bounds import check_json_bounds
from custodes.errors import InputError, ProvenanceError
from custodes.log import format_time, parse_time
from custodes.provenance._digests import hex_of, parse_digest
from custodes.provenance._dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from custodes.provenance._manifest import hash_path

__all__ = [
    "SERVING_ATTESTATION_PREDICATE",
    "Attester",
    "build_attestation",
    "check_attestation",
    "new_nonce",
    "serve_attester",
]

SERVING_ATTESTATION_PREDICATE = "https://custodes.dev/provenance/serving-attestation/v1"
_NONCE_CHARS = frozenset("0123456789abcdef")

_log = logging.getLogger(__name__)


def new_nonce() -> str:
    """A fresh challenge: 32 hex digits."""
    return secrets.token_hex(16)


def build_attestation(weights: str, *, server: str, nonce: str, at: datetime) -> bytes:
    """The statement (DSSE payload) that ``server`` serves ``weights``, answering ``nonce``."""
    subject = intoto.ResourceDescriptor(
        name="loaded-weights", digest={"sha256": hex_of(parse_digest(weights))}
    ).pb
    predicate = {
        "server": f"urn:custodes:principal:{server}",
        "nonce": nonce,
        "attestedAt": format_time(at),
    }
    st = intoto.Statement([subject], SERVING_ATTESTATION_PREDICATE, predicate)
    st.validate()
    text: str = json_format.MessageToJson(st.pb, indent=None)
    return text.encode("utf-8")


def check_attestation(
    envelope: bytes,
    *,
    signer: str,
    key: bytes,
    nonce: str,
    now: datetime,
    max_age: timedelta = timedelta(minutes=5),
) -> str:
    """The weights digest a serving attestation vouches for, once every check passes.

    Raises:
        InputError: not a DSSE envelope of an in-toto v1 serving attestation.
        TooLarge: the envelope is over its limits.
        ProvenanceError: not signed by ``signer``'s key, another server or nonce than asked,
            or attested more than ``max_age`` from ``now``.
    """
    env = Envelope.from_json(envelope)
    env.verify({signer: key}, payload_type=IN_TOTO_PAYLOAD_TYPE)
    try:
        doc = orjson.loads(env.payload)
        check_json_bounds(doc, where="attestation")
        pb = json_format.ParseDict(doc, statement_pb2.Statement())
        intoto.Statement.copy_from_pb(pb).validate()
    except (orjson.JSONDecodeError, ProtobufError, json_format.Error, ValueError) as exc:
        raise InputError(f"not an in-toto v1 Statement: {exc}", where="attestation") from exc
    if pb.predicate_type != SERVING_ATTESTATION_PREDICATE or len(doc["subject"]) != 1:
        raise InputError(
            "not a serving attestation of one set of weights",
            where="attestation.predicateType",
            expected=SERVING_ATTESTATION_PREDICATE,
        )
    predicate = doc["predicate"]
    if predicate.get("server") != f"urn:custodes:principal:{signer}":
        raise ProvenanceError(
            f"the attestation names server {str(predicate.get('server'))[:200]!r}, not {signer!r}"
        )
    if predicate.get("nonce") != nonce:
        raise ProvenanceError("the attestation answers another nonce: a replayed or stale answer")
    at = parse_time(str(predicate.get("attestedAt", "")), where="attestation.attestedAt")
    if abs(now - at) > max_age:
        raise ProvenanceError(
            f"the attestation was made at {format_time(at)}, more than {max_age} from now"
        )
    return parse_digest(
        (doc["subject"][0].get("digest") or {}).get("sha256"), where="attestation.subject"
    )


class Attester:
    """The sidecar's state: the digest of the weights at ``path``, re-hashed every
    ``rehash_s`` seconds, and the signed answer to a nonce.

    Args:
        path: the weights directory (or file) the model server loaded.
        server: the principal whose workload key signs (the ``keyid``).
        key: that workload key (``SigningKey.private``).
        clock: the time of each attestation.
        rehash_s: seconds between hashes (0: hash only at start).

    While the weights cannot be hashed (unreadable), nothing is attested (``attest`` raises,
    the sidecar answers 503, the gateway refuses the model); once the directory is gone the
    thread logs so once and ends. Use it as a context manager, or ``start``/``stop``.
    """

    def __init__(
        self,
        path: Path,
        *,
        server: str,
        key: Ed25519PrivateKey,
        clock: Callable[[], datetime],
        rehash_s: float = 60.0,
    ) -> None:
        self.path = path
        self.server = server
        self._key = key
        self._clock = clock
        self._rehash_s = rehash_s
        self.digest = hash_path(path).digest
        # Why nothing can be attested now (the weights cannot be hashed), or None.
        self._problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Re-hash in a daemon thread every ``rehash_s`` seconds (if more than 0)."""
        if self._rehash_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._rehash, name="attester", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the re-hashing thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop re-hashing and wait up to ``timeout`` seconds for a hash under way to end.

        Joining matters to whoever owns the directory: once this returns, the thread no longer
        reads it (a test's temporary directory can go), nor logs about it.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> Attester:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _rehash(self) -> None:
        while not self._stop.wait(self._rehash_s):
            if not self.path.exists():
                # The directory the server loaded is gone (uninstalled, or a test's temporary
                # directory removed): nothing is left to vouch for, and hashing nothing every
                # interval would only repeat the error. The sidecar answers 503 from now on, so
                # the gateway refuses the model at its next check (fail closed).
                self._problem = f"the weights at {self.path} are gone"
                _log.error(
                    "the weights at %s are gone: the attester stops re-hashing and attests "
                    "nothing from now on (restart it once the weights are back)",
                    self.path,
                )
                return
            try:
                digest = hash_path(self.path).digest
            except (OSError, InputError) as exc:
                # Unreadable now (a file being replaced, a permission): the last digest is no
                # longer known to be what is loaded, so nothing is attested until a hash works.
                text = exc.message if isinstance(exc, InputError) else str(exc)
                text = text.removeprefix(f"cannot hash {self.path}: ")
                problem = f"cannot hash the weights at {self.path}: {text}"
                if problem != self._problem:
                    _log.error("%s (nothing is attested until a hash succeeds)", problem)
                self._problem = problem
                continue
            except RuntimeError:
                # The interpreter is exiting: model-signing's thread pool takes no more work.
                # A daemon thread has nothing to report then.
                if not threading.main_thread().is_alive():
                    return
                raise
            if digest != self.digest:
                _log.warning("the weights at %s changed: now %s", self.path, digest)
            elif self._problem is not None:
                _log.warning("the weights at %s hash again: %s", self.path, digest)
            self.digest = digest
            self._problem = None

    def attest(self, nonce: str) -> bytes:
        """The signed attestation answering ``nonce`` (DSSE envelope JSON).

        Raises:
            InputError: the nonce is not 16 to 64 hex digits.
            ProvenanceError: the weights cannot be hashed now (gone or unreadable), so what
                the server has loaded is not known.
        """
        if not 16 <= len(nonce) <= 64 or set(nonce) - _NONCE_CHARS:
            raise InputError("a nonce of 16 to 64 lowercase hex digits", where="nonce")
        problem = self._problem
        if problem is not None:
            raise ProvenanceError(f"nothing to attest: {problem}")
        payload = build_attestation(self.digest, server=self.server, nonce=nonce, at=self._clock())
        return sign_envelope(
            payload,
            payload_type=IN_TOTO_PAYLOAD_TYPE,
            key=self._key,
            keyid=self.server,
        ).to_json()


def serve_attester(attester: Attester, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering ``GET /attestation?nonce=N`` (call ``serve_forever``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            nonce = urllib.parse.parse_qs(url.query).get("nonce", [""])[0]
            if url.path != "/attestation":
                self._send(404, b'{"error": "not found: GET /attestation?nonce=<hex>"}')
                return
            try:
                body = attester.attest(nonce)
            except InputError as exc:
                self._send(400, orjson.dumps({"error": exc.message, "where": exc.where}))
                return
            except ProvenanceError as exc:
                self._send(503, orjson.dumps({"error": exc.message}))
                return
            self._send(200, body)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            _log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)
