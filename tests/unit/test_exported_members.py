"""Each public package's namespace is exactly its ``__all__`` (httpx's test_exported_members).

Names re-exported from private ``_modules`` are the API; anything else public in a package's
namespace (a stray import, a forgotten helper) is either exported on purpose or not there.
"""

import importlib
import types

import pytest

PACKAGES = [
    "custodes",
    "custodes.audits",
    "custodes.authority",
    "custodes.coalition",
    "custodes.constitution",
    "custodes.custody",
    "custodes.dashboard",
    "custodes.gateway",
    "custodes.log",
    "custodes.monitors",
    "custodes.provenance",
    "custodes.server",
    "custodes.store",
    "custodes.wiring",
    "custodes.witness",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_namespace_is_all(name: str) -> None:
    package = importlib.import_module(name)
    exported = set(package.__all__)
    missing = sorted(n for n in exported if not hasattr(package, n))
    assert missing == [], f"{name}.__all__ names what the package does not define: {missing}"
    public = {
        n
        for n, v in vars(package).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert sorted(public - exported) == [], f"{name} exposes names missing from __all__"


def test_the_log_has_exactly_two_append_methods() -> None:
    # Issue 16: one entry or a batch; every caller goes through these (the protocol other
    # components receive), and the old entrances are gone rather than kept as aliases.
    from custodes.log import LogReader, LogWriter, TransparencyLog

    members = {n for n in vars(LogWriter) if not n.startswith("_")}
    assert members == {"append", "append_batch"}
    public = {n for n in dir(TransparencyLog) if not n.startswith("_")}
    for gone in ("submit", "submit_data", "append_if_idle", "integrate", "integrate_empty"):
        assert gone not in public
    readers = {n for n in vars(LogReader) if not n.startswith("_")}
    assert readers <= public and members <= public
