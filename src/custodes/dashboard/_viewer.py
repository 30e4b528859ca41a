"""Who is looking at the dashboard, and what the constitution lets them see.

Overseers (principals of an organisation of kind ``overseer``) see everything; anyone else sees
their own organisation's requests and grants, and what is public (the log, the witnesses).
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.constitution import Constitution
from custodes.errors import Forbidden

__all__ = ["Viewer", "viewer_of"]


@dataclass(frozen=True)
class Viewer:
    """A signed-in principal, with the organisation the constitution in force gives them.

    Attributes:
        principal: the principal id.
        organisation: their organisation's id.
        organisation_kind: its kind (``lab``, ``overseer``, ...); ``overseer`` sees all.
    """

    principal: str
    organisation: str
    organisation_kind: str

    @property
    def overseer(self) -> bool:
        """Whether the viewer belongs to an overseer organisation (and so sees everything)."""
        return self.organisation_kind == "overseer"

    def sees_organisation(self, organisation: str | None) -> bool:
        """May this viewer see requests and grants of ``organisation``?"""
        return self.overseer or organisation == self.organisation


def viewer_of(constitution: Constitution | None, principal: str) -> Viewer:
    """The viewer ``principal`` is under ``constitution``.

    Raises:
        Forbidden: no constitution is in force, or ``principal`` is not one of its principals
            (fail closed: nobody outside the constitution sees anything but the public pages).
    """
    if constitution is None:
        raise Forbidden(
            "no constitution is loaded, so nobody may sign in to the dashboard",
            where="sign-in",
            expected="a server running under a constitution",
        )
    person = constitution.principals_by_id.get(principal)
    if person is None:
        raise Forbidden(
            f"{principal!r} is not a principal of constitution version {constitution.version}",
            where="sign-in",
            expected="the API key of a principal of the constitution in force",
            actual=principal,
        )
    org = constitution.organisations_by_id[person.organisation]
    return Viewer(principal=principal, organisation=org.id, organisation_kind=org.kind)
