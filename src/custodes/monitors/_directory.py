"""Who belongs to which organisation, and who may review: the review queue's view of the
constitution (separation of duties needs nothing more)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from custodes.errors import NotFoundError

__all__ = ["ConstitutionDirectory", "Directory", "StaticDirectory"]

REVIEWER_ROLE = "reviewer"


@runtime_checkable
class Directory(Protocol):
    """What the review queue needs of the constitution: organisations, reviewers, overseers."""

    def organisation_of(self, principal: str) -> str:
        """The organisation id of ``principal``; raises NotFoundError if unknown."""
        ...

    def reviewers(self) -> Iterable[str]:
        """Principals who may review detections (from any organisation)."""
        ...

    def is_overseer(self, principal: str) -> bool:
        """Whether ``principal`` belongs to an overseer organisation."""
        ...


@dataclass(frozen=True)
class StaticDirectory:
    """A fixed directory (tests, and deployments without a constitution)."""

    organisations: Mapping[str, str]
    reviewer_ids: tuple[str, ...] = ()
    overseer_organisations: frozenset[str] = field(default_factory=frozenset)

    def organisation_of(self, principal: str) -> str:
        """See :class:`Directory`.

        Raises:
            NotFoundError: ``principal`` is not listed.
        """
        try:
            return self.organisations[principal]
        except KeyError:
            raise NotFoundError(f"unknown principal {principal!r}") from None

    def reviewers(self) -> Iterable[str]:
        """See :class:`Directory`."""
        return self.reviewer_ids

    def is_overseer(self, principal: str) -> bool:
        """See :class:`Directory`."""
        return self.organisations.get(principal) in self.overseer_organisations


class ConstitutionDirectory:
    """Adapts a :class:`custodes.constitution.Constitution`: reviewers are principals holding
    the ``reviewer`` role; overseers are principals of organisations of kind ``overseer``."""

    def __init__(self, constitution: Any, *, reviewer_role: str = REVIEWER_ROLE) -> None:
        self._c = constitution
        self._role = reviewer_role

    def organisation_of(self, principal: str) -> str:
        """See :class:`Directory`.

        Raises:
            NotFoundError: the constitution names no such principal.
        """
        try:
            return str(self._c.principals_by_id[principal].organisation)
        except KeyError:
            raise NotFoundError(f"principal {principal!r} is not in the constitution") from None

    def reviewers(self) -> Iterable[str]:
        """Principals holding the reviewer role, in document order."""
        return [p.id for p in self._c.principals if self._role in p.roles]

    def is_overseer(self, principal: str) -> bool:
        """See :class:`Directory`; False for an unknown principal."""
        p = self._c.principals_by_id.get(principal)
        if p is None:
            return False
        org = self._c.organisations_by_id.get(p.organisation)
        return org is not None and org.kind == "overseer"
