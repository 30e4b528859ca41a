"""The overseers' dashboard: server-rendered pages (Jinja2) over the same components the JSON
API uses, served by the custodes server under ``/dashboard``.

Read-only by design: approving stays a signature made with the approver's own key (the CLI).
Entry points: :func:`install_dashboard` (mounts the pages on an app), :func:`now_view` (what the
"Now" page shows a viewer), :class:`Viewer` (who is looking and what they may see),
:class:`SessionStore` (sessions in the database), :class:`KeySignIn` and
:func:`sign_in_message` (sign-in with the principal's own key: ``custodes dashboard login``),
:class:`LogIndex` (the log page's search index, derived from the log).
"""

import importlib as _importlib
import typing as _typing

from custodes.dashboard._key_sign_in import (
    SIGN_IN_DOMAIN,
    KeySignIn,
    Ticket,
    origin_of,
    sign_in_message,
)
from custodes.dashboard._log_index import LogIndex
from custodes.dashboard._sessions import Session, SessionStore
from custodes.dashboard._viewer import Viewer, viewer_of

if _typing.TYPE_CHECKING:
    from custodes.dashboard._install import install_dashboard
    from custodes.dashboard._now import NowView, PendingRow, now_view

__all__ = [
    "SIGN_IN_DOMAIN",
    "KeySignIn",
    "LogIndex",
    "NowView",
    "PendingRow",
    "Session",
    "SessionStore",
    "Ticket",
    "Viewer",
    "install_dashboard",
    "now_view",
    "origin_of",
    "sign_in_message",
    "viewer_of",
]

# The pages (FastAPI, Jinja2, every component through custodes.wiring) load only when one of
# these is first used: `custodes dashboard login` needs the sign-in message, not the server.
_LAZY = {
    "install_dashboard": "custodes.dashboard._install",
    "NowView": "custodes.dashboard._now",
    "PendingRow": "custodes.dashboard._now",
    "now_view": "custodes.dashboard._now",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value
