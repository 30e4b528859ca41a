"""``custodes log``: keygen, append, show, prove, verify.

Commands work on the local database (``--database-url`` / ``--data-dir``) or, with ``--server``,
on a running server over HTTP. ``verify`` also checks receipts and checkpoint pairs offline.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from custodes.cli._main import CliState, pass_state
from custodes.clock import StagingClock
from custodes.config import Settings
from custodes.errors import ConfigError, Error, InputError, StoreError, VerificationError
from custodes.log import (
    Entry,
    NoteSigner,
    NoteVerifier,
    SignedCheckpoint,
    TransparencyLog,
    leaf_hash,
    verify_consistency,
)

if TYPE_CHECKING:
    from custodes.log import WitnessPolicy

__all__ = ["log"]


@click.group()
def log() -> None:
    """The tamper-evident log: keys, appends, proofs and verification."""


# --- helpers ---------------------------------------------------------------------------------


def _read_input(path: str) -> bytes:
    """The bytes of file ``path``, or of standard input for ``-``.

    Raises:
        InputError: the file cannot be read.
    """
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", where=path) from exc


def _verifier(settings: Settings, key: str | None, server: str | None = None) -> NoteVerifier:
    """The log's verifier (public) key: ``--key`` (a vkey or a file holding one); else the one
    the local log key file implies, if this machine has it; else ``--server``'s ``/log/key``.

    Verifying never needs the private key: it is only a convenience when it is at hand.

    Raises:
        ConfigError: no verifier key is available.
        InputError: the key given is malformed.
    """
    if key:
        text = key
        if "+" not in key or Path(key).is_file():
            try:
                text = Path(key).read_text().strip()
            except OSError as exc:
                raise InputError(
                    f"cannot read key file {key}: {exc.strerror}", where="--key"
                ) from exc
        if text.startswith("PRIVATE+KEY+"):
            return NoteSigner.from_key(text).verifier
        return NoteVerifier.from_key(text)
    path = settings.resolved_log_key_file
    if path.is_file():
        return _signer(settings).verifier
    if server:
        with _http(server) as client:
            text = _get(client, "/log/key").text.strip()
        click.echo(
            f"note: using the verifier key {server} serves ({text}); pin it with --key to "
            "check the log against the key you trust, not the one it hands out",
            err=True,
        )
        return NoteVerifier.from_key(text)
    raise ConfigError(
        "the log's verifier (public) key is needed, and --key was not given",
        hint="pass --key VKEY (or a file holding it): a running server gives it at GET "
        "/log/key, e.g. `curl -s http://127.0.0.1:8080/log/key`; or pass --server URL",
    )


def _read_only_engine(settings: Settings) -> Any:
    """An engine on an existing log database; never creates a file, a folder or a table.

    Raises:
        ConfigError: there is no log where the settings point.
    """
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from custodes.store import create_db_engine

    url = settings.resolved_database_url
    hint = (
        "pass --data-dir (the demo's is .custodes/demo: `custodes --data-dir .custodes/demo "
        "log verify`) or --database-url of the server's database"
    )
    try:
        parsed = make_url(url)
    except Exception:  # create_db_engine says what is wrong with the URL
        parsed = None
    # SQLite creates an empty database file on connect: a wrong --data-dir must be refused
    # before that, not verified as an empty log.
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or not Path(db).is_file():
            raise ConfigError(
                f"no log here: the database {db or '(none)'} does not exist", hint=hint
            )
    engine = create_db_engine(url)
    try:
        has_log = inspect(engine).has_table("log_state")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(
            f"cannot read the log database: {str(exc).splitlines()[0]}", hint=hint
        ) from exc
    if not has_log:
        engine.dispose()
        raise ConfigError(f"no log here: the database {url} has no log tables", hint=hint)
    return engine


def _signer(settings: Settings) -> NoteSigner:
    """The log's signing key from the settings' key file.

    Raises:
        ConfigError: the file is missing or malformed.
    """
    path = settings.resolved_log_key_file
    if not path.exists():
        raise ConfigError(
            f"log key {path} does not exist",
            hint="create it with `custodes log keygen`, or pass --key VKEY",
        )
    try:
        return NoteSigner.from_key(path.read_text().strip())
    except InputError as exc:
        raise ConfigError(f"log key {path} is malformed: {exc.message}") from exc


@contextmanager
def _local_log(settings: Settings, *, migrate_db: bool) -> Iterator[TransparencyLog]:
    """The deployment's log opened directly on its database (no server), closed on exit.

    Raises:
        StoreError: the database cannot be read.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from custodes.staging import follow_log
    from custodes.store import create_db_engine, migrate

    engine = create_db_engine(settings.resolved_database_url)
    try:
        if migrate_db:
            migrate(engine)
        # Timed where the deployment's log left off: a staging deployment's clock may run
        # ahead, and an entry is never dated behind the ones already logged.
        clock = StagingClock()
        log_ = TransparencyLog(
            engine,
            _signer(settings),
            clock=clock,
            checkpoint_interval=settings.log_checkpoint_interval_ms / 1000,
        )
        try:
            follow_log(clock, log_)
            yield log_
        finally:
            log_.close()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot read the log database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
            hint="is --database-url right, and has the server run once?",
        ) from exc
    finally:
        engine.dispose()


def _http(server: str) -> Any:
    """An HTTP client for the server at ``server`` (30 s timeout)."""
    # Imported here: most log commands work on the local database and never need it.
    import httpx

    return httpx.Client(base_url=server.rstrip("/"), timeout=30.0)


def _get(client: Any, path: str, **params: Any) -> Any:
    """GET ``path`` from the server, leaving out parameters that are None.

    Raises:
        StoreError: the server cannot be reached.
        InputError: it answered an error (its message quoted).
    """
    import httpx

    try:
        response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    except httpx.HTTPError as exc:
        raise StoreError(f"cannot reach the server: {exc}") from exc
    if response.status_code >= 400:
        try:
            err = response.json()["error"]
            message = err.get("message", response.text)
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise InputError(f"server answered {response.status_code}: {message}", where=path)
    return response


def _echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _b64(data: bytes) -> str:
    """``data`` in standard base64 (as checkpoints and proofs write hashes)."""
    return base64.b64encode(data).decode()


# --- keygen ----------------------------------------------------------------------------------


@log.command()
@click.option("--origin", default=None, help="Key name = checkpoint origin (CUSTODES_LOG_ORIGIN).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the private key (default: the log key file setting).",
)
@pass_state
def keygen(state: CliState, origin: str | None, out: Path | None) -> None:
    """Create the log's Ed25519 signing key; print its verifier key.

    The private key file is created with mode 0600 and never overwritten. Publish the printed
    verifier key: clients and witnesses use it to check checkpoints and receipts.
    """
    from custodes.wiring import write_private_file

    settings = state.settings
    path = out or settings.resolved_log_key_file
    # The key is the log's identity: a new one would orphan every checkpoint signed so far
    # (witnesses and clients pinned the old verifier key).
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to overwrite a log key")
    signer = NoteSigner.generate(origin or settings.log_origin)
    write_private_file(path, signer.to_key() + "\n")
    click.echo(f"wrote {path}", err=True)
    click.echo(signer.verifier.to_key())


# --- append ----------------------------------------------------------------------------------


def _entries_from(raw: bytes, where: str) -> list[Entry]:
    """The entries in ``raw``: one entry object, an array, ``{"entries": [...]}`` or JSON Lines,
    each validated as an :class:`Entry`.

    Raises:
        InputError: nothing parses as entries, or an entry is invalid (``where`` says which).
    """
    text = raw.strip()
    try:
        decoded = orjson.loads(text)
        items = (
            decoded["entries"]
            if isinstance(decoded, dict) and set(decoded) == {"entries"}
            else decoded
            if isinstance(decoded, list)
            else [decoded]
        )
    except orjson.JSONDecodeError:
        # JSON Lines: one entry per line.
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"line {n} is not JSON: {exc}", where=where) from exc
    if not isinstance(items, list) or not items:
        raise InputError(
            "no entries found",
            where=where,
            expected='an entry object, an array, {"entries": [...]} or JSON Lines',
        )
    return [Entry.from_dict(item, where=f"{where}[{i}]") for i, item in enumerate(items)]


@log.command()
@click.argument("file", default="-")
@click.option("--text", default=None, help="Append one log.annotation/v1 entry with this text.")
@click.option("--principal", default=None, help="Principal for --text (default: $USER).")
@click.option("--server", default=None, help="Append through a running server (its base URL).")
@click.option(
    "--api-key",
    envvar="CUSTODES_API_KEY",
    default=None,
    help="With --server: your custodes API key (env CUSTODES_API_KEY); the server names you "
    "and stamps the time.",
)
@pass_state
def append(
    state: CliState,
    file: str,
    text: str | None,
    principal: str | None,
    server: str | None,
    api_key: str | None,
) -> None:
    """Append entries from FILE (or stdin): an entry, an array, {"entries": [...]}, or JSON Lines.

    Prints each entry's index and leaf hash once it is durable. Through a server, only a
    principal the constitution lets append (log.append.roles) may, with their API key; the
    entries' principal and time are the key's principal and the server's clock.
    """
    import getpass

    from custodes.log import ANNOTATION
    from custodes.wiring import all_entry_types

    try:
        all_entry_types()
    except ImportError:
        pass  # unknown types are refused below, which is the safe outcome

    def annotation(note: str, when: datetime) -> list[Entry]:
        who = principal or getpass.getuser()
        return [Entry.create(ANNOTATION, time=when, principal=who, body={"text": note})]

    if text is not None:
        entries = annotation(text, datetime.now(UTC))  # a server stamps its own time
    else:
        entries = _entries_from(_read_input(file), "stdin" if file == "-" else file)
    if server:
        import httpx

        if not api_key:
            raise InputError(
                "appending through a server needs an API key",
                where="--api-key",
                expected="--api-key KEY or CUSTODES_API_KEY (from `custodes keys create`)",
            )
        with _http(server) as client:
            try:
                # Type and body only (and a principal the server checks against the key's):
                # the server stamps the time, so a client cannot backdate an entry.
                sent = [
                    {"type": e.type, "body": e.to_dict()["body"]}
                    | ({"principal": principal} if principal else {})
                    for e in entries
                ]
                response = client.post(
                    "/log/entries",
                    content=orjson.dumps({"entries": sent}),
                    headers={
                        "content-type": "application/json",
                        "authorization": f"Bearer {api_key}",
                    },
                )
            except httpx.HTTPError as exc:
                raise StoreError(f"cannot reach the server: {exc}") from exc
            if response.status_code >= 400:
                raise InputError(f"server refused the entries: {response.text}")
            for a in response.json()["entries"]:
                click.echo(json.dumps({"index": a["index"], "leaf_hash": a["leaf_hash"]}))
        return
    with _local_log(state.settings, migrate_db=True) as log_:
        if text is not None:  # dated by the deployment's clock, not this machine's
            entries = annotation(text, log_.clock.now())
        for a in log_.append_batch(entries):
            click.echo(json.dumps({"index": a.index, "leaf_hash": _b64(a.leaf_hash)}))


# --- show ------------------------------------------------------------------------------------


@log.command()
@click.option("--index", type=click.IntRange(min=0), default=None, help="Show this entry.")
@click.option("--start", type=click.IntRange(min=0), default=None, help="Show entries from here.")
@click.option(
    "--count",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many entries with --start.",
)
@click.option("--server", default=None, help="Read from a running server (its base URL).")
@pass_state
def show(
    state: CliState, index: int | None, start: int | None, count: int, server: str | None
) -> None:
    """Show the newest checkpoint (default), one entry (--index) or a range (--start)."""
    if server:
        with _http(server) as client:
            if index is not None:
                _echo_json(_get(client, f"/log/entries/{index}").json())
            elif start is not None:
                _echo_json(_get(client, "/log/entries", start=start, end=start + count).json())
            else:
                click.echo(_get(client, "/checkpoint").text, nl=False)
        return
    from sqlalchemy import select

    from custodes.log import log_checkpoints, log_entries

    # Only reads: no key (the stored checkpoint is printed as signed) and nothing created.
    engine = _read_only_engine(state.settings)
    try:
        with engine.connect() as conn:
            if index is not None or start is not None:
                first = index if index is not None else start
                last = first + 1 if index is not None else first + count  # type: ignore[operator]
                rows = conn.execute(
                    select(log_entries.c.idx, log_entries.c.data)
                    .where(log_entries.c.idx >= first, log_entries.c.idx < last)
                    .order_by(log_entries.c.idx)
                ).all()
                shown = [
                    {
                        "index": int(i),
                        "leaf_hash": _b64(leaf_hash(bytes(d))),
                        "entry": orjson.loads(d),
                    }
                    for i, d in rows
                ]
                # One entry asked for and absent is an error; an empty range is an answer.
                if index is not None:
                    if not shown:
                        raise InputError(f"no log entry at index {index}", where="--index")
                    _echo_json(shown[0])
                else:
                    _echo_json({"entries": shown})
            else:
                note = conn.execute(
                    select(log_checkpoints.c.note).order_by(log_checkpoints.c.seq.desc()).limit(1)
                ).scalar()
                if note is None:
                    raise InputError("the log has signed no checkpoint yet", where="log")
                click.echo(note, nl=False)
    finally:
        engine.dispose()


# --- prove -----------------------------------------------------------------------------------


@log.command()
@click.option(
    "--index",
    type=click.IntRange(min=0),
    default=None,
    help="Inclusion proof (or receipt) of this entry.",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help="Tree size for --index (default: the newest checkpoint).",
)
@click.option(
    "--consistency",
    nargs=2,
    type=click.IntRange(min=1),
    default=None,
    metavar="OLD NEW",
    help="Consistency proof between two tree sizes.",
)
@click.option(
    "--receipt",
    "receipt_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --index: write a C2SP tlog-proof receipt here ('-' for stdout).",
)
@click.option("--server", default=None, help="Ask a running server (its base URL).")
@pass_state
def prove(
    state: CliState,
    index: int | None,
    size: int | None,
    consistency: tuple[int, int] | None,
    receipt_out: str | None,
    server: str | None,
) -> None:
    """Print an inclusion proof, a consistency proof, or write a receipt."""
    if (index is None) == (consistency is None):
        raise click.UsageError("give exactly one of --index and --consistency")
    if receipt_out is not None and index is None:
        raise click.UsageError("--receipt needs --index")
    text: str
    if server:
        with _http(server) as client:
            if receipt_out is not None:
                text = _get(client, f"/log/receipt/{index}").text
            elif index is not None:
                _echo_json(_get(client, "/log/proof/inclusion", index=index, size=size).json())
                return
            else:
                assert consistency is not None
                _echo_json(
                    _get(
                        client, "/log/proof/consistency", size1=consistency[0], size2=consistency[1]
                    ).json()
                )
                return
    else:
        # migrate_db=False: proving reads; it must never upgrade a deployment's schema.
        with _local_log(state.settings, migrate_db=False) as log_:
            if index is not None:
                signed = log_.latest_checkpoint()
                tree_size = size or signed.checkpoint.size
                proof = log_.inclusion_proof(index, tree_size)
                if receipt_out is None:
                    _echo_json(
                        {
                            "index": index,
                            "size": tree_size,
                            "leaf_hash": _b64(leaf_hash(log_.entry_data(index))),
                            "proof": [_b64(p) for p in proof],
                        }
                    )
                    return
                from custodes.log import Receipt

                # A receipt carries a signed checkpoint, and only the newest is at hand signed.
                if size is not None and size != signed.checkpoint.size:
                    raise click.UsageError("a receipt is always for the newest checkpoint")
                text = Receipt.build(
                    index, proof, signed, entry_data=log_.entry_data(index)
                ).to_text()
            else:
                assert consistency is not None
                old, new = consistency
                proof = log_.consistency_proof(old, new)
                _echo_json({"size1": old, "size2": new, "proof": [_b64(p) for p in proof]})
                return
    if receipt_out == "-":
        click.echo(text, nl=False)
    else:
        Path(receipt_out or "receipt.txt").write_text(text)
        click.echo(f"wrote {receipt_out}", err=True)


# --- verify ----------------------------------------------------------------------------------


@log.command()
@click.option(
    "--key",
    default=None,
    help="The log's verifier (public) key (name+id+key, or a file holding it; a server gives "
    "it at GET /log/key). Default: derived from the local log key file if present, else "
    "fetched from --server.",
)
@click.option(
    "--trusted",
    "trusted_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A checkpoint you kept earlier; the log must still contain it. Repeatable.",
)
@click.option(
    "--receipt",
    "receipt_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Verify this receipt (C2SP tlog-proof) offline instead of the database.",
)
@click.option(
    "--entry",
    "entry_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --receipt: the entry's exact bytes, if the receipt does not carry them.",
)
@click.option(
    "--old",
    "old_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Verify that the checkpoint in --new extends this one.",
)
@click.option(
    "--new",
    "new_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="The newer checkpoint for --old (default: fetched from --server).",
)
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Consistency proof for --old/--new: JSON from `prove --consistency`, or "
    "base64 hashes one per line (default: fetched from --server).",
)
@click.option("--server", default=None, help="A log server to fetch checkpoints/proofs from.")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A witness policy (C2SP tlog-policy file): the receipt's checkpoint, the "
    "--new checkpoint and every --trusted one must carry its quorum of "
    "witness cosignatures.",
)
@click.option(
    "--max-age",
    "max_age",
    default="1h",
    show_default=True,
    help="With --policy: a cosignature counts only if it is at most this old (90s, 10m, 1h, "
    "2d; 'none' for any age), so an old checkpoint of a rolled-back log is refused. Applies "
    "to the receipt's checkpoint and the --new one, not to --old or --trusted ones.",
)
@click.option(
    "--check-entries",
    is_flag=True,
    help="Also re-validate every entry against its registered type.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_state
def verify(
    state: CliState,
    key: str | None,
    trusted_files: tuple[str, ...],
    receipt_file: str | None,
    entry_file: str | None,
    old_file: str | None,
    new_file: str | None,
    proof_file: str | None,
    server: str | None,
    policy_file: str | None,
    max_age: str,
    check_entries: bool,
    quiet: bool,
) -> None:
    """Verify the whole stored log, a receipt, or that one checkpoint extends another.

    Without --receipt or --old: recompute the tree from every stored entry and check every
    checkpoint the log ever signed, every tile and the state; report precisely what is wrong.
    Exits 1 when anything does not verify.
    """
    settings = state.settings
    from custodes.log import parse_max_age

    seconds = parse_max_age(max_age)
    verifier = _verifier(settings, key, server)
    policy = _policy(policy_file)
    fresh = policy.with_max_age(seconds) if policy is not None else None
    if receipt_file:
        _verify_receipt(verifier, receipt_file, entry_file, fresh)
    elif old_file:
        _verify_pair(verifier, old_file, new_file, proof_file, server, fresh)
    else:
        _verify_database(settings, verifier, trusted_files, check_entries, quiet, policy)


def _policy(policy_file: str | None) -> WitnessPolicy | None:
    """The witness policy in ``policy_file`` (None without one).

    Raises:
        InputError: the policy is malformed (``where`` names the file).
    """
    if policy_file is None:
        return None
    from custodes.log import WitnessPolicy

    try:
        return WitnessPolicy.from_text(_read_input(policy_file))
    except InputError as exc:
        exc.where = f"{policy_file}: {exc.where}" if exc.where else policy_file
        raise


def _verify_receipt(
    verifier: NoteVerifier, receipt_file: str, entry_file: str | None, policy: WitnessPolicy | None
) -> None:
    """Check a C2SP tlog-proof receipt offline (and the entry it is for, and the witness quorum,
    when given); print what it proves.

    Raises:
        InputError: the receipt is malformed, or there is no entry data to check.
        VerificationError: the receipt does not verify.
    """
    from custodes.log import verify_receipt

    data = _read_input(entry_file) if entry_file else None
    result = verify_receipt(
        _read_input(receipt_file), verifier, entry_data=data, witness_policy=policy
    )
    click.echo(
        f"OK: entry {result.index} is in {verifier.name} at size "
        f"{result.checkpoint.size} (root {_b64(result.checkpoint.root_hash)})"
        + (f", cosigned by {', '.join(sorted(result.witnesses))}" if policy else "")
    )


def _load_checkpoint(
    raw: bytes, verifier: NoteVerifier, where: str, policy: WitnessPolicy | None = None
) -> SignedCheckpoint:
    """A signed checkpoint read from ``raw``, its signature (and the witness quorum, with a policy)
    checked.

    Raises:
        Error: it does not parse or verify (the message names ``where``).
    """
    try:
        signed = SignedCheckpoint.from_text(raw, verifier)
        if policy is not None:
            policy.check(signed.note)
        return signed
    except Error as exc:
        exc.message = f"{where}: {exc.message}"
        raise


def _verify_pair(
    verifier: NoteVerifier,
    old_file: str,
    new_file: str | None,
    proof_file: str | None,
    server: str | None,
    policy: WitnessPolicy | None,
) -> None:
    """Check that the newer checkpoint (a file, or the server's) extends the older one: never
    smaller, and a consistency proof (a file, or the server's) between their roots.

    Raises:
        VerificationError: it does not extend it (truncated, rolled back or forked).
    """
    # No policy for the old checkpoint: it is the one the user kept, trusted as it is; the
    # witnesses vouch for the new one, which the log (or the server) hands over now.
    old = _load_checkpoint(_read_input(old_file), verifier, old_file)
    client = _http(server) if server else None
    try:
        if new_file:
            new = _load_checkpoint(_read_input(new_file), verifier, new_file, policy)
        elif client is not None:
            # With a policy, only a checkpoint the witnesses cosigned will do.
            path = "/checkpoint/cosigned" if policy is not None else "/checkpoint"
            new = _load_checkpoint(_get(client, path).content, verifier, "server", policy)
        else:
            raise click.UsageError("--old needs --new or --server")
        o, n = old.checkpoint, new.checkpoint
        if n.size < o.size:
            raise VerificationError(
                f"the newer checkpoint has size {n.size}, smaller than the older {o.size}: "
                "the log was truncated or rolled back"
            )
        if o.size == 0:
            click.echo("OK: every log extends the empty tree")
            return
        if proof_file:
            # The API's JSON ({"proof": [...]}, as `custodes log prove` prints it) or one base64
            # hash per line.
            raw = _read_input(proof_file).decode(errors="replace")
            try:
                hashes = [base64.b64decode(h) for h in json.loads(raw)["proof"]]
            except (ValueError, KeyError, TypeError):
                hashes = [base64.b64decode(line) for line in raw.split() if line]
        # The server's proof is not trusted: verify_consistency checks it against both signed
        # roots, so a lying server can only make this fail, never pass.
        elif client is not None and o.size != n.size:
            body = _get(client, "/log/proof/consistency", size1=o.size, size2=n.size).json()
            hashes = [base64.b64decode(h) for h in body["proof"]]
        else:
            hashes = []
        verify_consistency(o.size, n.size, hashes, o.root_hash, n.root_hash)
    finally:
        if client is not None:
            client.close()
    click.echo(f"OK: size {n.size} extends size {o.size}")


def _verify_database(
    settings: Settings,
    verifier: NoteVerifier,
    trusted_files: tuple[str, ...],
    check_entries: bool,
    quiet: bool,
    policy: WitnessPolicy | None,
) -> None:
    """Verify the whole stored log read-only: every entry, tile and checkpoint against the root, the
    ``trusted`` checkpoints consistent with it, and (optionally) every entry's type and meaning.

    Raises:
        StoreError: the database cannot be read.
        _LogVerifyFailed: the log does not verify (the first 50 problems listed).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from sqlalchemy.exc import SQLAlchemyError

    from custodes.log import verify_store

    # Read and checked before the database is opened: a bad --trusted file fails fast.
    trusted = [_load_checkpoint(_read_input(f), verifier, f, policy) for f in trusted_files]
    engine = _read_only_engine(settings)
    checker = _entry_checker(engine) if check_entries else None
    try:
        with Progress(
            "verifying",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            disable=quiet,
            console=_stderr(),
        ) as bar:
            task = bar.add_task("entries", total=None)
            report = verify_store(
                engine,
                verifier,
                trusted=trusted,
                check_entries=checker,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the log database: {str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    if report.ok:
        click.echo(
            f"OK: {report.entries} entries, {report.checkpoints} checkpoints, "
            f"{report.tiles} tiles, {report.trusted} trusted checkpoints verified; "
            f"size {report.size} root {_b64(report.root)}"
        )
        return
    # The first 50 and a count: a log broken at its root would otherwise print every entry.
    shown = report.problems[:50]
    lines = [f"  {p.kind}: {p.message}" for p in shown]
    if len(report.problems) > len(shown):
        lines.append(f"  ... and {len(report.problems) - len(shown)} more")
    raise _LogVerifyFailed(len(report.problems), lines)


class _LogVerifyFailed(Error):
    """The stored log does not verify: the problems, one line each."""

    code = "log_integrity"

    def __init__(self, count: int, lines: list[str]) -> None:
        """``count`` problems, of which ``lines`` are shown."""
        super().__init__(f"the log does NOT verify: {count} problem(s)")
        self.lines = lines

    def diagnostics(self) -> str:
        """The message and then each problem line."""
        return "\n".join([self.message, *self.lines])


def _entry_checker(engine: Any) -> Any:
    """Each entry's form (its registered type, RFC 8785), then its meaning: what it claims is
    backed by the entries before it and their signatures (:mod:`custodes.entry_audit`)."""
    from custodes.entry_audit import EntryAuditor, stored_documents
    from custodes.wiring import all_entry_types

    # Import every package's entry types, so each entry's type is known to Entry.from_json
    # (the CLI imports the packages only when a command needs them).
    all_entry_types()
    auditor = EntryAuditor(stored_documents(engine))

    def check(index: int, data: bytes) -> str | None:
        try:
            entry = Entry.from_json(data)
        except InputError as exc:
            return f"not a valid entry: {exc.diagnostics()}"
        # The leaf hash commits to the logged bytes: they must be the one RFC 8785 form of
        # the entry, or two byte strings could stand for one entry.
        if entry.to_json() != data:
            return "not in RFC 8785 canonical form"
        return auditor.check_entry(index, entry)

    return check


def _stderr() -> Any:
    from custodes.cli._main import err_console

    return err_console


# --- alarms ----------------------------------------------------------------------------------


@log.command()
@pass_state
def alarms(state: CliState) -> None:
    """List the log's unresolved alarms (a rollback: witnesses hold a larger tree)."""
    from custodes.log import open_alarms

    engine = _read_only_engine(state.settings)
    try:
        found = open_alarms(engine)
    finally:
        engine.dispose()
    if not found:
        click.echo("no unresolved alarms")
        return
    for a in found:
        click.echo(f"#{a.id} {a.kind} at log size {a.log_size} ({a.raised_at}): {a.detail}")


@log.command("unsafe-resume")
@click.option("--reason", required=True, help="Why resuming is right; stored and logged.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def unsafe_resume(state: CliState, reason: str, yes: bool) -> None:
    """UNSAFE: resolve every alarm so that the log accepts appends again.

    A rollback alarm means witnesses cosigned a larger tree than the log now holds: appending
    hands out indices that were already acknowledged, and those witnesses will never cosign
    this log again. Resume only once you know why (see docs/verify-the-log.md).
    """
    from custodes.log import open_alarms, resolve_alarms

    engine = _read_only_engine(state.settings)
    try:
        pending = open_alarms(engine)
        if not pending:
            click.echo("no unresolved alarms: nothing to resume")
            return
        for a in pending:
            click.echo(f"#{a.id} {a.kind} at log size {a.log_size}: {a.detail}", err=True)
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("not a terminal: pass --yes to resume without asking")
            click.confirm("Resume appends despite these alarms (UNSAFE)?", abort=True)
        resolved = resolve_alarms(engine, reason=reason)
    finally:
        engine.dispose()
    click.echo(
        f"UNSAFE: resolved {len(resolved)} alarm(s) ({reason}); a running server resumes at its "
        "next append"
    )
