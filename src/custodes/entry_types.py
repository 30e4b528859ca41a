"""Which log entry types a client may append.

Each package keeps its entry types in ``custodes/<package>/_entries.py`` (pydantic body models
registered with :func:`custodes.log.register_entry_type`) and imports that module from its
``__init__``; :func:`custodes.wiring.all_entry_types` (the composition root, which may import
every component) loads them all for the readers that check well-formedness (``custodes log
verify``, ``custodes witness watch``, ``POST /log/entries``). This module is in the kernel and
imports no component.

Who writes what: every entry type records an action custodes itself takes (a gateway call, a
request, approval or grant, an amendment, a custody event, a detection...) and is written only
by the component that takes it, in-process, after its checks pass. Only the types in
:data:`CLIENT_TYPES` may come from outside, through ``POST /log/entries``, and then with the
authenticated principal and the server's clock. A type is custodes-only unless listed here
(fail closed: a new type cannot be forged by a client because someone forgot to forbid it).
"""

__all__ = ["CLIENT_TYPES", "client_may_append"]

# Entry types a client may append (POST /log/entries): notes that claim nothing custodes did.
# An audit report is the auditor's signed claim, not something custodes did (custodes.audits).
CLIENT_TYPES: frozenset[str] = frozenset({"log.annotation/v1", "audits.report/v1"})


def client_may_append(entry_type: str) -> bool:
    """Whether a client may append an entry of ``entry_type`` (see :data:`CLIENT_TYPES`)."""
    return entry_type in CLIENT_TYPES
