"""The constitution in force at each point of the log: whose keys sign what was registered.

A run, an evaluation and a promotion are checked when they are registered against the
constitution in force then; verification checks each against that same version, not today's.
So a pipeline or evaluator key rotated by an amendment does not make older runs fail, and a run
signed by a key not yet in force (added by a later amendment) or no longer in force (removed by
an earlier one) still fails, whatever the key is today.

The versions and where each begins come from the log's own adoption and amendment entries
(``constitution.adopt/v1``, ``constitution.amend/v1``: index, version, document digest), which
the checkpoint covers; their texts come from the store. A stored text that does not hash to the
logged digest, or that no longer reads, stands for no constitution: what was registered under
it does not verify (fail closed). The entry auditor checks separately that each amendment was
validly signed (``custodes log verify --check-entries``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from custodes.constitution import Constitution

__all__ = ["ConstitutionHistory", "ReadVersion", "constitution_history"]

_ADOPTIONS = ("constitution.adopt/v1", "constitution.amend/v1")

# Reads a stored version: the constitution for (version, logged digest), or why it cannot.
ReadVersion = Callable[[int, str], "Constitution | str"]


@dataclass(frozen=True)
class ConstitutionHistory:
    """The adopted versions in log order: ``starts[i]`` is the index of the entry that
    adopted ``versions[i]`` (None: its stored text could not be read, ``unreadable[i]`` says
    why)."""

    starts: tuple[int, ...] = ()
    versions: tuple[Constitution | None, ...] = ()
    unreadable: tuple[str, ...] = ()

    def at(self, index: int) -> Constitution | str:
        """The constitution in force when the entry at ``index`` was appended (the newest one
        adopted by an entry before it), or why there is none."""
        i = bisect.bisect_left(self.starts, index) - 1
        if i < 0:
            return f"no constitution was adopted before entry {index}"
        c = self.versions[i]
        if c is None:
            return self.unreadable[i]
        return c


def constitution_history(entries: Mapping[int, bytes], read: ReadVersion) -> ConstitutionHistory:
    """The versions the log's adoption and amendment entries adopted, in order.

    Args:
        entries: the log's entries by index (all of them up to the checkpoint verified).
        read: reads a stored version's text, checked against the digest its entry logged.
    """
    starts: list[int] = []
    versions: list[Constitution | None] = []
    unreadable: list[str] = []
    for index in sorted(entries):
        data = entries[index]
        if b'"constitution.' not in data:
            continue
        doc = orjson.loads(data)
        if doc.get("type") not in _ADOPTIONS:
            continue
        body = doc.get("body") or {}
        version, digest = body.get("version"), body.get("digest")
        if not isinstance(version, int) or not isinstance(digest, str):
            got: Constitution | str = f"entry {index} adopts no well-formed version"
        else:
            got = read(version, digest)
        starts.append(index)
        if isinstance(got, str):
            versions.append(None)
            unreadable.append(
                f"the constitution in force from entry {index} cannot be checked: {got}"
            )
        else:
            versions.append(got)
            unreadable.append("")
    return ConstitutionHistory(tuple(starts), tuple(versions), tuple(unreadable))
