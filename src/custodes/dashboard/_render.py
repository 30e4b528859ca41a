"""The Jinja2 environment: packaged templates, autoescaping on, undefined names an error."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

import jinja2

from custodes.log import format_time

__all__ = ["render", "time_left"]


def time_left(value: timedelta | None) -> str:
    """How long a grant has left, for a table cell (the ``left`` filter).

    Args:
        value: the time left; None for a standing permission (no end).

    Returns:
        ``3h 59m`` / ``2d 4h`` / ``45s`` (the two largest units, so a cell stays short);
        ``standing`` for None; ``expired`` when not positive.
    """
    if value is None:
        return "standing"
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _when(value: datetime | None) -> str:
    """A time as the log writes it (RFC 3339, UTC), or a dash for none (the ``when`` filter)."""
    return format_time(value) if value is not None else "—"


@cache
def _environment() -> jinja2.Environment:
    """The one environment, built on first use (templates are compiled once per process)."""
    env = jinja2.Environment(
        # Every value on these pages comes from the log or the constitution, so from
        # principals who may be hostile: escape by default (OWASP's XSS prevention: encode
        # output), and make a misspelt name an error, not an empty cell that hides a fact.
        loader=jinja2.PackageLoader("custodes.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["left"] = time_left
    env.filters["when"] = _when
    return env


def render(template: str, **values: Any) -> str:
    """Render a packaged template (autoescaped).

    Args:
        template: its file name under ``custodes/dashboard/templates``.
        **values: the names the template reads.

    Returns:
        The HTML.

    Raises:
        jinja2.TemplateNotFound: no such template (a bug, not an input error).
        jinja2.UndefinedError: the template reads a name not given (a bug).
    """
    return _environment().get_template(template).render(**values)
