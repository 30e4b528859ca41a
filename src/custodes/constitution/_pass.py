"""The problem recorder of the semantic pass, and the reference checks every section shares.

A :class:`SemanticPass` holds the document being read and appends each problem to it with its
line; the section readers (``_check_parties.py``, ``_check_rules.py``, ``_check_sections.py``,
``_provenance.py``, ``_feasibility.py``) report through it, so the one-problem-per-value and
``MAX_PROBLEMS`` bounds hold whichever section finds a problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from custodes.constitution._model import Criterion, Notify
from custodes.constitution._values import parse_duration
from custodes.constitution._yaml import LocatedDocument, format_path
from custodes.errors import ConstitutionProblem

__all__ = ["MAX_PROBLEMS", "Known", "Path", "SemanticPass"]

MAX_PROBLEMS = 100
"""The most problems one check reports (and looks for, per pass), with a count of the rest."""

Path = tuple[str | int, ...]
"""Where a value is in the document: its keys and list positions from the top."""


@dataclass(frozen=True)
class Known:
    """What the parties of a constitution define, for the rules that refer to them.

    Attributes:
        organisations: the organisation ids.
        roles: every role some principal holds (a role nobody holds is no role).
        capabilities: the capability ids.
        criteria: the named criteria, by id.
    """

    organisations: set[str]
    roles: set[str]
    capabilities: set[str]
    criteria: Mapping[str, Criterion]


class SemanticPass:
    """The semantic pass over one document: appends problems to it, each with its line.

    Attributes:
        doc: the document read (its problems list grows as the pass goes).
        named: the ``(line, path)`` of every value a problem already names.
        data: the document's data, as the schema pass found it shaped.
    """

    def __init__(self, doc: LocatedDocument) -> None:
        """Start a pass over ``doc``, remembering the problems the schema pass already named."""
        self.doc = doc
        self.named = {(p.line, p.path) for p in doc.problems}
        self.data: dict[str, Any] = doc.data

    def problem(self, path: Sequence[str | int], message: str, expected: str | None = None) -> None:
        """Record a problem at ``path`` (its line looked up), once per value, at most
        ``MAX_PROBLEMS`` in all (the rest only counted): a broken document gets every
        problem named in one read, but not an unbounded report."""
        line, where = self.doc.line(path), format_path(path)
        if (line, where) in self.named:
            return  # the schema pass already named this value
        if len(self.doc.problems) >= MAX_PROBLEMS:
            self.doc.dropped += 1
            return
        self.named.add((line, where))
        self.doc.problems.append(
            ConstitutionProblem(message, line=line, path=where, expected=expected)
        )

    def unique(self, section: str, items: Sequence[Mapping[str, Any]], key: str = "id") -> None:
        """A problem for each repeated ``key`` in ``section``, naming where it first was."""
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            value = item[key]
            if value in seen:
                self.problem(
                    (section, i, key),
                    f"duplicate {key} {value!r} "
                    f"(also {section}[{seen[value]}] on line "
                    f"{self.doc.line((section, seen[value]))})",
                    expected=f"each {key} once",
                )
            else:
                seen[value] = i

    def duration(self, path: Path, text: str | None, default: timedelta | None = None) -> timedelta:
        """The duration at ``path``; a malformed one is a problem (and a placeholder of one
        second is returned, so the pass goes on to find the other problems)."""
        if text is None:
            return default or timedelta(0)
        value = parse_duration(text)
        if value is None:
            self.problem(
                path,
                f"bad duration {text!r}",
                expected="a positive duration such as 8h, 30m, 1d12h or 90s",
            )
            return default or timedelta(seconds=1)
        return value

    def criteria_refs(
        self,
        path: Path,
        refs: Iterable[str],
        criteria: Mapping[str, Criterion],
        applies_to: str,
    ) -> tuple[str, ...]:
        """Check that each criterion named at ``path`` exists and applies to ``applies_to``
        (principal or organisation); the names, as given.
        """
        for j, ref in enumerate(refs):
            c = criteria.get(ref)
            if c is None:
                self.problem(
                    (*path, j),
                    f"unknown criterion {ref!r}",
                    expected="one of: " + (", ".join(sorted(criteria)) or "(none)"),
                )
            elif c.applies_to != applies_to:
                self.problem(
                    (*path, j),
                    f"criterion {ref!r} applies to {c.applies_to}s",
                    expected=f"a criterion that applies to {applies_to}s",
                )
        return tuple(refs)

    def roles(self, path: Path, refs: Sequence[str], roles: set[str]) -> frozenset[str]:
        """The role names at ``path``: at least one, and each held by some principal (a role nobody
        holds is a typo or a rule nobody can meet).
        """
        if not refs:
            self.problem(path, "no roles named", expected="at least one role")
        for j, role in enumerate(refs):
            if role not in roles:
                self.problem(
                    (*path, j),
                    f"unknown role {role!r}: no principal holds it",
                    expected="one of: " + ", ".join(sorted(roles)),
                )
        return frozenset(refs)

    def capability_ref(self, path: Path, cap: str, cap_ids: set[str]) -> None:
        """A problem if ``cap`` is not a capability of this constitution."""
        if cap not in cap_ids:
            self.problem(
                path,
                f"unknown capability {cap!r}",
                expected="one of: " + ", ".join(sorted(cap_ids)),
            )

    def notify(
        self,
        path: Path,
        raw: Mapping[str, Any] | None,
        org_ids: set[str],
        roles: set[str],
    ) -> Notify:
        """Who a rule's grants are announced to: known organisations and held roles."""
        raw = raw or {}
        for j, o in enumerate(raw.get("organisations", [])):
            if o not in org_ids:
                self.problem(
                    (*path, "organisations", j),
                    f"unknown organisation {o!r}",
                    expected="one of: " + ", ".join(sorted(org_ids)),
                )
        for j, r in enumerate(raw.get("roles", [])):
            if r not in roles:
                self.problem((*path, "roles", j), f"unknown role {r!r}: no principal holds it")
        return Notify(
            organisations=tuple(raw.get("organisations", [])),
            kinds=tuple(raw.get("kinds", [])),
            roles=tuple(raw.get("roles", [])),
        )
