"""``custodes serve``: run the server with uvicorn."""

from __future__ import annotations

import contextlib

import click

from custodes.cli._demo_witnesses import demo_witnesses
from custodes.cli._main import CliState, pass_state
from custodes.server._context import load_or_create_log_key

__all__ = ["serve"]


@click.command()
@click.option("--host", default=None, help="Listen address (CUSTODES_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (CUSTODES_PORT, default 8080).")
@click.option(
    "--demo",
    is_flag=True,
    default=None,
    help="Run the demo deployment: generates missing keys, loads examples/.",
)
@click.option(
    "--constitution",
    "constitution_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Constitution YAML to load (CUSTODES_CONSTITUTION_FILE).",
)
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for local state (as `custodes --data-dir`; `make run` passes it).",
)
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    demo: bool | None,
    constitution_file: str | None,
    data_dir: str | None,
) -> None:
    """Start the custodes server. With --demo and no --constitution, the database's first
    constitution is examples/constitution.yaml."""
    import uvicorn

    from custodes.server import create_app

    settings = state.with_overrides(
        host=host, port=port, demo=demo, constitution_file=constitution_file, data_dir=data_dir
    )
    app = create_app(settings)
    with contextlib.ExitStack() as stack:
        if settings.demo:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            log_vkey = load_or_create_log_key(settings).verifier.to_key()
            for started in stack.enter_context(demo_witnesses(settings, log_vkey)):
                click.echo(f"demo witness (an overseer's, demo keys) at {started}", err=True)
        click.echo(f"custodes listening on http://{settings.host}:{settings.port}", err=True)
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level="warning", access_log=False
        )
