"""The root command group: settings, verbosity, and errors printed as diagnostics."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custodes import __version__
from custodes.config import Settings
from custodes.errors import Error

__all__ = ["CliState", "cli", "keep_whole", "main", "pass_state"]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CliState:
    """What every command gets: the settings (flags > environment > defaults) and verbosity."""

    def __init__(self, overrides: dict[str, Any], verbose: int) -> None:
        """The settings overrides and verbosity of the command line (settings read on first use)."""
        self._overrides = overrides
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, built on first use (a command that needs none never fails on them).

        Raises:
            click.UsageError: a setting is invalid; the message names the first one.
        """
        if self._settings is None:
            try:
                self._settings = Settings(**self._overrides)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise click.UsageError(
                    f"setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
                ) from exc
        return self._settings

    def with_overrides(self, **overrides: Any) -> Settings:
        """The settings with a command's own flags laid over the group's (None: not given).

        Raises:
            click.UsageError: a setting is invalid.
        """
        merged = {**self._overrides, **{k: v for k, v in overrides.items() if v is not None}}
        self._overrides = merged
        self._settings = None
        return self.settings


pass_state = click.make_pass_decorator(CliState)


def keep_whole(table: Table, *headers: str) -> Table:
    """Never cut or wrap the named columns: they hold ids a user copies into the next command.

    Rich shrinks columns to the terminal (80 wide when piped) and ellipsises what does not fit;
    these columns get their widest cell as a minimum, so the other columns give way (folded
    onto more lines, nothing dropped). Call it after the rows are added.
    """
    for column in table.columns:
        if column.header in headers:
            widest = max((len(str(cell)) for cell in column.cells), default=0)
            column.no_wrap = True
            column.min_width = max(widest, len(str(column.header)))
        else:
            column.overflow = "fold"  # wrapped onto more lines, never ellipsised away
    return table


# Command name -> (module, attribute). Modules are imported only when their command runs, so
# `custodes approve` does not pay for OR-Tools, FastAPI and the monitors' models at start-up.
_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("custodes.cli.serve", "serve"),
    "constitution": ("custodes.cli.constitution", "constitution"),
    "keygen": ("custodes.cli.authority", "keygen"),
    "request": ("custodes.cli.authority", "request"),
    "requests": ("custodes.cli.authority", "requests"),
    "approve": ("custodes.cli.authority", "approve"),
    "grants": ("custodes.cli.authority", "grants"),
    "revoke": ("custodes.cli.authority", "revoke"),
    "withdraw": ("custodes.cli.authority", "withdraw"),
    "break-glass": ("custodes.cli.authority", "break_glass"),
    "authorize": ("custodes.cli.authority", "authorize"),
    "log": ("custodes.cli.log", "log"),
    "keys": ("custodes.cli.keys", "keys"),
    "witness": ("custodes.cli.witness", "witness"),
    "findings": ("custodes.cli.custody", "findings"),
    "alarms": ("custodes.cli.custody", "alarms"),
    "provenance": ("custodes.cli.provenance", "provenance"),
    "clock": ("custodes.cli.custody", "clock"),
    "monitors": ("custodes.cli.monitors", "monitors"),
    "scan": ("custodes.cli.monitors", "scan"),
    "review": ("custodes.cli.monitors", "review"),
    "coalition": ("custodes.cli.coalition", "coalition"),
    "audit": ("custodes.cli.audit", "audit"),
    "usage": ("custodes.cli.usage", "usage"),
    "drill": ("custodes.cli.drill", "drill"),
    "dashboard": ("custodes.cli.dashboard", "dashboard"),
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, imported or not."""
        return sorted(set(self.commands) | set(_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, its module imported on first use (so ``custodes --help`` and
        each command load only what they need).
        """
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, attribute = _COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="custodes")
@click.option("-v", "--verbose", count=True, help="More output; -v shows tracebacks.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for local state (CUSTODES_DATA_DIR).",
)
@click.option("--database-url", default=None, help="Database URL (CUSTODES_DATABASE_URL).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, data_dir: Path | None, database_url: str | None) -> None:
    """custodes: checks and balances for frontier AI."""
    overrides = {
        k: v
        for k, v in {"data_dir": data_dir, "database_url": database_url}.items()
        if v is not None
    }
    ctx.obj = CliState(overrides, verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; custodes errors become diagnostics and a non-zero exit, not tracebacks."""
    verbose = any(
        a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"})
        for a in (argv if argv is not None else sys.argv[1:])
    )
    try:
        # Without standalone mode, click returns ctx.exit(code)'s code instead of exiting.
        result = cli.main(args=argv, prog_name="custodes", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Error as exc:
        if verbose:
            traceback.print_exc()
        # The diagnostics are text, never markup: a message quoting `[a-z]` or `[bold]` is
        # printed as it is, not swallowed as a style tag.
        err_console.print(f"[bold red]error:[/] {escape(exc.diagnostics())}", markup=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0
