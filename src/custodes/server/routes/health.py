"""The front page (``GET /``), liveness and version.

``GET /`` tells a person (HTML, when the client accepts it) or a program (JSON otherwise) where
everything is: the API pages, the log's checkpoints and public key, the witnesses. Everything it
shows is public: the log's verifier key is what every client needs to check a checkpoint.
"""

from __future__ import annotations

import html
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from custodes import __version__
from custodes.errors import NotFoundError
from custodes.server._deps import deployment_of

router = APIRouter(tags=["health"])

# Where things are, in the order a newcomer wants them: people first (the dashboard).
_LINKS: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "/dashboard/", "the overseers' dashboard: what is pending, granted, alarming"),
    ("docs", "/docs", "the API, interactive (Swagger UI)"),
    ("redoc", "/redoc", "the API, as a reference (ReDoc)"),
    ("openapi", "/openapi.json", "the OpenAPI description"),
    ("checkpoint", "/checkpoint", "the log's newest signed checkpoint (C2SP tlog-checkpoint)"),
    ("log_key", "/log/key", "the log's public (verifier) key, to check checkpoints with"),
    ("cosigned_checkpoint", "/checkpoint/cosigned", "the newest checkpoint the witnesses cosigned"),
    ("witnesses", "/witnesses", "each witness: its URL and the size it last cosigned"),
    ("constitution", "/constitution", "the constitution in force"),
    ("coalition", "/coalition", "who could seize what: the smallest coalitions"),
    ("models", "/v1/models", "the models the gateway serves (needs an API key)"),
    ("healthz", "/healthz", "liveness, the log's size, and whether it refuses appends"),
)


class HealthOut(BaseModel):
    """Liveness, and whether the log takes appends."""

    status: Literal["ok", "log_halted"]
    version: str
    log_size: int
    log_sequencer: bool = Field(
        description="Whether this process signs the log's checkpoints (with log_replicas, only "
        "the replica holding the log's advisory lock does; always true without)."
    )
    log_halted: str | None = Field(
        default=None, description="Why the log refuses appends (absent while it takes them)."
    )
    constitution_version: int | None = Field(
        default=None,
        description="The constitution version this process decides under (absent: none is "
        "loaded, so it denies everything); replicas converge on the newest adopted.",
    )
    change_notifications: Literal["listening", "reconnecting"] | None = Field(
        default=None,
        description="With log_replicas: whether this process's LISTEN connection for other "
        "replicas' grant changes and amendments is open (while reconnecting, the "
        "authority_poll_ms poll still brings them).",
    )


@router.get("/healthz", response_model_exclude_none=True)
def healthz(request: Request) -> HealthOut:
    """Liveness (always 200 while serving); ``status`` is ``log_halted`` with the reason when
    the log refuses appends (a failed self-check or an alarm: docs/verify-the-log.md)."""
    ctx = deployment_of(request)
    log = ctx.log
    halted = log.halted
    # A process with no constitution still answers: liveness must not depend on it, and the
    # absent version tells an operator this process denies everything.
    try:
        version: int | None = ctx.authority.constitution.version
    except NotFoundError:
        version = None
    feed = ctx.replica_feed
    return HealthOut(
        status="ok" if halted is None else "log_halted",
        version=__version__,
        log_size=log.size(),
        log_sequencer=log.leads,
        log_halted=halted,
        constitution_version=version,
        change_notifications=(
            None
            if feed is None or not feed.listen
            else "listening"
            if feed.listening.is_set()
            else "reconnecting"
        ),
    )


class LogAbout(BaseModel):
    """The log a client checks: its origin, size and verifier key."""

    origin: str
    size: int
    public_key: str = Field(description="The C2SP signed-note verifier key of checkpoints.")


class WitnessAbout(BaseModel):
    """A witness of the log's policy, and its URL when the policy gives one."""

    name: str
    url: str | None


class AboutOut(BaseModel):
    """Where everything is (``GET /`` for a program)."""

    name: Literal["custodes"] = "custodes"
    version: str
    demo: bool
    log: LogAbout
    witnesses: list[WitnessAbout]
    witness_quorum: str | None
    dashboard: str
    links: dict[str, str]


@router.get("/", response_model=None)
def front_page(request: Request) -> Response:
    """Where everything is: HTML for a browser, JSON for a program (``Accept`` decides)."""
    about = _about(request)
    # Vary: a cache must not answer a browser with the JSON a program got (or the reverse);
    # no-store: the log's size changes with every entry.
    headers = {"Vary": "Accept", "Cache-Control": "no-store"}
    if _wants_html(request.headers.get("accept", "")):
        return HTMLResponse(_render(about), headers=headers)
    return JSONResponse(about.model_dump(mode="json"), headers=headers)


def _about(request: Request) -> AboutOut:
    """What the server is: its version, the log's origin, size and key, the witnesses and
    their quorum, and where the rest of the API is."""
    ctx = deployment_of(request)
    policy = ctx.witness.policy if ctx.witness is not None else None
    return AboutOut(
        version=__version__,
        demo=bool(ctx.settings.demo),
        log=LogAbout(
            origin=ctx.log.origin, size=ctx.log.size(), public_key=ctx.log.signer.verifier.to_key()
        ),
        witnesses=[
            WitnessAbout(name=w.name, url=w.url) for w in (policy.witnesses if policy else ())
        ],
        witness_quorum=policy.describe() if policy is not None else None,
        dashboard="/dashboard/",
        links={name: path for name, path, _ in _LINKS},
    )


def _wants_html(accept: str) -> bool:
    """True when the client ranks text/html at least as high as JSON (RFC 9110 §12.5.1)."""
    quality: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                # A malformed weight ranks the type last rather than failing the request.
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    html_q = quality.get("text/html", 0.0)
    # */* counts for JSON: curl and most libraries send only */*, and a program should get
    # what it can parse; a browser names text/html explicitly.
    json_q = max(quality.get("application/json", 0.0), quality.get("*/*", 0.0))
    return html_q > 0 and html_q >= json_q


def _render(about: AboutOut) -> str:
    """The front page as HTML, from the same model as the JSON answer (every value escaped;
    the style is inline in the document, as the page loads nothing else)."""
    e = html.escape
    log = about.log
    rows = "".join(
        f'<li><a href="{e(path)}">{e(path)}</a> — {e(what)}</li>' for _, path, what in _LINKS
    )
    witnesses = (
        "".join(
            f"<li>{e(w.name)}" + (f" at <code>{e(w.url)}</code>" if w.url else "") + "</li>"
            for w in about.witnesses
        )
        or "<li>none: this log's checkpoints are not cosigned</li>"
    )
    quorum = f"<p>Quorum: {e(about.witness_quorum)}.</p>" if about.witness_quorum else ""
    demo = (
        '<p class="demo">This is the <strong>demo deployment</strong>: its keys are published '
        "in <code>examples/keys/</code>. Never trust it with anything real.</p>"
        if about.demo
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>custodes</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; }}
body {{ padding: 0 1rem; }}
code {{ font-size: 0.9em; word-break: break-all; }}
.demo {{ border-left: 4px solid #c60; padding-left: 0.75rem; }}
</style>
</head>
<body>
<h1>custodes {e(about.version)}</h1>
<p>Checks and balances for frontier AI.</p>
{demo}
<h2>The log</h2>
<p>Origin <code>{e(log.origin)}</code>, {log.size} entries.
Its public key, to check checkpoints and receipts with:</p>
<p><code>{e(log.public_key)}</code></p>
<h2>Witnesses</h2>
<ul>{witnesses}</ul>
{quorum}
<h2>Where things are</h2>
<ul>{rows}</ul>
</body>
</html>
"""
