"""``custodes constitution check | show | schema | propose | sign | versions``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
from rich.console import Console

from custodes.authority import SigningKey
from custodes.cli._main import CliState, pass_state
from custodes.cli.authority import (
    approve_request,
    client_for,
    print_record,
    send_statement,
    server_option,
    signer_options,
)
from custodes.constitution import (
    Quorum,
    compile_policies,
    constitution_schema,
    read_constitution,
)

__all__ = ["constitution"]

console = Console(highlight=False, soft_wrap=True)


@click.group()
def constitution() -> None:
    """The constitution: validate, show, and amend it."""


@constitution.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def check(file: Path) -> None:
    """Validate FILE; list every problem with its line. Exit 1 if refused."""
    c = read_constitution(file)
    # Compiling runs Cedar over every rule: a file that reads but does not compile is refused too.
    compiled = compile_policies(c)
    console.print(
        f"[green]ok[/]: {file}: version {c.version}, {len(c.organisations)} "
        f"organisations, {len(c.principals)} principals, {len(c.capabilities)} "
        f"capabilities, {len(c.access_rules)} access rules, {len(c.break_glass)} "
        f"break-glass rules; digest {c.digest}"
    )
    # Not an error: an organisation may be listed before it meets its membership criteria.
    refused = [o for o, ok in compiled.org_admitted.items() if not ok]
    if refused:
        console.print(f"  not admitted under their criteria: {', '.join(refused)}")


@constitution.command()
@click.argument(
    "file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the document itself.")
@server_option
@pass_state
def show(state: CliState, file: Path | None, as_yaml: bool, server: str | None) -> None:
    """Show FILE, or the server's active constitution."""
    if file is not None:
        c = read_constitution(file)
        text, version, digest = c.text, c.version, c.digest
        document = dict(c.document)
    else:
        with client_for(state, server) as client:
            shown = client.call("GET", "/constitution")
        text, version, digest, document = (
            shown["text"],
            shown["version"],
            shown["digest"],
            shown["document"],
        )
    if as_yaml:
        click.echo(text, nl=False)
        return
    console.print(f"[bold]constitution version {version}[/] digest {digest}")
    for o in document["organisations"]:
        console.print(f"  organisation {o['id']} ({o['kind']}) {o.get('name', '')}")
    for rule in document.get("access", []):
        # The server's document is the raw YAML: its defaults are read the way the reader reads
        # them.
        q = Quorum.from_document(rule["quorum"])
        kinds = "".join(f", >= {n} {k}" for k, n in q.kinds.items())
        console.print(
            f"  access {rule['id']}: {rule['capability']} needs {q.approvals} "
            f"approvals from {q.organisations} organisations{kinds}, max {rule['max_duration']}"
        )
    for bg in document.get("break_glass", []):
        console.print(
            f"  break-glass {bg['id']}: {bg['capability']} for {', '.join(bg['roles'])}, "
            f"max {bg['max_duration']}, review within {bg['review']['deadline']}"
        )
    a = document["amendment"]
    console.print(f"  amendments: {a['threshold']} of {', '.join(a['signers'])} (old and new)")


@constitution.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to a file instead of standard output.",
)
def schema(out: Path | None) -> None:
    """Print the constitution's JSON Schema."""
    text = json.dumps(constitution_schema(), indent=2) + "\n"
    if out:
        out.write_text(text)
        click.echo(f"wrote the constitution's JSON Schema to {out}", err=True)
    else:
        click.echo(text, nl=False)


@constitution.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@signer_options
@click.option(
    "--ack",
    "acks",
    multiple=True,
    help="Acknowledge a statement (e.g. a coalition "
    "floor change); carried by every signature over the proposal.",
)
@click.option("--purpose", default="", help="Why the change.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def propose(
    state: CliState,
    file: Path,
    key_file: Path,
    as_: str | None,
    acks: tuple[str, ...],
    purpose: str,
    as_json: bool,
    server: str | None,
) -> None:
    """Propose FILE as version N+1. Signers then run `custodes constitution sign ID`."""
    new = read_constitution(file)
    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        record = send_statement(
            client,
            key,
            as_,
            "amendment",
            "/constitution/proposals",
            body={"document": new.text},
            purpose=purpose,
            amendment={
                "version": new.version,
                "digest": new.digest,
                # The file's bytes as well as the canonical digest: a signer can check the file they
                # hold.
                "sha256": hashlib.sha256(new.text.encode()).hexdigest(),
            },
            acknowledgements=list(acks),
        )
        # The threshold in force now, which is what the proposal must gather.
        rule = client.call("GET", "/constitution")["document"]["amendment"]
    if as_json:
        click.echo(json.dumps(record))
    else:
        print_record(record)
        # Proposing is not signing: a proposer who is an amendment signer signs too.
        console.print(
            f"to adopt it, {rule['threshold']} of {', '.join(rule['signers'])} sign it "
            f"(you too, if you are one): custodes constitution sign {record['id']} --key KEY"
        )


@constitution.command()
@click.argument("request_id")
@signer_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def sign(
    state: CliState,
    request_id: str,
    key_file: Path,
    as_: str | None,
    yes: bool,
    as_json: bool,
    server: str | None,
) -> None:
    """Sign the amendment proposal REQUEST_ID (checks the document against its digest)."""
    approve_request(state, server, request_id, key_file, as_, yes, as_json)


@constitution.command()
@server_option
@pass_state
def versions(state: CliState, server: str | None) -> None:
    """List adopted versions."""
    with client_for(state, server) as client:
        result = client.call("GET", "/constitution/versions")["versions"]
    for v in result:
        console.print(
            f"  version {v['version']} adopted {v['adopted_at']} digest {v['digest']} "
            f"(log index {v['log_index']})"
        )
