"""What the constitution page shows: the version in force, every adopted version (each linked to
its adoption entry in the log), a line diff between two of them, and the amendments waiting for
signatures, each with the text it would adopt and what it does to every goal's minimum
coalition (the coalition package's own analysis, the one ``custodes constitution sign`` shows).

The constitution and its amendments are public (every principal is bound by them), so every
viewer sees all of it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from custodes.authority import RequestRecord, RuleStatus
from custodes.coalition import GoalDelta, diff_analyses
from custodes.constitution import (
    AdoptedVersion,
    Constitution,
    adopted_versions,
    read_constitution,
    stored_document,
)
from custodes.dashboard._now import constitution_of
from custodes.errors import Error, InputError
from custodes.wiring import Deployment

__all__ = ["AmendmentRow", "ConstitutionView", "DiffLine", "constitution_view", "line_diff"]

_AMENDMENTS_SHOWN = 20
_DIFF_LINES = 5000  # a diff longer than this is cut, and the page says so

DiffKind = Literal["add", "del", "hunk", "file", "same"]


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff, with what kind of line it is (for its colour and marker)."""

    kind: DiffKind
    text: str


@dataclass(frozen=True)
class AmendmentRow:
    """An amendment waiting for signatures.

    Attributes:
        record: the request, its signatures and where it stands against the amendment rule.
        proposed_version: the version it would adopt (None: its document does not read).
        based_on: the version it was proposed against (an amendment of an older version can no
            longer be adopted; the page says so).
        diff: its text against the version in force.
        effect: per goal of either version, what changes (only the goals that change).
        effect_error: why the effect could not be computed (None: it was).
    """

    record: RequestRecord
    proposed_version: int | None
    based_on: int
    diff: tuple[DiffLine, ...]
    effect: tuple[GoalDelta, ...]
    effect_error: str | None

    @property
    def rules(self) -> tuple[RuleStatus, ...]:
        """Where it stands against each rule (signers still missing)."""
        return self.record.rules


@dataclass(frozen=True)
class ConstitutionView:
    """Everything the constitution page shows."""

    version: int | None  # None: no constitution is loaded
    name: str
    digest: str
    text: str
    adopted_at: datetime | None
    log_index: int | None
    versions: tuple[AdoptedVersion, ...]
    diff_from: int | None
    diff_to: int | None
    diff: tuple[DiffLine, ...]
    diff_cut: bool
    amendments: tuple[AmendmentRow, ...]


def line_diff(
    old: str, new: str, old_name: str, new_name: str
) -> tuple[tuple[DiffLine, ...], bool]:
    """The unified diff of two texts (3 lines of context), classified line by line.

    Returns:
        The lines (at most 5,000) and whether the diff was cut there.
    """
    out: list[DiffLine] = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_name, tofile=new_name, lineterm=""
    ):
        if len(out) == _DIFF_LINES:
            return tuple(out), True
        kind: DiffKind
        if line.startswith(("--- ", "+++ ")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append(DiffLine(kind, line))
    return tuple(out), False


def constitution_view(
    ctx: Deployment, *, diff_from: int | None = None, diff_to: int | None = None
) -> ConstitutionView:
    """The constitution page's content.

    Args:
        ctx: the deployment.
        diff_from: the older version of the diff shown (default: the one before ``diff_to``).
        diff_to: the newer version (default: the version in force).

    Raises:
        InputError: ``diff_from`` or ``diff_to`` is not an adopted version, or ``diff_from``
            is not older than ``diff_to``.
    """
    constitution = constitution_of(ctx.authority)
    versions = tuple(adopted_versions(ctx.engine))
    if constitution is None:
        return ConstitutionView(None, "", "", "", None, None, versions, None, None, (), False, ())
    by_number = {v.version: v for v in versions}
    for where, value in (("from", diff_from), ("to", diff_to)):
        if value is not None and value not in by_number:
            raise InputError(
                f"there is no adopted version {value}",
                where=where,
                expected=f"one of {sorted(by_number)}",
                actual=str(value),
            )
    to = diff_to if diff_to is not None else constitution.version
    frm = diff_from if diff_from is not None else (to - 1 if to - 1 in by_number else None)
    if frm is not None and frm >= to:
        raise InputError(
            "the diff goes from an older version to a newer one",
            where="from",
            expected=f"a version below {to}",
            actual=str(frm),
        )
    diff: tuple[DiffLine, ...] = ()
    cut = False
    if frm is not None:
        diff, cut = line_diff(
            stored_document(ctx.engine, frm),
            stored_document(ctx.engine, to),
            f"version {frm}",
            f"version {to}",
        )
    in_force = by_number.get(constitution.version)
    amendments = tuple(
        _amendment(ctx, r, constitution)
        for r in ctx.authority.requests(status="pending", limit=200)
        if r.kind == "amendment"
    )[:_AMENDMENTS_SHOWN]
    return ConstitutionView(
        version=constitution.version,
        name=constitution.name,
        digest=constitution.digest,
        text=constitution.text,
        adopted_at=in_force.adopted_at if in_force else None,
        log_index=in_force.log_index if in_force else None,
        versions=versions,
        diff_from=frm,
        diff_to=to if frm is not None else None,
        diff=diff,
        diff_cut=cut,
        amendments=amendments,
    )


def _amendment(ctx: Deployment, record: RequestRecord, in_force: Constitution) -> AmendmentRow:
    """One pending amendment: its diff against the version in force and its coalition effect."""
    text = record.payload or ""
    diff, _cut = line_diff(
        in_force.text,
        text,
        f"version {in_force.version} (in force)",
        "proposed",
    )
    try:
        proposed = read_constitution(text, name=f"amendment {record.id}")
    except Error as exc:
        return AmendmentRow(record, None, record.constitution_version, diff, (), exc.message)
    try:
        before = ctx.coalition.analysis(in_force)
        after = ctx.coalition.analysis(proposed)
        effect = tuple(d for d in diff_analyses(before, after) if d.changed)
        error = None
    except Error as exc:
        effect, error = (), exc.message
    return AmendmentRow(record, proposed.version, record.constitution_version, diff, effect, error)
