"""Issue custodes API keys for tests, on a deployment's database before its server starts."""

from __future__ import annotations

from custodes.config import Settings
from custodes.gateway import KeyStore
from custodes.wiring import open_core

__all__ = ["LOG_WRITER", "issue_keys"]

# A demo principal whose role (engineer) the demo constitution lets append to the log.
LOG_WRITER = "dave@lab"


def issue_keys(settings: Settings, *principals: str) -> dict[str, str]:
    """A new API key for each principal, by principal (the key-created entries are logged)."""
    ctx = open_core(settings)
    try:
        store = KeyStore(ctx.engine, ctx.log, ctx.clock)
        return {p: store.create(p, name="test").secret for p in principals}
    finally:
        ctx.close()
