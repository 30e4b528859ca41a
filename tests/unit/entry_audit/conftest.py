"""The authority fixtures (demo constitution, demo keys, actors on SQLite) for the auditor."""

from tests.unit.authority.conftest import demo, demo_keys, sqlite_actors

__all__ = ["demo", "demo_keys", "sqlite_actors"]
