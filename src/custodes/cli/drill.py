"""``custodes drill list | run``: attacks run against a live deployment, with a scorecard."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custodes.cli._main import CliState, keep_whole, pass_state
from custodes.cli.authority import server_option
from custodes.drills import (
    Credentials,
    LocalModelAccess,
    Scenario,
    Scorecard,
    Step,
    StepResult,
    Target,
    builtin_scenarios,
    read_scenario_file,
    run_drill,
    scorecard_html,
    scorecard_json,
    scorecard_markdown,
)
from custodes.errors import DrillError

__all__ = ["drill"]

console = Console(highlight=False, soft_wrap=True)
_REPORTS: dict[str, Callable[[Scorecard], str]] = {
    ".html": scorecard_html,
    ".md": scorecard_markdown,
    ".json": scorecard_json,
}
_STYLE = {
    "stopped": "green",
    "revealed": "green",
    "MISSED": "bold red",
    "not runnable": "yellow",
    "done": "dim",
}


@click.group()
def drill() -> None:
    """Run attacks against a deployment and score the controls that stop or reveal them."""


@drill.command("list")
def list_drills() -> None:
    """List the built-in drills."""
    table = Table("drill", "title", "steps")
    for s in builtin_scenarios():
        table.add_row(s.id, s.title, str(len(s.steps)))
    console.print(table)


def _scenarios(name: str) -> list[Scenario]:
    """The drills ``name`` means: a built-in drill's id, ``all`` of them, or a scenario file.

    Raises:
        DrillError: none of those, or a scenario file that cannot be read or is not valid.
    """
    builtin = {s.id: s for s in builtin_scenarios()}
    if name == "all":
        return list(builtin.values())
    if name in builtin:
        return [builtin[name]]
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return [read_scenario_file(path)]
    raise DrillError(
        f"no drill {name!r}",
        hint=f"one of {', '.join(builtin)}, `all`, or a scenario file (.yaml)",
    )


def _read_api_keys(path: Path) -> dict[str, str]:
    """The principal -> API key mapping of a JSON or YAML file (at most 1 MiB).

    Raises:
        DrillError: the file cannot be read, is too large, or is not such a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DrillError(f"cannot read {path}: {exc.strerror}") from None
    if len(text) > 1 << 20:
        raise DrillError(f"{path}: more than 1 MiB; expected a mapping of principal to API key")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DrillError(f"{path}: not JSON or YAML: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise DrillError(f"{path}: expected a mapping of principal to API key")
    return data


def _local_model(path: Path) -> LocalModelAccess | None:
    """The local model server's operator access in ``path`` (None if there is no file).

    Raises:
        DrillError: the file is not a JSON object with a url and a token.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8")[: 1 << 16])
        return LocalModelAccess(url=str(data["url"]).rstrip("/"), token=str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DrillError(
            f"{path}: expected a JSON object with url and token ({exc.__class__.__name__})"
        ) from None


@contextmanager
def _operator(state: CliState, issue: bool) -> Iterator[tuple[object, object, Callable[[], None]]]:
    """Issue and revoke API keys on the deployment's own database (``custodes keys``)."""
    if not issue:
        yield None, None, lambda: None
        return
    from custodes.gateway import KeyStore
    from custodes.staging import follow_log
    from custodes.wiring import open_core

    core = open_core(state.settings)
    store = KeyStore(core.engine, core.log, core.clock)
    issued: list[str] = []

    # The operator's side of a drill: keys issued for the attacker to hold, a principal's keys
    # revoked as an operator would on noticing a theft, and what was issued revoked at the end.
    # Each is timed by the deployment's clock as its log has it now (a staging clock the drill
    # advances runs ahead of the one this process opened with).
    def create(principal: str) -> str:
        follow_log(core.clock, core.log)
        key = store.create(principal, name="custodes drill")
        issued.append(key.key.key_id)
        return key.secret

    def revoke_all(principal: str) -> None:
        follow_log(core.clock, core.log)
        for k in store.list(principal=principal, include_revoked=False):
            store.revoke(k.key_id, reason="custodes drill: the key was stolen")

    def tidy() -> None:
        follow_log(core.clock, core.log)
        for key_id in issued:
            if not any(k.key_id == key_id and k.revoked_at for k in store.list()):
                store.revoke(key_id, reason="custodes drill: finished")

    try:
        yield create, revoke_all, tidy
    finally:
        core.close()


def _progress(step: Step, result: StepResult | None) -> None:
    """Show a step under way (None: not done yet), then its outcome, time and log entries."""
    if result is None:
        # The step under way, overwritten by its result; only a terminal can overwrite.
        if console.is_terminal:
            console.print(f"  [dim]…[/] {escape(step.title)}", end="\r")
        return
    style = _STYLE[result.outcome]
    took = f" {result.seconds:.2f} s" if result.seconds is not None else ""
    console.print(
        f"  [{style}]{result.outcome:>12}[/]{took} {escape(step.title)}"
        + (
            f" [dim](log {', '.join(map(str, result.log_indices))})[/]"
            if result.log_indices
            else ""
        )
    )


def _table(card: Scorecard) -> Table:
    """The scorecard's columns; each step's account (often long) is printed below it
    (:func:`_accounts`), so that no column folds it into a narrow strip."""
    table = Table(title=escape(f"{card.title} ({card.drill})"))
    for header in ("step", "actor", "outcome", "detection", "log", "expected control"):
        table.add_column(header)
    for s in card.steps:
        table.add_row(
            escape(s.step),
            escape(s.actor or "—"),
            f"[{_STYLE[s.outcome]}]{s.outcome}[/]",
            f"{s.seconds:.2f} s" if s.seconds is not None else "—",
            ", ".join(map(str, s.log_indices)) or ("outside" if s.outside else "—"),
            escape(s.control),
        )
    return keep_whole(table, "step", "actor", "detection", "log")


def _accounts(card: Scorecard) -> None:
    """Each step's account of why it had its outcome, and what it saw outside the log."""
    for s in card.steps:
        console.print(
            f"[bold]{escape(s.step)}[/] [{_STYLE[s.outcome]}]{s.outcome}[/]: {escape(s.why)}"
        )
        for o in s.outside:
            console.print(f"    outside the log: {escape(o)}")


@drill.command("run")
@click.argument("name")
@server_option
@click.option(
    "--keys",
    "keys_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder of the actors' Ed25519 private keys, <name>.key (default: the demo's).",
)
@click.option(
    "--api-keys",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="JSON or YAML mapping of principal to API key.",
)
@click.option(
    "--issue-keys",
    is_flag=True,
    help="Issue (and afterwards revoke) API keys for the actors on the deployment's database "
    "(--data-dir / --database-url), as `custodes keys create` does.",
)
@click.option(
    "--log-signing-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The log operator's signing key, for the rollback and fork drills.",
)
@click.option("--log-key", default=None, help="The log's verifier key to pin (vkey text).")
@click.option(
    "--report",
    "reports",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scorecard to FILE (.html, .md or .json); with `all` or several drills, one "
    "file each (FILE's stem gets the drill's id).",
)
@click.option(
    "--staging-clock-token",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The staging clock's token, for the steps that let time pass (default: "
    "<data_dir>/staging-clock.token, if there is one).",
)
@click.option(
    "--local-model",
    "local_model_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The local model server's operator file (url, token), for the step that plants a "
    "loyalty (default: <data_dir>/local-model.json, if there is one).",
)
@click.option(
    "--leave-pending",
    is_flag=True,
    help="Leave the requests and proposals the drill made pending (by default each requester "
    "withdraws theirs once the drill is scored).",
)
@pass_state
def run(
    state: CliState,
    name: str,
    server: str | None,
    keys_dir: Path | None,
    api_keys: Path | None,
    issue_keys: bool,
    log_signing_key: Path | None,
    log_key: str | None,
    reports: tuple[Path, ...],
    staging_clock_token: Path | None,
    local_model_file: Path | None,
    leave_pending: bool,
) -> None:
    """Run drill NAME (a built-in id, `all`, or a scenario file) and print its scorecard.

    Exits 1 if any step was MISSED. The drill acts on the deployment for real: run it against
    a demo or staging deployment, never production.
    """
    for report in reports:
        if report.suffix not in _REPORTS:
            raise DrillError(
                f"--report {report}: expected a file name ending {', '.join(_REPORTS)}"
            )
    scenarios = _scenarios(name)
    if server is None:
        s = state.settings
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host  # noqa: S104
        server = f"http://{host}:{s.port}"
    if keys_dir is None:
        from custodes.authority import demo_constitution_path

        demo = demo_constitution_path()
        keys_dir = demo.parent / "keys" if demo is not None else None
    signer = None
    if log_signing_key is not None:
        from custodes.log import NoteSigner

        signer = NoteSigner.from_key(log_signing_key.read_text(encoding="utf-8").strip())
    token_file = staging_clock_token or state.settings.staging_clock_token_file
    token = token_file.read_text(encoding="utf-8").strip() if token_file.is_file() else None
    local_model = _local_model(local_model_file or state.settings.data_dir / "local-model.json")
    missed = False
    with (
        _operator(state, issue_keys) as (create, revoke_all, tidy),
        Target(server, log_key=log_key) as target,
    ):
        credentials = Credentials(
            keys_dir=keys_dir,
            api_keys=_read_api_keys(api_keys) if api_keys else {},
            issue_api_key=create,  # type: ignore[arg-type]
            revoke_api_keys=revoke_all,  # type: ignore[arg-type]
            log_signer=signer,
            staging_token=token,
            local_model=local_model,
        )
        try:
            for scenario in scenarios:
                console.print(f"[bold]drill {scenario.id}[/]: {escape(scenario.title)}")
                card = run_drill(
                    scenario, target, credentials, progress=_progress, tidy=not leave_pending
                )
                console.print(_table(card))
                _accounts(card)
                for line in card.tidied:
                    console.print(f"tidied up: {escape(line)}")
                style = "bold red" if card.missed else "green"
                console.print(f"[{style}]{card.verdict}[/] in {card.seconds:.1f} s")
                missed = missed or bool(card.missed)
                for report in reports:
                    # `all` names each file by its drill, however many drills there are now.
                    path = (
                        report
                        if name != "all" and len(scenarios) == 1
                        else report.with_name(f"{report.stem}-{scenario.id}{report.suffix}")
                    )
                    path.write_text(_REPORTS[path.suffix](card), encoding="utf-8")
                    console.print(f"scorecard written to {escape(str(path))}")
        finally:
            tidy()
    if missed:
        raise click.exceptions.Exit(1)
