"""``custodes provenance``: hash weights, register artifacts, show and verify lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from custodes.cli._main import CliState, pass_state
from custodes.errors import ConfigError, ProvenanceError
from custodes.provenance import (
    FileManifest,
    LineageNode,
    ModelRegistry,
    hash_path,
    lineage_svg,
    provenance_coalitions,
)

if TYPE_CHECKING:
    from custodes.wiring import Core

__all__ = ["provenance"]

_console = Console(highlight=False, soft_wrap=True)


def _registry(state: CliState) -> tuple[ModelRegistry, Core]:
    from custodes.wiring import build_records, open_core

    settings = state.settings
    database = settings.data_dir / "custodes.db"
    if not settings.database_url and not database.exists():
        # The registry lives in a deployment's database: refuse rather than make a new one.
        raise ConfigError(
            f"no custodes database at {database}",
            hint="pass the data folder of your deployment (--data-dir DIR or CUSTODES_DATA_DIR)",
        )
    core = open_core(settings)
    command = click.get_current_context()
    command.call_on_close(core.close)
    records = build_records(core)
    command.call_on_close(records.custody.close)
    return records.provenance, core


@click.group()
def provenance() -> None:
    """The model registry: artifacts by digest, training runs, lineage."""


@provenance.command("hash")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--manifest", "show_manifest", is_flag=True, help="Print the whole manifest.")
def hash_command(path: Path, show_manifest: bool) -> None:
    """Hash a weights or dataset directory (or a file) as an OpenSSF model-signing manifest."""
    m = hash_path(path)
    if show_manifest:
        click.echo(json.dumps(m.to_document(), indent=2))
    else:
        click.echo(f"{m.digest}  {path}  ({len(m.files)} files)")


@provenance.command("register")
@click.argument("kind", type=click.Choice(["dataset", "code", "config", "weights"]))
@click.option("--as", "principal", required=True, help="The registering principal.")
@click.option("--name", required=True, help="A name for the artifact.")
@click.option("--path", type=click.Path(exists=True, path_type=Path), help="Hash this path.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--digest", help="sha256:<hex> of a single file or archive (code, config).")
@click.option("--git-commit", help="The commit the code is at (code only).")
@pass_state
def register(
    state: CliState,
    kind: str,
    principal: str,
    name: str,
    path: Path | None,
    manifest: Path | None,
    digest: str | None,
    git_commit: str | None,
) -> None:
    """Register a root artifact in the deployment's registry (the entry is logged)."""
    m: FileManifest | None = None
    if path is not None:
        m = hash_path(path)
    elif manifest is not None:
        m = FileManifest.from_document(json.loads(manifest.read_text()), where=str(manifest))
    registry, _ = _registry(state)
    a = registry.register_artifact(
        principal, kind, name=name, manifest=m, digest=digest, git_commit=git_commit
    )
    click.echo(f"registered {a.kind} {a.digest} ({a.name}) at log index {a.log_index}")


def _tree(node: LineageNode) -> Tree:
    def label(n: LineageNode) -> str:
        a = n.artifact
        role = f"[dim]{n.role}[/dim] " if n.role else ""
        text = f"{role}[bold]{a.kind}[/bold] {escape(a.name)} {a.digest[:19]}…"
        if n.repeat:
            return text + " [dim](shown above)[/dim]"
        if n.run is not None:
            r = n.run
            return (
                text + f"\n  [cyan]run {r.id[:12]}[/cyan] by {r.statement.builder}, "
                f"requested by {r.requester}, grant {r.grant_id}"
            )
        return text + " [green](root)[/green]"

    tree = Tree(label(node))
    stack = [(node, tree)]
    while stack:
        n, t = stack.pop()
        for child in n.inputs:
            sub = t.add(label(child))
            stack.append((child, sub))
    return tree


@provenance.command()
@click.argument("digest")
@click.option("--svg", "svg_out", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def lineage(state: CliState, digest: str, svg_out: Path | None) -> None:
    """Print the lineage of DIGEST back to its registered roots (--svg FILE draws it)."""
    registry, _ = _registry(state)
    node = registry.lineage(digest)
    _console.print(_tree(node))
    if svg_out is not None:
        svg_out.write_text(lineage_svg(node))
        click.echo(f"wrote {svg_out}")


@provenance.command()
@click.argument("digest")
@pass_state
def verify(state: CliState, digest: str) -> None:
    """Check the lineage of DIGEST offline against the log: entries, inclusion proofs,
    manifests, DSSE signatures, and each run's grant with its approvals.

    The checkpoint itself (its signature, its witnesses) is `custodes log verify`'s to check.
    """
    registry, _ = _registry(state)
    report = registry.verify(digest)
    for p in report.problems:
        click.echo(f"problem: {p}")
    if report.problems:
        raise ProvenanceError(
            f"the lineage of {digest} does not verify: {len(report.problems)} problem(s)"
        )
    click.echo(
        f"ok: {report.artifacts} artifacts and {report.runs} runs verified against the log's "
        f"checkpoint of size {report.checkpoint_size}"
    )


@provenance.command("coalitions")
@click.argument(
    "constitution", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, 600),
    default=10.0,
    show_default=True,
    help="Seconds the solver may take per goal and objective.",
)
@pass_state
def coalitions(state: CliState, constitution: Path | None, time_limit: float) -> None:
    """Who could start a training run, promote weights, or change a model's tier: the
    smallest coalitions (the coalition analysis) for CONSTITUTION (default: the deployment's
    constitution file)."""
    from custodes.constitution import read_constitution

    path = constitution or state.settings.constitution_file
    if path is None:
        raise ConfigError(
            "no constitution to analyse",
            hint="pass a constitution file, or set CUSTODES_CONSTITUTION_FILE",
        )
    for a in provenance_coalitions(read_constitution(path), time_limit=time_limit):
        if a.organisations is None:
            click.echo(f"{a.label}: nobody ({a.note})")
            continue
        bound = "" if a.exact else "at most "
        click.echo(
            f"{a.label}: {a.organisations} organisation(s), {bound}{a.people} people, e.g. "
            f"{', '.join(a.coalition)} ({a.note})"
        )


@provenance.command("evaluate")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "principal", required=True, help="The registering principal.")
@pass_state
def evaluate(state: CliState, envelope: Path, principal: str) -> None:
    """Register a capability evaluation: ENVELOPE is the DSSE envelope (JSON) of its in-toto
    statement, signed by an evaluator of the constitution (provenance.evaluators)."""
    registry, _ = _registry(state)
    e = registry.register_evaluation(principal, envelope.read_bytes())
    click.echo(
        f"registered evaluation {e.id}: {e.evaluation} {e.score:g} of {e.weights} by {e.evaluator}"
    )


@provenance.command("promote")
@click.argument("digest")
@click.option("--as", "principal", required=True, help="The registering principal.")
@click.option("--tier", "capability", required=True, help="The tier (provenance.tiers).")
@click.option("--grant", "grant_id", required=True, help="The promotion grant's id.")
@pass_state
def promote(state: CliState, digest: str, principal: str, capability: str, grant_id: str) -> None:
    """Promote the weights DIGEST to serve in a tier, under a grant of the constitution's
    promotion capability bound to promotion:<tier>:<digest>."""
    registry, _ = _registry(state)
    p = registry.promote(principal, digest, capability=capability, grant_id=grant_id)
    click.echo(
        f"promoted {p.weights} to {p.capability}: promotion {p.id}, requested by "
        f"{p.requester}, evaluations {', '.join(p.evaluations) or '(none required)'}"
    )


@provenance.command("serving")
@click.argument("digest")
@click.option("--tier", "capability", required=True, help="The tier to ask about.")
@pass_state
def serving(state: CliState, digest: str, capability: str) -> None:
    """May the weights DIGEST serve in a tier? Their promotions, evaluations and the verdict
    (exit 1 when they may not)."""
    registry, _ = _registry(state)
    for e in registry.evaluations(digest):
        click.echo(f"evaluation {e.id}: {e.evaluation} {e.score:g} by {e.evaluator}")
    for p in registry.promotions(digest):
        click.echo(f"promotion {p.id}: to {p.capability} under grant {p.grant_id}")
    verdict = registry.serving_verdict(digest, capability)
    for reason in verdict.reasons:
        click.echo(f"problem: {reason}")
    if not verdict.approved:
        raise ProvenanceError(f"{digest} may not serve in {capability!r}")
    click.echo(f"ok: {digest} may serve in {capability!r}")


@provenance.command("attest")
@click.option(
    "--weights",
    "path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The weights the model server loaded.",
)
@click.option("--as", "server", required=True, help="The model server's workload principal.")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Its workload key (custodes keygen).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8010, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--rehash-s", default=60.0, show_default=True, type=click.FloatRange(0), help="0: never."
)
def attest(path: Path, server: str, key_file: Path, host: str, port: int, rehash_s: float) -> None:
    """Run the attesting sidecar beside a model server: GET /attestation?nonce=N answers the
    digest of the weights at --weights, signed with the server's workload key."""
    from datetime import UTC, datetime

    from custodes.authority import SigningKey
    from custodes.provenance import Attester, serve_attester

    attester = Attester(
        path,
        server=server,
        key=SigningKey.from_file(key_file).private,
        clock=lambda: datetime.now(UTC),
        rehash_s=rehash_s,
    )
    attester.start()
    httpd = serve_attester(attester, host, port)
    click.echo(
        f"attesting {attester.digest} ({path}) as {server} on "
        f"http://{host}:{httpd.server_address[1]}/attestation",
        err=True,
    )
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        attester.stop()
        httpd.server_close()
