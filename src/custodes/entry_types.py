"""Imports every package that registers log entry types, so readers know them all.

Each package keeps its entry types in ``custodes/<package>/_entries.py`` (pydantic body models
registered with :func:`custodes.log.register_entry_type`) and adds one import here. Log readers
that check well-formedness (``custodes log verify``, ``custodes witness watch``) call
:func:`load_all`.
"""

import importlib

__all__ = ["load_all"]

_MODULES: tuple[str, ...] = (
    # one line per package, e.g. "custodes.authority._entries",
    "custodes.log._types",
    "custodes.custody._entries",
    "custodes.gateway._entries",
    "custodes.constitution._entries",
    "custodes.authority._entries",
    "custodes.monitors._entries",
)


def load_all() -> None:
    for name in _MODULES:
        importlib.import_module(name)
