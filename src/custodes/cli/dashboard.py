"""``custodes dashboard``: sign in to the overseers' dashboard with your own key."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from custodes.authority import SigningKey
from custodes.cli._main import CliState, pass_state
from custodes.cli.authority import client_for, identify, server_option, signer_options
from custodes.errors import InputError

console = Console()


@click.group()
def dashboard() -> None:
    """The overseers' dashboard (served by `custodes serve` under /dashboard/)."""


@dashboard.command()
@signer_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@pass_state
def login(
    state: CliState, key_file: Path, as_: str | None, as_json: bool, server: str | None
) -> None:
    """Sign the server's challenge with your key here; print a one-time link for the browser.

    The private key never leaves this process: only a signature over a challenge naming this
    server, you and a fresh nonce is sent. The link works once, for two minutes.
    \f
    Raises:
        InputError: the server's challenge names another origin than the one reached (a
            relayed challenge), or the key file is unreadable.
    """
    from custodes.dashboard import origin_of, sign_in_message

    key = SigningKey.from_file(key_file)
    with client_for(state, server) as client:
        base = client.base_url
        me, _ = identify(client, key, as_)
        challenge = client.call("POST", "/dashboard/key-sign-in/challenge", json={"principal": me})
        origin = origin_of(base)
        # Signed is the message rebuilt here, with the origin this command reached: a server
        # relaying another dashboard's challenge gets a signature that dashboard refuses.
        if challenge.get("origin") != origin:
            raise InputError(
                "the server's challenge names another server",
                where="origin",
                expected=origin,
                actual=str(challenge.get("origin"))[:100],
                hint="give --server exactly the URL you open the dashboard at",
            )
        message = sign_in_message(
            origin=origin, principal=me, challenge=str(challenge["challenge"])
        )
        code = client.call(
            "POST",
            "/dashboard/key-sign-in/answer",
            json={
                "principal": me,
                "challenge": challenge["challenge"],
                "signature": key.sign(message),
            },
        )
    url = base.rstrip("/") + code["url"]
    if as_json:
        click.echo(json.dumps({**code, "url": url}))
        return
    until = escape(str(code["expires_at"]))
    console.print(f"Signed in as [bold]{escape(me)}[/bold]: open this link once, before {until}:")
    click.echo(url)
