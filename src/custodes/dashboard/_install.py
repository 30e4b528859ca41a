"""Mount the dashboard on an app: the pages' router (with key sign-in's routes on it) and the
vendored static files."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

# Imported for what importing it does: key sign-in's routes register on the router.
from custodes.dashboard import _key_routes  # noqa: F401
from custodes.dashboard._routes import PREFIX, STATIC, router

__all__ = ["install_dashboard"]


def install_dashboard(app: FastAPI) -> None:
    """Mount the dashboard's routes and static files on ``app``."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="dashboard-static")
