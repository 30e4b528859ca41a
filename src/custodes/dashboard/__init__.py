"""The overseers' dashboard: server-rendered pages (Jinja2) over the same components the JSON
API uses, served by the custodes server under ``/dashboard``.

Read-only by design: approving stays a signature made with the approver's own key (the CLI).
Entry points: :func:`install_dashboard` (mounts the pages on an app), :func:`now_view` (what the
"Now" page shows a viewer), :class:`Viewer` (who is looking and what they may see).
"""

from custodes.dashboard._now import NowView, PendingRow, now_view
from custodes.dashboard._routes import install_dashboard
from custodes.dashboard._sessions import Session, SessionStore
from custodes.dashboard._viewer import Viewer, viewer_of

__all__ = [
    "NowView",
    "PendingRow",
    "Session",
    "SessionStore",
    "Viewer",
    "install_dashboard",
    "now_view",
    "viewer_of",
]
