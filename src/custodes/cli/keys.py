"""``custodes keys``: issue, list and revoke the gateway's API keys."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from custodes.cli._main import CliState, keep_whole, pass_state
from custodes.gateway import ApiKey, KeyStore
from custodes.log import format_time
from custodes.wiring import Core

__all__ = ["keys"]


def _store(state: CliState) -> tuple[KeyStore, Core]:
    from custodes.wiring import open_core

    core = open_core(state.settings)
    return KeyStore(core.engine, core.log, core.clock), core


def _as_dict(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "principal": key.principal,
        "name": key.name,
        "created_at": format_time(key.created_at),
        "revoked_at": format_time(key.revoked_at) if key.revoked_at else None,
    }


@click.group()
def keys() -> None:
    """API keys that bind gateway callers to principals (stored only as SHA-256 hashes)."""


@keys.command()
@click.argument("principal")
@click.option("--name", default="", help="A label for the key (e.g. where it is used).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def create(state: CliState, principal: str, name: str, as_json: bool) -> None:
    """Issue a key to PRINCIPAL. The key is printed once and never stored.

    PRINCIPAL must be a principal of the constitution the server runs under (the newest stored
    version, else the configured file): a key for anyone else could never be granted anything.
    """
    from custodes.authority import current_constitution
    from custodes.errors import NotFoundError

    store, ctx = _store(state)
    try:
        constitution = current_constitution(ctx.settings, ctx.engine)
        if constitution is None:
            click.echo(
                "warning: no constitution is configured, so the principal cannot be "
                "checked; the gateway denies every call until one is",
                err=True,
            )
        elif principal not in constitution.principals_by_id:
            known = ", ".join(sorted(constitution.principals_by_id)[:8])
            raise NotFoundError(
                f"unknown principal {principal!r}",
                where="principal",
                expected=f"a principal of constitution version {constitution.version} "
                f"(e.g. {known})",
                hint="add the principal to the constitution by an amendment first",
            )
        issued = store.create(principal, name=name)
    finally:
        ctx.close()
    if as_json:
        click.echo(json.dumps({**_as_dict(issued.key), "key": issued.secret}))
        return
    click.echo(issued.secret)
    click.echo(f"key {issued.key.key_id} for {principal}: shown once, store it now", err=True)


@keys.command("list")
@click.option("--principal", default=None, help="Only this principal's keys.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_keys(state: CliState, principal: str | None, active: bool, as_json: bool) -> None:
    """List keys (ids and principals; secrets are never shown again)."""
    store, ctx = _store(state)
    try:
        found = store.list(principal=principal, include_revoked=not active)
    finally:
        ctx.close()
    if as_json:
        click.echo(json.dumps([_as_dict(k) for k in found]))
        return
    table = Table("key id", "principal", "name", "created", "revoked")
    for k in found:
        table.add_row(
            k.key_id,
            k.principal,
            k.name,
            format_time(k.created_at),
            format_time(k.revoked_at) if k.revoked_at else "",
        )
    Console(highlight=False).print(keep_whole(table, "key id"))


@keys.command()
@click.argument("key_id")
@click.option("--reason", default="", help="Why (recorded in the log).")
@pass_state
def revoke(state: CliState, key_id: str, reason: str) -> None:
    """Revoke KEY_ID; running servers refuse it within gateway_key_poll_ms."""
    store, ctx = _store(state)
    try:
        key = store.revoke(key_id, reason=reason)
    finally:
        ctx.close()
    click.echo(f"revoked {key.key_id} ({key.principal})")
