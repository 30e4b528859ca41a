"""``custodes keygen | request | requests | approve | grants | revoke | break-glass |
authorize``: multi-party authority from the command line.

Every write is signed here with the principal's own key (``--key``); only signatures travel.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from custodes._durations import say_seconds
from custodes.authority import (
    AuthorityClient,
    SigningKey,
    new_request,
    request_digest,
    sign_approval,
    sign_request,
)
from custodes.cli._main import CliState, pass_state
from custodes.constitution import parse_duration
from custodes.errors import ApprovalError, Error, InputError

if TYPE_CHECKING:
    from custodes.constitution import Constitution

__all__ = [
    "approve",
    "authorize",
    "break_glass",
    "grants",
    "keygen",
    "request",
    "requests",
    "revoke",
    "send_statement",
    "server_option",
    "signer_options",
]

console = Console(highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def server_option(f: F) -> F:
    """The ``--server URL`` option every command that talks to a custodes server takes."""
    return click.option(
        "--server",
        "server",
        default=None,
        metavar="URL",
        help="custodes server (default http://HOST:PORT from settings).",
    )(f)


def signer_options(f: F) -> F:
    """``--key FILE`` (required) and ``--as PRINCIPAL``: who signs, with which private key.

    The key never leaves this process; only signatures made with it are sent.
    """
    f = click.option(
        "--as",
        "as_",
        default=None,
        metavar="PRINCIPAL",
        help="Who you are (default: the principal whose key --key is).",
    )(f)
    return click.option(
        "--key",
        "key_file",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Your Ed25519 private key (custodes keygen).",
    )(f)


def client_for(state: CliState, server: str | None) -> AuthorityClient:
    """A client of ``server``, or of the server the settings describe on this machine."""
    if server is None:
        s = state.settings
        # A server listening on every interface is reached on loopback from here.
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host  # noqa: S104
        server = f"http://{host}:{s.port}"
    return AuthorityClient(server)


def identify(client: AuthorityClient, key: SigningKey, as_: str | None) -> tuple[str, int]:
    """Who holds ``key`` in the server's constitution, and its version.

    Raises:
        InputError: no principal has this key, or ``--as`` names another principal.
    """
    shown = client.call("GET", "/constitution")
    principals = shown["document"]["principals"]
    # Found by the public half of the key: the private half never leaves this process.
    mine = [p["id"] for p in principals if p.get("key") == key.public_key]
    if as_ is not None:
        if as_ not in mine:
            raise InputError(
                f"the key is not {as_}'s key in constitution version {shown['version']}",
                where="--key",
                expected=f"{as_}'s key",
                actual=", ".join(mine) or "nobody's key",
            )
        return as_, int(shown["version"])
    # One key held by several principals is ambiguous: the signer must say who they are.
    if len(mine) != 1:
        raise InputError(
            "the key is not the key of exactly one principal",
            where="--key",
            hint="name yourself with --as PRINCIPAL",
        )
    return mine[0], int(shown["version"])


def _seconds(text: str, where: str) -> int:
    """A duration option (``8h``, ``30m``, ...) in whole seconds, as a request carries it.

    Raises:
        InputError: ``text`` is not a duration.
    """
    d = parse_duration(text)
    if d is None:
        raise InputError(
            "bad duration", where=where, expected="e.g. 8h, 30m, 1d, 90s", actual=repr(text)
        )
    return int(d.total_seconds())


def send_statement(
    client: AuthorityClient,
    key: SigningKey,
    as_: str | None,
    kind: str,
    path: str,
    /,
    *,
    body: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Any:
    """Make a signed statement of ``kind`` as the principal who holds ``key``, POST it to
    ``path`` and return the server's answer.

    The request names the constitution version in force (a statement made against another
    version is refused by the server), is dated by the server's clock (:meth:`AuthorityClient.now`)
    and is signed here over its digest: only the signature travels, never the key.

    Args:
        client: the server's client.
        key: the signer's private key.
        as_: the principal ``--as`` names, or None for the one principal who holds ``key``.
        kind: the request's kind (``grant``, ``revocation``, ``amendment``, ...).
        path: the endpoint that takes this kind.
        body: fields sent beside the request and its signature (e.g. an amendment's document).
        **fields: the request's own fields; ``None`` ones are left out.

    Returns:
        The server's JSON answer.

    Raises:
        InputError: no principal has this key, or ``--as`` names another principal.
        Error: the server refused the statement (the custodes error it raised) or cannot be
            reached.
    """
    me, version = identify(client, key, as_)
    req = new_request(
        kind,
        constitution_version=version,
        requester=me,
        # Dated by the server's clock: a staging deployment's may run days ahead, and a
        # statement more than the request skew off its time is refused as stale.
        created=client.now(),
        **fields,
    )
    return client.call(
        "POST",
        path,
        json={**(body or {}), "request": req, "signature": sign_request(req, key)},
    )


def print_record(record: dict[str, Any], grant: dict[str, Any] | None = None) -> None:
    """One request as a person reads it; ``grant``, when given, is the grant it led to."""
    status = record["status"]
    # "granted" alone would mislead once the grant is revoked: say both.
    if grant is not None and grant.get("revoked_at"):
        status += f", then revoked at {grant['revoked_at']} by {grant['revoked_by']}"
    console.print(
        f"[bold]request {record['id']}[/] ({record['kind']}) by "
        f"{record['requester']}: [bold]{escape(status)}[/]"
    )
    req = record["request"]
    for field in ("capability", "resource", "purpose", "created"):
        if req.get(field) is not None:
            console.print(f"  {field}: {escape(str(req[field]))}")
    if req.get("duration_seconds") is not None:
        console.print(f"  duration: {say_seconds(req['duration_seconds'])}")
    console.print(f"  constitution version: {record['constitution_version']}")
    # The digest is what an approver signs: shown so it can be compared out of band.
    console.print(f"  digest: {record['digest']}")
    for a in record["approvals"]:
        console.print(f"  approved by {a['approver']} ({a['organisation']}) at {a['at']}")
    for rule in record["rules"]:
        mark = "[green]met[/]" if rule["satisfied"] else "[yellow]not yet[/]"
        console.print(f"  rule {rule['rule']}: {mark}")
        for m in rule["missing"]:
            console.print(f"    - {m}")
        for r in rule["rejected"]:
            console.print(f"    - {r['principal']} does not count: {r['reason']}")
    if record.get("grant_id"):
        console.print(f"  [green]grant {record['grant_id']}[/]")


def print_grant(g: dict[str, Any]) -> None:
    """One grant as a person reads it: who, what, under which rule, until when, and how it
    ended or is being reviewed."""
    state = "revoked" if g["revoked_at"] else "break-glass" if g["break_glass"] else "granted"
    on = f" on {g['resource']}" if g.get("resource") else ""
    console.print(
        f"[bold]{g['id']}[/] {g['principal']} -> {g['capability']}{escape(on)} ({state}) "
        f"rule {g['rule']}, until {g['expires_at']}"
    )
    if g["approvals"]:
        console.print(
            "  approved by "
            + ", ".join(f"{a['principal']} ({a['organisation']})" for a in g["approvals"])
        )
    if g["break_glass"]:
        console.print(
            f"  review {g['review_request_id']}: {g['review_status']} "
            f"(deadline {g['review_deadline']})"
        )
    if g["revoked_at"]:
        console.print(f"  revoked at {g['revoked_at']} by {g['revoked_by']}: {g['revoke_reason']}")


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (created with mode 0600).",
)
def keygen(out: Path) -> None:
    """Make an Ed25519 key pair; print the public key as the constitution writes it."""
    key = SigningKey.generate()
    key.write(out)
    click.echo(key.public_key)
    click.echo(
        f"private key written to {out} (mode 0600): keep it; only the public key above "
        "goes into the constitution",
        err=True,
    )


@click.command()
@click.argument("capability")
@signer_options
@click.option("--purpose", default="", help="Why you need it (some rules require one).")
@click.option("--duration", default="1h", show_default=True, help="How long: 8h, 30m, ...")
@click.option("--resource", default=None, help="For an escrow read: the finding it is for.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def request(
    state: CliState,
    capability: str,
    key_file: Path,
    as_: str | None,
    purpose: str,
    duration: str,
    resource: str | None,
    as_json: bool,
    server: str | None,
) -> None:
    """Request a grant of CAPABILITY, signed with your key."""
    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        record = send_statement(
            client,
            key,
            as_,
            # A resource makes it an escrow read: a grant for that one finding only.
            "escrow-read" if resource else "grant",
            "/authority/requests",
            capability=capability,
            purpose=purpose,
            duration_seconds=_seconds(duration, "--duration"),
            resource=resource,
        )
    if as_json:
        click.echo(json.dumps(record))
    else:
        print_record(record)


@click.command()
@click.argument("request_id", required=False)
@click.option("--status", default=None, help="Only requests in this status (pending, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def requests(
    state: CliState, request_id: str | None, status: str | None, as_json: bool, server: str | None
) -> None:
    """Show one request (REQUEST_ID) or list requests."""
    with client_for(state, server) as client:
        if request_id:
            records = [client.call("GET", f"/authority/requests/{request_id}")]
        else:
            params = {"status": status} if status else {}
            records = client.call("GET", "/authority/requests", params=params)["requests"]
        # A granted request's grant may have been revoked since: say so, not just "granted".
        granted = {r["grant_id"] for r in records if r.get("grant_id")}
        grants_by_id = (
            {g["id"]: g for g in client.call("GET", "/authority/grants")["grants"]}
            if granted and not as_json
            else {}
        )
    if as_json:
        click.echo(json.dumps(records[0] if request_id else records))
        return
    if not records:
        console.print("no requests" + (f" with status {status}" if status else ""))
    for r in records:
        print_record(r, grants_by_id.get(r.get("grant_id") or ""))


def approve_request(
    state: CliState,
    server: str | None,
    request_id: str,
    key_file: Path,
    as_: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Fetch a request, show it (an amendment with its diff and coalition effect), check its
    digest here, ask, then sign and submit only the signature.

    Raises:
        ApprovalError: the server's digest or document does not match the request it shows.
        InputError: no terminal to confirm on and no ``--yes``; the key is not the signer's.
        click.exceptions.Exit: the signer declined.
    """
    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        me, _ = identify(client, key, as_)
        record = client.call("GET", f"/authority/requests/{request_id}")
        # The digest is recomputed here from the request object itself: a server that showed
        # one request and asked for a signature over another would be caught now.
        digest = request_digest(record["request"])
        if digest != record["digest"]:
            raise ApprovalError(
                "the server's digest does not match the request it shows; refusing to sign"
            )
        # An amendment is signed only after its document is checked against the signed digest.
        amendment = _check_amendment_document(record) if record["kind"] == "amendment" else None
        if not as_json:
            console.print(f"You are [bold]{me}[/]. You are approving:")
            print_record(record)
            if amendment is not None:
                _show_amendment(client, record, amendment)
        _confirm(yes, f"Sign approval of request {request_id} as {me}?")
        # Signed over the request object shown above, never over a digest the server sent.
        _, signature = sign_approval(record["request"], key)
        result = client.call(
            "POST",
            f"/authority/requests/{request_id}/approvals",
            json={"approver": me, "signature": signature},
        )
    if as_json:
        click.echo(json.dumps(result))
    else:
        console.print(f"approval by {me} submitted")
        print_record(result)


def _confirm(yes: bool, question: str) -> None:
    """Ask before signing; without a terminal, only ``--yes`` signs.

    Raises:
        InputError: standard input is not a terminal and ``--yes`` was not given.
        click.exceptions.Exit: the signer declined (exit 1, nothing signed).
    """
    if yes:
        return
    if not sys.stdin.isatty():
        # A piped "y" is not a person reading what they sign: only an explicit flag is.
        raise InputError(
            "not signed: without a terminal to confirm on, signing needs --yes",
            hint="read what is shown above, then run the command again with --yes",
        )
    if not click.confirm(question):
        console.print("not signed: you declined; nothing was sent")
        raise click.exceptions.Exit(1)


def _check_amendment_document(record: dict[str, Any]) -> Constitution:
    """The proposed document the server sent with an amendment, read and checked here against
    the digest in the signed request: the signer signs what they read.

    Raises:
        ConstitutionError: the document is not a valid constitution.
        ApprovalError: it is not the document the request names.
    """
    # Imported here: reading a constitution pulls in Cedar, which most commands never need.
    from custodes.constitution import read_constitution

    new = read_constitution(record.get("document", ""), name="proposed constitution")
    if new.digest != record["request"].get("amendment", {}).get("digest"):
        raise ApprovalError("the proposed document does not match the digest in the request")
    return new


def _show_amendment(client: AuthorityClient, record: dict[str, Any], new: Constitution) -> None:
    """What the signer is about to adopt: the text diff and what it does to coalitions."""
    from custodes.constitution import read_constitution  # only signers of amendments need it

    shown = client.call("GET", "/constitution")
    old = read_constitution(shown["text"], name=f"constitution version {shown['version']}")
    based_on = record.get("constitution_version")
    console.print(
        f"\n[bold]The amendment[/]: version {old.version} (in force) → version {new.version} "
        f"(proposed), digest {new.digest}"
    )
    # A proposal made against an older version cannot be adopted: say so before signing.
    if based_on is not None and int(based_on) != old.version:
        console.print(
            f"[yellow]note[/]: it was proposed against version {based_on}; version "
            f"{old.version} is in force now"
        )
    diff = list(
        difflib.unified_diff(
            old.text.splitlines(),
            new.text.splitlines(),
            fromfile=f"version {old.version} (in force)",
            tofile=f"version {new.version} (proposed)",
            lineterm="",
        )
    )
    if not diff:
        console.print("  the text is unchanged")
    for line in diff:
        style = (
            "bold"
            if line.startswith(("---", "+++"))
            else "cyan"
            if line.startswith("@@")
            else "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else ""
        )
        console.print(Text(line, style=style))
    _show_coalition_effect(old, new)


def _show_coalition_effect(old: Constitution, new: Constitution) -> None:
    """Who could seize what, before and after (the coalition package's exact analysis)."""
    # The analysis is bounded (coalitions of up to 3, 10 s each) so that showing the effect
    # never keeps a signer waiting long; a failure is shown, and the signer still decides.
    from custodes.coalition import analyze, diff_analyses, game_from_constitution

    console.print("\n[bold]What it changes in who could seize what[/] (smallest coalitions):")
    try:
        before = analyze(game_from_constitution(old), max_size=3, time_limit=10.0)
        after = analyze(game_from_constitution(new), max_size=3, time_limit=10.0)
    except Error as exc:
        console.print(f"  [yellow]the coalition analysis failed[/]: {exc.diagnostics()}")
        return
    # Only what changes: the signer judges the difference, not the whole analysis again.
    changed = [d for d in diff_analyses(before, after) if d.changed]
    if not changed:
        console.print("  nothing: every goal needs the same people and organisations as before")
    for d in changed:
        parts = []
        for what, a, b in (
            ("people", d.old_people, d.new_people),
            ("organisations", d.old_organisations, d.new_organisations),
        ):
            if a != b:
                parts.append(f"{what} {_count(a)} → {_count(b)}")
        parts += [f"new single point of failure {p}" for p in d.spof_added]
        parts += [f"no longer a single point of failure: {p}" for p in d.spof_removed]
        parts += [f"new veto player {p}" for p in d.veto_added]
        parts += [f"no longer a veto player: {p}" for p in d.veto_removed]
        mark = (
            "[bold red]below the floor[/] "
            if d.below_floor
            else "[red]weaker[/] "
            if d.weaker
            else ""
        )
        label = d.label + (" (protected)" if d.protected else "")
        console.print(f"  {mark}{escape(label)}: {escape(', '.join(parts) or 'changed')}")


def _count(n: int | None) -> str:
    """A minimum coalition size, or that no coalition reaches the goal."""
    return "unreachable" if n is None else str(n)


@click.command()
@click.argument("request_id")
@signer_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def approve(
    state: CliState,
    request_id: str,
    key_file: Path,
    as_: str | None,
    yes: bool,
    as_json: bool,
    server: str | None,
) -> None:
    """Fetch REQUEST_ID, show it, sign its digest locally, submit only the signature."""
    approve_request(state, server, request_id, key_file, as_, yes, as_json)


@click.command()
@click.option("--principal", default=None, help="Only this principal's grants.")
@click.option("--active", is_flag=True, help="Only grants in force now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def grants(
    state: CliState, principal: str | None, active: bool, as_json: bool, server: str | None
) -> None:
    """List grants."""
    # Filtering is the server's (it owns the clock grants expire by).
    params: dict[str, Any] = {"active": active}
    if principal:
        params["principal"] = principal
    with client_for(state, server) as client:
        result = client.call("GET", "/authority/grants", params=params)["grants"]
    if as_json:
        click.echo(json.dumps(result))
        return
    if not result:
        console.print("no grants")
    for g in result:
        print_grant(g)


@click.command()
@click.argument("grant_id")
@signer_options
@click.option("--reason", required=True, help="Why (recorded in the log).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def revoke(
    state: CliState,
    grant_id: str,
    key_file: Path,
    as_: str | None,
    reason: str,
    as_json: bool,
    server: str | None,
) -> None:
    """Revoke GRANT_ID now (holder, an approver of its rule, or an overseer)."""
    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        # The revocation is a signed request too: who revoked is proven, not claimed.
        result = send_statement(
            client,
            key,
            as_,
            "revocation",
            "/authority/revocations",
            grant=grant_id,
            reason=reason,
        )
    if as_json:
        click.echo(json.dumps(result))
    else:
        print_grant(result)


@click.command()
@click.argument("request_id")
@signer_options
@click.option("--reason", default="", help="Why (recorded in the log).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def withdraw(
    state: CliState,
    request_id: str,
    key_file: Path,
    as_: str | None,
    reason: str,
    as_json: bool,
    server: str | None,
) -> None:
    """Withdraw your own pending REQUEST_ID (a request or an amendment proposal): logged, and
    no approval counts towards it afterwards."""
    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        result = send_statement(
            client,
            key,
            as_,
            "withdrawal",
            "/authority/withdrawals",
            request_id=request_id,
            reason=reason,
        )
    if as_json:
        click.echo(json.dumps(result))
    else:
        print_record(result)


@click.command("break-glass")
@click.argument("capability")
@click.option("--rule", required=True, help="The constitution's break-glass rule.")
@click.option("--statement", required=True, help="What the emergency is.")
@click.option(
    "--duration",
    default="30m",
    show_default=True,
    help="How long the grant lasts: 30m, 2h, ...; at most the rule's max_duration.",
)
@signer_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def break_glass(
    state: CliState,
    capability: str,
    rule: str,
    statement: str,
    duration: str,
    key_file: Path,
    as_: str | None,
    as_json: bool,
    server: str | None,
) -> None:
    """Take CAPABILITY at once under a break-glass rule; every overseer is told and a review
    by a quorum follows."""
    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        result = send_statement(
            client,
            key,
            as_,
            "break-glass",
            "/authority/break-glass",
            capability=capability,
            # The rule named in the signed request: the server refuses it if it covers another
            # capability.
            rule=rule,
            purpose=statement,
            duration_seconds=_seconds(duration, "--duration"),
        )
    if as_json:
        click.echo(json.dumps(result))
    else:
        print_grant(result)


@click.command()
@click.argument("principal")
@click.argument("capability")
@click.option(
    "--resource",
    default=None,
    metavar="ID",
    help="The resource the use is for, e.g. a finding (CUSTODES-2026-0001) for "
    "exploit-details: a grant for one resource does not cover another.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def authorize(
    state: CliState,
    principal: str,
    capability: str,
    resource: str | None,
    as_json: bool,
    server: str | None,
) -> None:
    """May PRINCIPAL use CAPABILITY (on --resource) now? Exits 1 with the reasons if not."""
    params = {"principal": principal, "capability": capability}
    if resource is not None:
        params["resource"] = resource
    with client_for(state, server) as client:
        # A denial comes back as PolicyDenied with every rule's reason; the CLI exits 1.
        result = client.call("GET", "/authority/authorize", params=params)
    if as_json:
        click.echo(json.dumps(result))
    else:
        console.print(f"[green]allowed[/]: {result['grant']['explanation']}")
