"""Start a witness server: key, database, trusted logs, uvicorn."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.errors import ConfigError, InputError
from custodes.log import ALG_COSIGNATURE_V1, ALG_ED25519, NoteSigner, NoteVerifier

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["app_from_environment", "cosignature_signer", "read_log_keys", "serve_witness"]


def read_log_keys(vkeys: Sequence[str], logs_file: Path | None = None) -> list[NoteVerifier]:
    """Log verifier keys from arguments and from a file of ``log <vkey> [url]`` or vkey lines.

    Raises:
        InputError: a key is malformed (the file's line is named) or the file is unreadable.
    """
    keys = [NoteVerifier.from_key(k) for k in vkeys]
    if logs_file is not None:
        try:
            text = logs_file.read_text()
        except OSError as exc:
            raise InputError(f"cannot read {logs_file}: {exc.strerror}") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            # C2SP tlog-policy "log <vkey> [url]" lines, or a bare vkey; other lines are skipped.
            if words[0] in ("witness", "group", "quorum"):
                continue
            vkey = words[1] if words[0] == "log" and len(words) >= 2 else words[0]
            try:
                keys.append(NoteVerifier.from_key(vkey))
            except InputError as exc:
                exc.where = f"{logs_file}:{number}"
                raise
    return keys


_WORKER_CONFIG = "WITNESS_WORKER_CONFIG_FOR_CUSTODES"  # how worker processes get their setup


def cosignature_signer(skey: str) -> NoteSigner:
    """A cosignature/v1 signer from a signed-note signer key.

    A type 0x04 key is used as is. A plain Ed25519 (0x01) key is accepted the way
    transparency-dev/formats ``NewSignerForCosignatureV1`` accepts it: same private key, key ID
    recomputed with type 0x04 (C2SP tlog-cosignature).

    Raises:
        InputError: the key is malformed or not Ed25519.
    """
    signer = NoteSigner.from_key(skey)
    if signer.alg == ALG_COSIGNATURE_V1:
        return signer
    if signer.alg != ALG_ED25519:
        raise InputError("a witness key must be an Ed25519 signer key")
    seed = base64.b64decode(skey.strip().split("+", 4)[4])[1:]
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    key_id = hashlib.sha256(
        signer.name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public
    ).digest()[:4]
    raw = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + seed).decode()
    return NoteSigner.from_key(f"PRIVATE+KEY+{signer.name}+{key_id.hex()}+{raw}")


def _load_signer(key_file: Path) -> NoteSigner:
    """The witness's cosignature signer from its key file.

    Raises:
        ConfigError: the file cannot be read, or does not hold a witness key.
    """
    try:
        return cosignature_signer(key_file.read_text())
    except OSError as exc:
        raise ConfigError(
            f"cannot read witness key {key_file}: {exc.strerror}",
            hint="create one with `custodes witness keygen NAME`",
        ) from exc
    except InputError as exc:
        raise ConfigError(f"witness key {key_file} is malformed: {exc.message}") from exc


def app_from_environment() -> Starlette:
    """The app a uvicorn worker process builds (``--workers`` > 1) from the parent's setup."""
    from custodes.store import create_db_engine
    from custodes.witness._server import create_witness_app
    from custodes.witness._witness import Witness

    config = json.loads(os.environ[_WORKER_CONFIG])
    signer = _load_signer(Path(config["key"]))
    logs = [NoteVerifier.from_key(k) for k in config["logs"]]
    return create_witness_app(Witness(create_db_engine(config["db"]), signer, logs))


def serve_witness(
    key_file: Path,
    database_url: str,
    logs: Sequence[NoteVerifier],
    *,
    host: str = "127.0.0.1",
    port: int = 8090,
    workers: int = 1,
) -> None:
    """Run the witness server until interrupted.

    With ``workers`` > 1, uvicorn runs that many processes on one database. Each reads the
    held checkpoint inside its write transaction (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
    ``SELECT ... FOR UPDATE``), so the compare-and-swap holds across processes.

    Raises:
        ConfigError: the key is missing or malformed, or no log is given.
        StoreError: the database cannot be opened or migrated.
    """
    import uvicorn

    from custodes.store import create_db_engine
    from custodes.witness._server import create_witness_app
    from custodes.witness._witness import Witness, migrate_witness

    signer = _load_signer(key_file)
    if not logs:
        raise ConfigError("no logs to witness", hint="give --log VKEY or --logs-file FILE")
    engine = create_db_engine(database_url)
    migrate_witness(engine)
    if workers > 1:
        engine.dispose()
        os.environ[_WORKER_CONFIG] = json.dumps(
            {"key": str(key_file.resolve()), "db": database_url, "logs": [k.to_key() for k in logs]}
        )
        uvicorn.run(
            "custodes.witness._run:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        return
    app = create_witness_app(Witness(engine, signer, logs))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
