"""``custodes witness``: run a witness, watch a log, handle evidence of equivocation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from custodes.cli._main import CliState, err_console, pass_state
from custodes.errors import ConfigError, InputError, WitnessError
from custodes.log import hash_text

if TYPE_CHECKING:
    from custodes.witness import Evidence

__all__ = ["witness"]


@click.group()
def witness() -> None:
    """Cosign a log's checkpoints as an outside overseer (C2SP tlog-witness)."""


def _witness_db(state: CliState, db: str | None) -> str:
    """The witness's database URL: ``--db``, else ``witness.db`` in the data folder (a
    witness keeps its own state, apart from any log it cosigns)."""
    if db:
        return db
    return f"sqlite:///{(state.settings.data_dir / 'witness.db').resolve()}"


def _key_file(state: CliState, key: Path | None) -> Path:
    """The witness's signing key file: ``--key``, else ``witness.key`` in the data folder."""
    return key or state.settings.data_dir / "witness.key"


@witness.command()
@click.argument("name")
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the private key (default <data-dir>/witness.key).",
)
@pass_state
def keygen(state: CliState, name: str, key_file: Path | None) -> None:
    """Create a witness key NAME (cosignature/v1) and print its verifier key.

    NAME should be a schema-less URL that identifies the witness (C2SP tlog-cosignature).
    """
    from custodes.log import ALG_COSIGNATURE_V1, NoteSigner
    from custodes.wiring import write_private_file

    path = _key_file(state, key_file)
    # A witness's key is its identity in every policy that names it: a new key silently in
    # its place would make every cosignature it gives from then on count for nobody.
    if path.exists():
        raise ConfigError(f"{path} exists; a witness key is never overwritten")
    signer = NoteSigner.generate(name, alg=ALG_COSIGNATURE_V1)
    write_private_file(path, signer.to_key() + "\n")
    err_console.print(f"wrote {path} (keep it secret); verifier key:")
    click.echo(signer.verifier.to_key())


@witness.command()
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The witness's private key (default <data-dir>/witness.key).",
)
@click.option(
    "--db",
    default=None,
    help="Database URL of the witness's state (default <data-dir>/witness.db).",
)
@click.option(
    "--log",
    "logs",
    multiple=True,
    help="Verifier key of a log to witness (repeatable); its name is the origin.",
)
@click.option(
    "--logs-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File of log verifier keys ('log <vkey>' lines, C2SP tlog-policy).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=int, default=8090, show_default=True, help="Listen port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the witness's database.",
)
@pass_state
def serve(
    state: CliState,
    key_file: Path | None,
    db: str | None,
    logs: tuple[str, ...],
    logs_file: Path | None,
    host: str,
    port: int,
    workers: int,
) -> None:
    """Run the witness server (POST /add-checkpoint)."""
    from custodes.witness import read_log_keys, serve_witness

    keys = read_log_keys(logs, logs_file)
    path = _key_file(state, key_file)
    err_console.print(
        f"witness listening on http://{host}:{port} "
        f"for {', '.join(sorted({k.name for k in keys})) or 'no logs'}"
    )
    serve_witness(path, _witness_db(state, db), keys, host=host, port=port, workers=workers)


@witness.command()
@click.argument("url")
@click.option("--log-key", required=True, help="The log's verifier key.")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Witness policy (C2SP tlog-policy): check the cosigned checkpoint against its quorum.",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to keep what was verified (default <data-dir>/watch/<origin>.json).",
)
@click.option(
    "--interval", type=float, default=10.0, show_default=True, help="Seconds between polls."
)
@click.option("--once", is_flag=True, help="Poll once; exit 1 on any problem.")
@click.option(
    "--max-age",
    "max_age",
    default="1h",
    show_default=True,
    help="With --policy: a cosignature counts only if at most this old (90s, 10m, 1h, 2d; "
    "'none' for any age).",
)
@pass_state
def watch(
    state: CliState,
    url: str,
    log_key: str,
    policy_file: Path | None,
    state_file: Path | None,
    interval: float,
    once: bool,
    max_age: str,
) -> None:
    """Monitor the log at URL: consistency from stored state, every entry well-formed."""
    from custodes.log import NoteVerifier, parse_max_age
    from custodes.wiring import all_entry_types
    from custodes.witness import LogWatcher, WitnessPolicy

    key = NoteVerifier.from_key(log_key)
    seconds = parse_max_age(max_age)
    policy = WitnessPolicy.from_file(policy_file).with_max_age(seconds) if policy_file else None
    # One state file per log origin (an origin is a schema-less URL: its slashes are not
    # folders).
    safe = key.name.replace("/", "_")
    path = state_file or state.settings.data_dir / "watch" / f"{safe}.json"
    watcher = LogWatcher(url, key, path, policy=policy, entry_types=all_entry_types())
    try:
        while True:
            alarms = watcher.poll()
            for a in alarms:
                where = f" (entry {a.index})" if a.index is not None else ""
                err_console.print(
                    f"[bold red]ALARM {a.kind}[/]{where}: {escape(a.message)}", markup=True
                )
            if not alarms:
                err_console.print(f"ok: {key.name} verified up to size {_size(path, key.name)}")
            if once:
                # Exit 1 on any alarm, so a cron job or a CI step can page someone.
                if alarms:
                    raise WitnessError(f"{len(alarms)} alarm(s) raised watching {url}")
                return
            # A steady poll, not a wait on an event: the watcher trusts nothing the log pushes.
            time.sleep(interval)
    finally:
        watcher.close()


def _size(path: Path, origin: str) -> int:
    """The log size the watcher's state file records as verified (0 before the first poll)."""
    from custodes.witness import WatchState

    return WatchState.load(path, origin).size


@witness.group()
def evidence() -> None:
    """Evidence of equivocation: list, export, verify."""


@evidence.command("list")
@click.option("--db", default=None, help="The witness's database URL.")
@pass_state
def evidence_list(state: CliState, db: str | None) -> None:
    """List the evidence this witness holds."""
    for number, ev in enumerate(_stored_evidence(state, db), start=1):
        click.echo(f"{number}\t{ev.kind}\t{ev.origin}\t{ev.detected_at.isoformat()}")


@evidence.command("export")
@click.option("--db", default=None, help="The witness's database URL.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the files to.",
)
@pass_state
def evidence_export(state: CliState, db: str | None, out_dir: Path) -> None:
    """Write each piece of evidence as a file anyone can check."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # Numbered in the witness's own order (oldest first), so a second export names the same
    # evidence by the same file.
    for number, ev in enumerate(_stored_evidence(state, db), start=1):
        path = out_dir / f"evidence-{number}-{ev.kind}.json"
        path.write_text(ev.to_json())
        click.echo(str(path))


def _stored_evidence(state: CliState, db: str | None) -> list[Evidence]:
    """The evidence files a witness has kept in its database."""
    from custodes.store import create_db_engine
    from custodes.witness import load_evidence

    engine = create_db_engine(_witness_db(state, db))
    try:
        return load_evidence(engine)
    finally:
        engine.dispose()


@evidence.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--log-key", required=True, help="The log's verifier key.")
def evidence_verify(file: Path, log_key: str) -> None:
    """Check an evidence FILE with the log's public key alone.

    Exits 0 only when the log signed both checkpoints and they provably cannot both be true;
    1, saying why, when the file proves nothing.
    """
    from custodes.log import NoteVerifier
    from custodes.witness import Evidence, verify_evidence

    finding = verify_evidence(Evidence.from_json(file.read_bytes()), NoteVerifier.from_key(log_key))
    click.echo(f"EQUIVOCATION PROVEN: {finding.summary}")


@witness.command("verify")
@click.argument("source")
@click.option("--log-key", required=True, help="The log's verifier key.")
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Witness policy (C2SP tlog-policy) the checkpoint must meet.",
)
@click.option(
    "--max-age",
    "max_age",
    default="1h",
    show_default=True,
    help="A cosignature counts only if it is at most this old (90s, 10m, 1h, 2d; 'none' for "
    "any age): an old checkpoint of a rolled-back log is refused.",
)
def verify(source: str, log_key: str, policy_file: Path, max_age: str) -> None:
    """Check a cosigned checkpoint or a receipt against a witness policy.

    SOURCE is a log's base URL (its /checkpoint/cosigned is fetched), a file holding a cosigned
    checkpoint, or a receipt file (C2SP tlog-proof). Exits 1 if the log's signature, the
    quorum or (for a receipt) the inclusion proof does not verify.
    """
    import httpx

    from custodes.log import NoteVerifier, Receipt, parse_max_age, verify_receipt
    from custodes.log import WitnessPolicy as ReceiptPolicy
    from custodes.witness import WitnessPolicy

    seconds = parse_max_age(max_age)
    key = NoteVerifier.from_key(log_key)
    policy = WitnessPolicy.from_file(policy_file).with_max_age(seconds)
    if source.startswith(("http://", "https://")):
        resp = httpx.get(source.rstrip("/") + "/checkpoint/cosigned", timeout=30)
        if resp.status_code != 200:
            raise WitnessError(f"{source} answered {resp.status_code}: {resp.text[:200]}")
        text = resp.text
    else:
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise InputError(f"cannot read {source}: {exc.strerror}") from exc
    # A receipt, or else a cosigned checkpoint: the receipt's framing is the stricter, so it is
    # tried first and anything it refuses is read as a checkpoint (whose errors are the ones
    # shown).
    try:
        receipt = Receipt.from_text(text)
    except InputError:
        receipt = None
    if receipt is not None:
        verified = verify_receipt(
            receipt,
            key,
            witness_policy=ReceiptPolicy.from_text(policy_file.read_bytes()).with_max_age(seconds),
        )
        click.echo(
            f"ok: entry {verified.index} is in {key.name} at size "
            f"{verified.checkpoint.size}, cosigned by {', '.join(sorted(verified.witnesses))}"
        )
        return
    signed = policy.verify(text, key)
    names = policy.check(signed)
    click.echo(
        f"ok: {key.name} size {signed.checkpoint.size} root "
        f"{hash_text(signed.checkpoint.root_hash)} cosigned by {', '.join(sorted(names))} "
        f"(quorum {policy.describe()})"
    )


@witness.command("policy")
@click.option(
    "--constitution",
    "constitution_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The constitution whose witnesses to list (default: the constitution_file setting).",
)
@click.option("--log-key", default=None, help="The log's verifier key (a 'log' line).")
@click.option("--server", default=None, help="Take the log's key from this server's /log/key.")
@click.option(
    "--quorum",
    default=None,
    help="any, all or a number of witnesses (default: the constitution's quorum).",
)
@pass_state
def policy_command(
    state: CliState,
    constitution_file: Path | None,
    log_key: str | None,
    server: str | None,
    quorum: str | None,
) -> None:
    """Print a C2SP tlog-policy file for the witnesses a constitution names.

    The witness keys are written as the constitution has them (policy parsers take plain
    Ed25519 vkeys as cosignature/v1 keys), with their URLs. Save it and pass it to
    `witness verify --policy`, `witness watch --policy` or `log verify --policy`.
    """
    import httpx

    from custodes.constitution import read_constitution
    from custodes.log import NoteVerifier
    from custodes.witness import WitnessPolicy

    path = constitution_file or state.settings.constitution_file
    if path is None:
        raise ConfigError(
            "no constitution to read the witnesses from",
            hint="pass --constitution FILE (the demo's is examples/constitution.yaml)",
        )
    config = read_constitution(path).witnesses
    if not config.witnesses:
        raise InputError(f"the constitution {path} names no witnesses", where="witnesses")
    if server and not log_key:
        try:
            resp = httpx.get(server.rstrip("/") + "/log/key", timeout=30)
        except httpx.HTTPError as exc:
            raise WitnessError(f"cannot reach {server}: {exc}") from exc
        if resp.status_code != 200:
            raise WitnessError(f"{server}/log/key answered {resp.status_code}")
        log_key = resp.text.strip()
    names = [w.name for w in config.witnesses]
    if quorum is None:
        threshold = str(config.quorum) if config.quorum else "any"
    elif quorum in ("any", "all") or (
        # ASCII digits only: str.isdigit alone passes "²", on which int() raises.
        quorum.isascii() and quorum.isdigit() and 1 <= int(quorum) <= len(names)
    ):
        threshold = quorum
    else:
        raise InputError(
            "malformed quorum",
            where="--quorum",
            expected=f"any, all or a number from 1 to {len(names)}",
            actual=repr(quorum),
        )
    lines = [f"# witnesses of {path}"]
    if log_key:
        lines.append(f"log {NoteVerifier.from_key(log_key).to_key()}")
    lines += [
        f"witness {w.name} {w.key}" + (f" {w.url}" if w.url else "") for w in config.witnesses
    ]
    lines += [f"group overseers {threshold} {' '.join(names)}", "quorum overseers"]
    text = "\n".join(lines) + "\n"
    WitnessPolicy.from_text(text)  # refuse to print what a verifier would refuse to read
    click.echo(text, nl=False)
