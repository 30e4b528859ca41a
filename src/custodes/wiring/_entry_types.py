"""Every log entry type custodes defines, for the readers that check each entry's type.

Each package keeps its entry types in its private ``_entries`` module (pydantic body models
registered with :func:`custodes.log.register_entry_type`) and imports it from its ``__init__``,
so importing the package registers them. Which packages those are is a fact about the whole
deployment, so the composition root holds the list: the log (in the kernel's layers) and the
witness's watcher (a component) must not import the components above them, and they receive
the mapping this returns instead (``custodes witness watch``, ``custodes log verify``,
``POST /log/entries``).
"""

from __future__ import annotations

from collections.abc import Mapping

from custodes.log import EntryType
from custodes.log import entry_types as registered

__all__ = ["all_entry_types"]


def all_entry_types() -> Mapping[str, EntryType]:
    """Import every package that registers log entry types, then return them all by name.

    A package with an ``_entries`` module adds one import line here (a unit test,
    tests/unit/test_entry_types.py, fails until it does).
    """
    # Imported here, not at the top: custodes.audits pulls in scipy and statsmodels (about a
    # second), which only the readers of every entry type should pay for. Function-level imports
    # are still seen by import-linter, so the layers hold for them too.
    import custodes.audits
    import custodes.authority
    import custodes.constitution
    import custodes.custody
    import custodes.gateway
    import custodes.monitors
    import custodes.provenance
    import custodes.staging
    import custodes.usage  # noqa: F401 - imported for its registrations

    return registered()
