"""Who may do what with a finding, decided from the constitution in force.

An embargoed finding is need-to-know: its existence, product and severity are themselves
sensitive. Its case record is visible to the finder's organisation, the overseers, the
coordinators and, once notified, the vendor; everyone else sees at most that a finding exists,
and only if the constitution's ``custody.show_existence`` says so. Changes are narrower still:
each case event and state machine names the parties of coordinated disclosure that may move it
(CERT/CC, *The CERT Guide to Coordinated Vulnerability Disclosure*, "Roles": finder, reporter,
vendor, coordinator).

The decisions here are pure functions of the constitution and the finding; the registry logs
every refusal and raises it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from custodes.constitution import Constitution, Principal
from custodes.custody._model import Finding
from custodes.errors import Denial, PolicyDenied

__all__ = ["CaseAccess", "Party", "party_names"]

Party = Literal["finder-organisation", "coordinator", "overseer", "vendor"]

# Which parties may record each case event. A vendor acts on its own case only once notified.
_EVENT_PARTIES: Mapping[str, frozenset[Party]] = {
    "vendor-notified": frozenset({"finder-organisation", "coordinator"}),
    "vendor-acknowledged": frozenset({"vendor", "finder-organisation", "coordinator"}),
    "fix-ready": frozenset({"vendor", "finder-organisation", "coordinator"}),
    "fix-deployed": frozenset({"vendor", "finder-organisation", "coordinator"}),
    "grace-requested": frozenset({"vendor", "finder-organisation", "coordinator"}),
    # The disclosing party grants grace and discloses; the vendor cannot grant itself time.
    "grace-granted": frozenset({"finder-organisation", "coordinator"}),
    "disclosed": frozenset({"finder-organisation", "coordinator"}),
    # Anyone on the case (an overseer included) may report that the world knows or is attacked.
    "public-aware": frozenset({"vendor", "finder-organisation", "coordinator", "overseer"}),
    "exploit-public": frozenset({"vendor", "finder-organisation", "coordinator", "overseer"}),
    "attacks-observed": frozenset({"vendor", "finder-organisation", "coordinator", "overseer"}),
    "escalated": frozenset({"coordinator", "overseer"}),
}

# Report management is the coordinator's triage; embargo management is negotiated among the
# case's participants (Vultron: each participant's EM proposals).
_MACHINE_PARTIES: Mapping[str, frozenset[Party]] = {
    "rm": frozenset({"coordinator"}),
    "em": frozenset({"vendor", "finder-organisation", "coordinator"}),
}
# Revealing an escrowed finding ends its need-to-know for good: only the parties that run the
# disclosure may, never the vendor (it could reveal a finding to shorten its own embargo).
_REVEAL_PARTIES: frozenset[Party] = frozenset({"finder-organisation", "coordinator"})
_DEFAULT_COORDINATORS: Mapping[str, Any] = {"kinds": ["developer"]}


def party_names(parties: frozenset[Party]) -> str:
    """The parties, in a stable order, for messages."""
    return ", ".join(sorted(parties)) or "nobody"


@dataclass(frozen=True)
class CaseAccess:
    """The custody rules of one constitution.

    ``custody.coordinators`` (organisations, kinds and/or roles; default every ``developer``
    organisation, which runs the programme the finding was made in) names the coordinators;
    ``custody.show_existence`` (default false) lets every principal see that an embargoed
    finding exists, never what it is.

    Attributes:
        constitution: the version in force, whose ``custody`` clause and organisations decide.
    """

    constitution: Constitution

    @property
    def _clause(self) -> Mapping[str, Any]:
        """The constitution's ``custody`` clause; an absent or malformed one is empty, so
        every default applies (the narrowest)."""
        raw = (self.constitution.document or {}).get("custody") or {}
        return raw if isinstance(raw, Mapping) else {}

    @property
    def show_existence(self) -> bool:
        """Whether every principal may see that an embargoed finding exists."""
        return bool(self._clause.get("show_existence", False))

    def principal(self, principal_id: str) -> Principal:
        """The named principal.

        Raises:
            PolicyDenied: the constitution does not name ``principal_id``.
        """
        p = self.constitution.principals_by_id.get(principal_id)
        if p is None:
            raise PolicyDenied(
                f"{principal_id!r} is not a principal of constitution version "
                f"{self.constitution.version}",
                reasons=[Denial("constitution", "a principal the constitution names")],
            )
        return p

    def is_coordinator(self, principal_id: str) -> bool:
        """Whether ``principal_id`` is a coordinator under ``custody.coordinators`` (by
        organisation id, organisation kind or role); False for an unknown principal."""
        p = self.constitution.principals_by_id.get(principal_id)
        if p is None:
            return False
        selector = self._clause.get("coordinators") or _DEFAULT_COORDINATORS
        org = self.constitution.organisations_by_id.get(p.organisation)
        return (
            p.organisation in selector.get("organisations", ())
            or (org is not None and org.kind in selector.get("kinds", ()))
            or bool(p.roles & set(selector.get("roles", ())))
        )

    def is_overseer(self, principal_id: str) -> bool:
        """Whether ``principal_id`` belongs to an ``overseer`` organisation."""
        p = self.constitution.principals_by_id.get(principal_id)
        org = self.constitution.organisations_by_id.get(p.organisation) if p else None
        return org is not None and org.kind == "overseer"

    def finder_organisation(self, finding: Finding) -> str | None:
        """The finder's organisation id, or None if the finder is not (or no longer) a
        principal of this version."""
        p = self.constitution.principals_by_id.get(finding.finder)
        return p.organisation if p is not None else None

    def vendor_organisations(self, finding: Finding) -> frozenset[str]:
        """The ``vendor`` organisations a finding's vendor field names (by id or name)."""
        name = finding.vendor.casefold()
        return frozenset(
            o.id
            for o in self.constitution.organisations
            if o.kind == "vendor" and name in (o.id.casefold(), o.name.casefold())
        )

    @staticmethod
    def embargoed(finding: Finding) -> bool:
        """Not yet public: neither disclosed, publicly known, nor revealed."""
        return "public-aware" not in finding.flags and finding.revealed_at is None

    def parties(self, principal_id: str, finding: Finding) -> frozenset[Party]:
        """What ``principal_id`` is to ``finding`` (empty for an outsider)."""
        p = self.constitution.principals_by_id.get(principal_id)
        if p is None:
            return frozenset()
        out: set[Party] = set()
        if p.organisation == self.finder_organisation(finding) or p.id == finding.finder:
            out.add("finder-organisation")
        if self.is_coordinator(p.id):
            out.add("coordinator")
        if self.is_overseer(p.id):
            out.add("overseer")
        if "vendor-aware" in finding.flags and p.organisation in self.vendor_organisations(finding):
            out.add("vendor")
        return frozenset(out)

    def may_read(self, principal_id: str, finding: Finding) -> bool:
        """May ``principal_id`` see the case record (public findings: every named principal)."""
        if principal_id not in self.constitution.principals_by_id:
            return False
        return not self.embargoed(finding) or bool(self.parties(principal_id, finding))

    def sees_all_alarms(self, principal_id: str) -> bool:
        """Whether ``principal_id`` sees the alarms of every case (overseers, coordinators),
        not only of the cases they are a party to."""
        return self.is_overseer(principal_id) or self.is_coordinator(principal_id)

    def register_refusal(self, principal_id: str, finder: str) -> str | None:
        """Why ``principal_id`` may not register a finding found by ``finder`` (None: may).

        The finder registers, or someone of the finder's organisation, or a coordinator.
        """
        by = self.constitution.principals_by_id.get(principal_id)
        if by is None:
            return f"{principal_id!r} is not a principal of the constitution"
        found_by = self.constitution.principals_by_id.get(finder)
        if found_by is None:
            return f"the finder {finder!r} is not a principal of the constitution"
        if by.id == found_by.id or by.organisation == found_by.organisation:
            return None
        if self.is_coordinator(by.id):
            return None
        return (
            f"{principal_id} may register findings of its own organisation ({by.organisation}), "
            f"not of {found_by.organisation}"
        )

    def required_for_event(self, kind: str) -> frozenset[Party]:
        """The parties that may record a case event of ``kind`` (unknown kinds: the
        coordinator only, the narrowest)."""
        return _EVENT_PARTIES.get(kind, frozenset({"coordinator"}))

    def required_for_machine(self, machine: str) -> frozenset[Party]:
        """The parties that may move state machine ``machine`` (``rm``, ``em``; others: the
        coordinator only)."""
        return _MACHINE_PARTIES.get(machine, frozenset({"coordinator"}))

    @staticmethod
    def required_for_reveal() -> frozenset[Party]:
        """The parties that may reveal an escrowed finding."""
        return _REVEAL_PARTIES
