"""The NOTIFY trigger helpers emit exactly what the released migrations wrote by hand.

A released migration must not change: authority_0002 and constitution_0002 were written with
these statements literally, and now call the helper, so the helper's statements are pinned to
those texts here, byte for byte.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from custodes.store._notify import notify_trigger_sql

VERSIONS = Path(__file__).resolve().parents[3] / "src/custodes/store/migrations/versions"

# The statements as authority_0002 and constitution_0002 executed them when released.
RELEASED = {
    "authority_0002_grant_notify": (
        """
        CREATE FUNCTION custodes_grant_changed() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('custodes_grants', NEW.id);
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql
        """,
        "CREATE TRIGGER authority_grants_notify AFTER INSERT OR UPDATE ON authority_grants "
        "FOR EACH ROW EXECUTE FUNCTION custodes_grant_changed()",
    ),
    "constitution_0002_adopt_notify": (
        """
        CREATE FUNCTION custodes_constitution_adopted() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('custodes_constitution', NEW.version::text);
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql
        """,
        "CREATE TRIGGER constitution_versions_notify AFTER INSERT ON constitution_versions "
        "FOR EACH ROW EXECUTE FUNCTION custodes_constitution_adopted()",
    ),
}

DROPPED = {
    "authority_0002_grant_notify": [
        "DROP TRIGGER authority_grants_notify ON authority_grants",
        "DROP FUNCTION custodes_grant_changed()",
    ],
    "constitution_0002_adopt_notify": [
        "DROP TRIGGER constitution_versions_notify ON constitution_versions",
        "DROP FUNCTION custodes_constitution_adopted()",
    ],
}


class _Op:
    """Stands in for alembic's ``op`` proxy: records what a migration executes."""

    def __init__(self, dialect: str) -> None:
        self.executed: list[str] = []
        self._dialect = dialect

    def get_bind(self) -> Any:
        return type("Bind", (), {"dialect": type("Dialect", (), {"name": self._dialect})})()

    def execute(self, statement: str) -> None:
        self.executed.append(statement)


def _run(monkeypatch: pytest.MonkeyPatch, module: str, step: str, dialect: str) -> list[str]:
    recorder = _Op(dialect)
    monkeypatch.setattr("custodes.store._notify.op", recorder)
    # Loaded from its file, as alembic loads it (the versions folder is not a package).
    spec = importlib.util.spec_from_file_location(module, VERSIONS / f"{module}.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    getattr(migration, step)()
    return recorder.executed


@pytest.mark.parametrize("module", sorted(RELEASED))
def test_a_released_migration_executes_what_it_did_when_released(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    assert (VERSIONS / f"{module}.py").is_file()
    assert _run(monkeypatch, module, "upgrade", "postgresql") == list(RELEASED[module])
    assert _run(monkeypatch, module, "downgrade", "postgresql") == DROPPED[module]


@pytest.mark.parametrize("module", sorted(RELEASED))
def test_nothing_is_created_on_sqlite(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    assert _run(monkeypatch, module, "upgrade", "sqlite") == []
    assert _run(monkeypatch, module, "downgrade", "sqlite") == []


def test_the_statements_name_what_they_are_given() -> None:
    function, trigger = notify_trigger_sql(
        function="f", channel="c", payload="NEW.k", trigger="t", table="tab", events="UPDATE"
    )
    assert "CREATE FUNCTION f() RETURNS trigger" in function
    assert "PERFORM pg_notify('c', NEW.k);" in function
    assert trigger == "CREATE TRIGGER t AFTER UPDATE ON tab FOR EACH ROW EXECUTE FUNCTION f()"
