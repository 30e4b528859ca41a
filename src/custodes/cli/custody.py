"""``custodes findings``, ``custodes alarms`` and ``custodes clock``: the custody registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Column, Table

from custodes.cli._main import CliState, keep_whole, pass_state
from custodes.custody import CustodyRegistry, KeyEncryptionKey, export_finding
from custodes.errors import ConfigError, InputError
from custodes.log import format_time, parse_time

__all__ = ["alarms", "clock", "findings"]

_console = Console(highlight=False, soft_wrap=True)


def _registry(state: CliState) -> CustodyRegistry:
    """The custody registry of the deployment in the settings' data folder, closed with the command.

    Raises:
        ConfigError: there is no deployment database there (a new, empty one is never made).
    """
    from custodes.wiring import build_records, open_core

    settings = state.settings
    database = settings.data_dir / "custodes.db"
    if not settings.database_url and not database.exists():
        # Findings live in a deployment's database: refuse rather than leave a new, empty one
        # behind wherever the command was run.
        raise ConfigError(
            f"no custodes database at {database}",
            hint="pass the data folder of your deployment: `custodes --data-dir DIR findings "
            "...` or CUSTODES_DATA_DIR (the demo of `make run`: .custodes/demo), or "
            "CUSTODES_DATABASE_URL",
        )
    core = open_core(settings)
    # The log's sequencer drains and stops when the command ends, however it ends (close
    # callbacks run last-registered first: the alarm sweep stops before the log does).
    command = click.get_current_context()
    command.call_on_close(core.close)
    records = build_records(core)
    command.call_on_close(records.custody.close)
    return records.custody


def _emit(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys."""
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _write(out: str | None, data: bytes) -> None:
    """Write ``data`` to the file ``out``, or to stdout for ``-`` or None."""
    # Bytes, not text: escrowed details are whatever the finder sent, not necessarily UTF-8.
    if out in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(str(out)).write_bytes(data)


@click.group()
def findings() -> None:
    """Register, escrow, notify, transition, read, reveal and export vulnerability findings."""


@findings.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the new key-encryption key (never overwritten).",
)
def keygen(out: Path) -> None:
    """Create an escrow key-encryption key file (mode 0600)."""
    import os

    out.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: created here or refused, never truncated (an overwritten KEK would make every
    # escrow sealed under it unreadable); 0600 from the first byte, not chmod-ed after.
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{out} already exists; a key is never overwritten") from exc
    with os.fdopen(fd, "w") as f:
        f.write(KeyEncryptionKey.new_text() + "\n")
    click.echo(f"wrote {out}", err=True)


@findings.command()
@click.option(
    "--file",
    "spec_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="YAML or JSON with the finding's fields.",
)
@click.option(
    "--details",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="File with the technical details to escrow.",
)
@click.option("--as", "principal", required=True, help="The registering principal.")
@click.option(
    "--detection",
    "detection_id",
    default=None,
    help="The reviewed detection it comes from (its fingerprint is taken over).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def register(
    state: CliState,
    spec_file: Path,
    details: Path,
    principal: str,
    detection_id: str | None,
    as_json: bool,
) -> None:
    """Register a finding and escrow its details."""
    # safe_load: a finding file is data (JSON is YAML too), never objects.
    try:
        spec = yaml.safe_load(spec_file.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"cannot parse the finding: {exc}", where=str(spec_file)) from exc
    if not isinstance(spec, dict):
        raise InputError(
            "the finding file must hold a mapping",
            where=str(spec_file),
            expected="a YAML/JSON object",
            actual=type(spec).__name__,
        )
    # The option wins over the file: the registry then takes the detection's fingerprint.
    if detection_id:
        spec["detection_id"] = detection_id
    reg = _registry(state)
    f = reg.register(spec, details.read_bytes(), principal=principal)
    if as_json:
        _emit(_json(reg, f.id))
    else:
        click.echo(f"{f.id} registered (log entry {f.log_index}, commitment {f.commitment})")


def _json(reg: CustodyRegistry, finding_id: str) -> dict[str, Any]:
    """Finding ``finding_id`` as the API shows it (the CLI and the API print the same JSON)."""
    from custodes.server.routes.custody import finding_json

    f = reg.get(finding_id)
    return finding_json(f, reg.schedule(f))


@findings.command()
@click.argument("finding_id")
@click.option(
    "--as", "principal", required=True, help="Who asks (a principal the constitution names)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def show(state: CliState, finding_id: str, principal: str, as_json: bool) -> None:
    """Show a finding, its states, flags, events and clock (if you may see its case record)."""
    reg = _registry(state)
    data = _json(reg, reg.view(finding_id, principal=principal).id)
    if as_json:
        _emit(data)
        return
    for key in (
        "id",
        "title",
        "vendor",
        "product",
        "cwe",
        "policy",
        "rm_state",
        "em_state",
        "commitment",
        "registered_at",
        "registered_by",
    ):
        _console.print(f"[bold]{key}[/]: {data[key]}")
    _console.print(
        f"[bold]cvss[/]: {data['cvss']['vector']} ({data['cvss']['score']} "
        f"{data['cvss']['severity']})"
    )
    _console.print(f"[bold]flags[/]: {', '.join(data['flags']) or 'none'}")
    if data["clock"]:
        c = data["clock"]
        _console.print(
            f"[bold]disclose at[/]: {c['disclose_at']} ({c['rule']}); details at {c['details_at']}"
        )
    for e in data["events"]:
        _console.print(f"  {e['at']}  {e['kind']:<22} {e['principal']}  {e['note']}")


@findings.command("list")
@click.option(
    "--as", "principal", required=True, help="Who asks (a principal the constitution names)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, principal: str, as_json: bool) -> None:
    """List the findings whose case record you may see."""
    reg = _registry(state)
    listing = reg.visible(principal)
    found = listing.findings
    if as_json:
        _emit([_json(reg, f.id) for f in found])
        return
    if not found and not listing.existing:
        click.echo("no findings you may see")
        return
    # Ids are pasted into the next command: never cut or wrapped.
    table = Table(
        Column("id", no_wrap=True, min_width=max((len(f.id) for f in found), default=2)),
        "title",
        "vendor",
        "severity",
        "rm",
        "em",
        "disclose at",
    )
    for f in found:
        s = reg.schedule(f)
        table.add_row(
            f.id,
            f.title,
            f.vendor,
            f.severity,
            f.rm_state,
            f.em_state,
            format_time(s.disclose_at) if s else "not notified",
        )
    _console.print(keep_whole(table, "id"))
    if listing.existing:
        click.echo(
            f"{len(listing.existing)} more embargoed (case records not visible to you): "
            + ", ".join(listing.existing)
        )


@findings.command()
@click.argument("finding_id")
@click.option("--as", "reader", required=True, help="The reader (needs exploit-details).")
@click.option("--purpose", default="", help="Why the details are read (logged).")
@click.option("--out", default=None, help="Write the details here (default: stdout).")
@pass_state
def read(state: CliState, finding_id: str, reader: str, purpose: str, out: str | None) -> None:
    """Read escrowed details (needs a grant of exploit-details; the read is logged first)."""
    _write(out, _registry(state).read_details(finding_id, reader=reader, purpose=purpose))


@findings.command()
@click.argument("finding_id")
@click.option("--as", "principal", required=True)
@click.option("--at", default=None, help="When (RFC 3339 UTC); default now.")
@click.option("--note", default="")
@pass_state
def notify(state: CliState, finding_id: str, principal: str, at: str | None, note: str) -> None:
    """Record that the vendor was notified (day 0 of the disclosure clock)."""
    when = parse_time(at, where="--at") if at else None
    f = _registry(state).notify_vendor(finding_id, principal=principal, at=when, note=note)
    click.echo(f"{f.id}: vendor notified")


@findings.command()
@click.argument("finding_id")
@click.option("--rm", "rm_state", default=None, help="New report-management state.")
@click.option("--em", "em_state", default=None, help="New embargo-management state.")
@click.option(
    "--event",
    default=None,
    help="A case event instead (fix-ready, attacks-observed, disclosed, ...).",
)
@click.option("--at", default=None, help="When the event happened (RFC 3339 UTC).")
@click.option("--as", "principal", required=True)
@click.option("--reason", default="")
@pass_state
def transition(
    state: CliState,
    finding_id: str,
    rm_state: str | None,
    em_state: str | None,
    event: str | None,
    at: str | None,
    principal: str,
    reason: str,
) -> None:
    """Move a Vultron state (--rm / --em) or record a case event (--event)."""
    # One change per command: each is its own logged event, and an order among several
    # would be a guess.
    chosen = [x for x in (rm_state, em_state, event) if x]
    if len(chosen) != 1:
        raise InputError("give exactly one of --rm, --em or --event", where="options")
    reg = _registry(state)
    if event:
        when = parse_time(at, where="--at") if at else None
        f = reg.record_event(finding_id, event, principal=principal, at=when, note=reason)
    else:
        machine, target = ("rm", rm_state) if rm_state else ("em", em_state)
        f = reg.transition(finding_id, machine, str(target), principal=principal, reason=reason)
    click.echo(f"{f.id}: rm={f.rm_state} em={f.em_state} flags={','.join(f.flags) or '-'}")


@findings.command()
@click.argument("finding_id")
@click.option("--as", "principal", required=True)
@click.option("--early", is_flag=True, help="Reveal before the clock says so (needs a grant).")
@click.option("--out", default=None, help="Write the details here (default: not printed).")
@pass_state
def reveal(state: CliState, finding_id: str, principal: str, early: bool, out: str | None) -> None:
    """Open the commitment logged at registration: print the salt, write the details."""
    r = _registry(state).reveal(finding_id, principal=principal, early=early)
    # Details only to a file asked for: printed, they would land in a terminal's scrollback.
    if out:
        _write(out, r.details)
    _emit(
        {
            "finding_id": r.finding_id,
            "commitment": r.commitment,
            "salt": r.salt,
            "log_index": r.log_index,
            "verify": "sha256(bytes.fromhex(salt) + details) == commitment",
        }
    )


@findings.command()
@click.argument("finding_id")
@click.option("--format", "fmt", required=True, type=click.Choice(["osv", "csaf", "cve"]))
@click.option("--out", default=None, help="Write here (default: stdout).")
@click.option(
    "--as", "principal", required=True, help="Who asks (a principal the constitution names)."
)
@pass_state
def export(state: CliState, finding_id: str, fmt: str, out: str | None, principal: str) -> None:
    """Export as OSV, CSAF 2.0 or a CVE 5.x CNA container draft."""
    reg = _registry(state)
    f = reg.view(finding_id, principal=principal, action="export")
    doc = export_finding(f, fmt, reg.schedule(f), now=reg.clock.now())
    _write(out, (json.dumps(doc, indent=2) + "\n").encode())


@click.command()
@click.option(
    "--as", "principal", required=True, help="Who asks (a principal the constitution names)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def alarms(state: CliState, principal: str, as_json: bool) -> None:
    """Raise newly due alarms (recorded in the log) and list those you may see."""
    reg = _registry(state)
    # The command is also a sweep: a deployment without a server still gets its alarms logged.
    reg.raise_alarms()
    recorded = reg.alarms_for(principal)
    if as_json:
        _emit([r.to_dict() for r in recorded])
        return
    if not recorded:
        click.echo("no alarms")
        return
    table = Table(
        "due at",
        "kind",
        Column("subject", no_wrap=True, min_width=max(len(r.alarm.subject) for r in recorded)),
        "message",
        "log",
    )
    for r in recorded:
        d = r.to_dict()
        table.add_row(d["due_at"], d["kind"], d["subject"], d["message"], str(d["log_index"]))
    _console.print(keep_whole(table, "subject"))


@click.command()
@click.argument("finding_id", required=False)
@click.option(
    "--as", "principal", required=True, help="Who asks (a principal the constitution names)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def clock(state: CliState, finding_id: str | None, principal: str, as_json: bool) -> None:
    """Show the disclosure clock of one finding, or of every finding you may see."""
    # The API's own serialiser, so `--json` prints exactly what GET /custody/... answers.
    from custodes.server.routes.custody import schedule_json

    reg = _registry(state)
    found = (
        [reg.view(finding_id, principal=principal)]
        if finding_id
        else list(reg.visible(principal).findings)
    )
    rows: list[dict[str, Any]] = [
        {"id": f.id, "policy": f.policy, "clock": schedule_json(reg.schedule(f))} for f in found
    ]
    if as_json:
        _emit(rows)
        return
    for row in rows:
        c = row["clock"]
        if c is None:
            click.echo(f"{row['id']}  {row['policy']}: not started (vendor not notified)")
        else:
            click.echo(
                f"{row['id']}  {row['policy']}: disclose {c['disclose_at']} "
                f"({c['rule']}); details {c['details_at']}"
            )
