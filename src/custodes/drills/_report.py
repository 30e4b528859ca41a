"""The scorecard as a report an overseer keeps: Markdown, HTML (jinja2, autoescaped, no
outside resources), or JSON for a CI job to read."""

from __future__ import annotations

import dataclasses
import json

import jinja2

from custodes.drills._scorecard import Scorecard, StepResult

__all__ = ["scorecard_html", "scorecard_json", "scorecard_markdown"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("custodes.drills", "templates"),
    # Everything on a scorecard came from a deployment or a scenario: escaped, always.
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def seconds_text(s: StepResult) -> str:
    """Time to detection as shown: ``0.12 s``, or a dash when nothing detected it."""
    return f"{s.seconds:.2f} s" if s.seconds is not None else "—"


def _md(text: str) -> str:
    """``text`` safe in a Markdown table cell (no column breaks, no HTML, no line breaks)."""
    out = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(out.split())


def scorecard_markdown(card: Scorecard) -> str:
    """The scorecard as a Markdown document."""
    lines = [
        f"# Drill scorecard: {_md(card.title)} (`{card.drill}`)",
        "",
        f"- **Verdict**: {card.verdict}",
        f"- **Deployment**: {_md(card.server)}, constitution version "
        f"{card.constitution_version} (digest `{card.constitution_digest}`)",
        f"- **Log key**: `{card.log_key}`"
        + (
            " (pinned)" if card.log_key_pinned else " (fetched from the server: trust on first use)"
        ),
        f"- **Run**: {card.started.isoformat(timespec='seconds')}, {card.seconds:.1f} s",
        "",
        "| # | step | actor | expected control | outcome | time to detection | log entries | why |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, s in enumerate(card.steps, 1):
        outcome = f"**{s.outcome}**" if s.outcome == "MISSED" else s.outcome
        why = s.why + "".join(f" Outside the log: {o}" for o in s.outside)
        lines.append(
            f"| {n} | {_md(s.title)} (`{s.step}`) | {_md(s.actor or '—')} | {_md(s.control)} "
            f"| {outcome} | {seconds_text(s)} | "
            f"{', '.join(str(i) for i in s.log_indices) or '—'} | {_md(why)} |"
        )
    if card.tidied:
        lines += ["", "Tidied up after the drill:", ""]
        lines += [f"- {_md(t)}" for t in card.tidied]
    lines += [
        "",
        "Each log entry listed was read from the log and proven by its receipt (an RFC 9162 "
        "inclusion proof in a checkpoint signed by the log's key).",
        "",
    ]
    return "\n".join(lines)


def scorecard_html(card: Scorecard) -> str:
    """The scorecard as a self-contained HTML page."""
    return _ENV.get_template("scorecard.html").render(card=card, seconds_text=seconds_text)


def scorecard_json(card: Scorecard) -> str:
    """The scorecard as JSON: every field of :class:`Scorecard`, its steps as a list, ``started``
    as RFC 3339, and the ``verdict`` and ``passed`` it comes to."""
    data = dataclasses.asdict(card)
    data["started"] = card.started.isoformat()
    data["verdict"] = card.verdict
    data["passed"] = not card.missed
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
