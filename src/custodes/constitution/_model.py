"""The constitution as frozen dataclasses: what :func:`read_constitution` returns.

An instance is only ever built by the reader, which validates the whole document first, so every
reference inside one (a principal's organisation, a rule's capability, a signer) resolves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal

__all__ = [
    "ORGANISATION_KINDS",
    "AccessRule",
    "AmendmentRule",
    "BreakGlassRule",
    "Capability",
    "CoalitionFloor",
    "Constitution",
    "Criterion",
    "EntrenchedClause",
    "EvaluationLimit",
    "Notify",
    "Organisation",
    "OrganisationKind",
    "Principal",
    "ProvenanceRules",
    "Quorum",
    "ReviewRule",
    "ServedTier",
    "Witness",
    "WitnessConfig",
]

OrganisationKind = Literal["developer", "overseer", "partner", "vendor"]
ORGANISATION_KINDS: tuple[OrganisationKind, ...] = ("developer", "overseer", "partner", "vendor")


@dataclass(frozen=True)
class Organisation:
    """An organisation, counted by its stable ``id`` whatever its display name."""

    id: str
    kind: OrganisationKind
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # Membership criteria ids this organisation must satisfy (partners are admitted under them).
    criteria: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    """A person or workload. ``public_key`` is the raw 32-byte Ed25519 key of approvers.

    ``person`` links several principal identities of one human (a person counts once whatever
    identities and roles they hold); it defaults to the principal's own id.
    """

    id: str
    organisation: str
    roles: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    public_key: bytes | None = None
    cost: float = 1.0
    incorruptible: bool = False
    person: str = ""
    kind: Literal["person", "workload"] = "person"
    criteria: tuple[str, ...] = ()
    # Workloads only: who may direct this workload (persons, or workloads directed in turn);
    # its calls count as the use of the person at the end of the chain (custodes.usage).
    directed_by: tuple[str, ...] = ()

    @property
    def person_id(self) -> str:
        """The person this identity belongs to (``person``, else the principal's own id)."""
        return self.person or self.id


@dataclass(frozen=True)
class Capability:
    """A capability tier and the models and actions that belong to it."""

    id: str
    models: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Criterion:
    """A membership criterion: a Cedar condition over ``principal`` or ``organisation``.

    The condition is the body of a Cedar ``when { ... }`` clause. For principals, ``principal``
    is the principal entity (``principal.attributes``, ``principal.organisation.attributes``,
    ``principal.organisation.kind``, ``principal.roles``); for organisations, ``principal`` is the
    organisation entity.
    """

    id: str
    applies_to: Literal["principal", "organisation"]
    condition: str
    description: str = ""


@dataclass(frozen=True)
class Quorum:
    """``approvals`` distinct persons from at least ``organisations`` distinct organisations,
    with at least ``kinds[k]`` distinct organisations of kind ``k`` among them."""

    approvals: int
    organisations: int = 1
    kinds: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> Quorum:
        """The quorum a constitution's ``quorum:`` mapping states, with its one default.

        ``organisations`` defaults to 1 when approvals are needed (any approval comes from some
        organisation) and to 0 for a standing rule, which needs none. ``raw`` is already
        schema-checked (``approvals`` present, counts non-negative integers).

        Raises:
            KeyError: ``raw`` has no ``approvals``.
        """
        approvals = raw["approvals"]
        return cls(
            approvals=approvals,
            organisations=raw.get("organisations", 1 if approvals else 0),
            kinds=dict(raw.get("kinds", {})),
        )


@dataclass(frozen=True)
class Notify:
    """Who must be told: organisations by id, every organisation of some kinds, and roles."""

    organisations: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessRule:
    """Who may request a capability, who approves, and the quorum that grants it.

    A rule with ``quorum.approvals == 0`` is a standing permission: eligible requesters may use
    the capability without a grant.
    """

    id: str
    capability: str
    requester_roles: frozenset[str]
    requester_criteria: tuple[str, ...]
    approver_roles: frozenset[str]
    quorum: Quorum
    max_duration: timedelta
    purpose_required: bool = False
    approval_validity: timedelta = timedelta(hours=24)
    notify: Notify = field(default_factory=Notify)


@dataclass(frozen=True)
class ReviewRule:
    """The mandatory post-hoc review of a break-glass use: a k-of-n decision with a deadline."""

    approver_roles: frozenset[str]
    quorum: Quorum
    deadline: timedelta


@dataclass(frozen=True)
class BreakGlassRule:
    """An immediate, short grant for a named emergency, reviewed afterwards."""

    id: str
    capability: str
    emergency: str
    roles: frozenset[str]
    max_duration: timedelta
    review: ReviewRule
    notify: Notify = field(default_factory=Notify)


@dataclass(frozen=True)
class AmendmentRule:
    """Who signs amendments, and how many of them: TUF's root rule applies to old and new."""

    signers: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class EntrenchedClause:
    """Parts of the document (paths like ``/log`` or ``/access/cyber/quorum``) that need a
    stronger threshold to change: ``signers`` amendment signers from ``organisations`` distinct
    organisations (``None`` means all of them).

    ``capabilities`` are the capabilities the clause entrenches *by effect*: those it names and
    those its paths name (a capability, or an access or break-glass rule of one).
    """

    id: str
    description: str
    paths: tuple[str, ...]
    signers: int | None = None
    organisations: int | None = None
    # Entrenched by effect (see custodes.constitution._amend): named, and named by the paths.
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Witness:
    """An outside witness that cosigns log checkpoints (C2SP tlog-witness)."""

    name: str
    key: str  # a C2SP signed-note verifier key: name+hash+base64
    organisation: str
    url: str = ""


@dataclass(frozen=True)
class WitnessConfig:
    """The constitution's witnesses and how many must cosign a checkpoint.

    Attributes:
        witnesses: the outside witnesses.
        quorum: cosignatures a checkpoint needs (0: none required).
    """

    witnesses: tuple[Witness, ...] = ()
    quorum: int = 0


@dataclass(frozen=True)
class CoalitionFloor:
    """The smallest coalition that may reach a protected capability must span at least
    ``min_organisations`` organisations."""

    protected: tuple[str, ...] = ()
    min_organisations: int = 1


@dataclass(frozen=True)
class EvaluationLimit:
    """An evaluation a tier requires before weights are promoted to serve in it.

    Attributes:
        evaluation: the evaluation's id (``provenance.evaluations``).
        below: the score at or above which a model may not serve in the tier (None: the
            evaluation is required, whatever its score).
    """

    evaluation: str
    below: float | None = None


@dataclass(frozen=True)
class ServedTier:
    """A capability tier that serves only weights promoted to it."""

    capability: str
    evaluations: tuple[EvaluationLimit, ...] = ()


@dataclass(frozen=True)
class ProvenanceRules:
    """The ``provenance:`` section (empty when the document has none: nothing can be trained,
    evaluated or promoted, and no tier is restricted to approved weights).

    Attributes:
        training_capability: grants of it approve a training run, bound to the run's build.
        pipeline_roles: principals with one of these roles sign run statements.
        evaluator_roles: principals with one of these roles sign capability evaluations.
        evaluations: the evaluation ids (cyber-offence, weapons-uplift, ...).
        promotion_capability: grants of it promote weights to a tier (the serving rule).
        tiers: the tiers that serve only promoted weights, with their required evaluations.
        notify: who is told when a model crosses a tier's threshold.
    """

    training_capability: str | None = None
    pipeline_roles: frozenset[str] = frozenset()
    evaluator_roles: frozenset[str] = frozenset()
    evaluations: tuple[str, ...] = ()
    promotion_capability: str | None = None
    tiers: tuple[ServedTier, ...] = ()
    notify: Notify = field(default_factory=Notify)

    @cached_property
    def tiers_by_capability(self) -> Mapping[str, ServedTier]:
        """Capability id -> the tier's rules, for the tiers that serve only promoted weights."""
        return {t.capability: t for t in self.tiers}

    def signers(self, principals: Sequence[Principal], roles: frozenset[str]) -> dict[str, bytes]:
        """The public keys of the principals holding one of ``roles``, by principal id."""
        return {
            p.id: p.public_key for p in principals if p.roles & roles and p.public_key is not None
        }


@dataclass(frozen=True)
class Constitution:
    """One validated version of the constitution.

    ``document`` is the plain parsed document (what amendments compare, path by path) and
    ``digest`` the SHA-256 of its RFC 8785 canonical JSON.

    Attributes:
        version: the version number (1 for the first; each amendment adds one).
        name: the constitution's name.
        organisations: every organisation, counted by id.
        principals: every person and workload.
        capabilities: the capability tiers.
        criteria: membership and attribute criteria (Cedar conditions).
        access_rules: who may get which capability, with what approvals.
        break_glass: emergency rules and the review that must follow each use.
        amendment: who must sign an amendment.
        entrenched: clauses that need more signers to change.
        witnesses: outside witnesses of the log.
        coalition: the floor of organisations for protected capabilities.
        log_enabled: whether the transparency log is on.
        document: the parsed document.
        digest: SHA-256 of the document's RFC 8785 canonical JSON, hex.
        text: the source text as read.
        log_append_roles: see the comment on the field.
        provenance: who trains, evaluates and promotes weights; the tiers that serve only
            promoted weights.
    """

    version: int
    name: str
    organisations: tuple[Organisation, ...]
    principals: tuple[Principal, ...]
    capabilities: tuple[Capability, ...]
    criteria: tuple[Criterion, ...]
    access_rules: tuple[AccessRule, ...]
    break_glass: tuple[BreakGlassRule, ...]
    amendment: AmendmentRule
    entrenched: tuple[EntrenchedClause, ...]
    witnesses: WitnessConfig
    coalition: CoalitionFloor
    log_enabled: bool
    document: Mapping[str, Any] = field(repr=False, compare=False)
    digest: str = ""
    text: str = field(default="", repr=False, compare=False)
    # Roles whose principals may append their own entries to the log over HTTP
    # (``log.append.roles``). Empty: no client may; custodes still logs its own actions.
    log_append_roles: frozenset[str] = frozenset()
    # The ``provenance:`` section (custodes.provenance): training, evaluation, promotion.
    provenance: ProvenanceRules = field(default_factory=ProvenanceRules)

    @cached_property
    def organisations_by_id(self) -> Mapping[str, Organisation]:
        """Organisation id -> organisation."""
        return {o.id: o for o in self.organisations}

    @cached_property
    def principals_by_id(self) -> Mapping[str, Principal]:
        """Principal id -> principal."""
        return {p.id: p for p in self.principals}

    @cached_property
    def capabilities_by_id(self) -> Mapping[str, Capability]:
        """Capability tier id -> tier."""
        return {c.id: c for c in self.capabilities}

    @cached_property
    def criteria_by_id(self) -> Mapping[str, Criterion]:
        """Criterion id -> criterion."""
        return {c.id: c for c in self.criteria}

    @cached_property
    def access_rules_by_id(self) -> Mapping[str, AccessRule]:
        """Access rule id -> rule."""
        return {r.id: r for r in self.access_rules}

    @cached_property
    def break_glass_by_id(self) -> Mapping[str, BreakGlassRule]:
        """Break-glass rule id -> rule."""
        return {r.id: r for r in self.break_glass}

    def organisation_of(self, principal_id: str) -> Organisation:
        """The organisation of a principal.

        Raises:
            KeyError: no such principal.
        """
        return self.organisations_by_id[self.principals_by_id[principal_id].organisation]

    def principals_not_in(
        self, organisation_id: str, *, role: str | None = None
    ) -> tuple[Principal, ...]:
        """Principals outside an organisation (optionally with a role): reviewers for separation
        of duties."""
        return tuple(
            p
            for p in self.principals
            if p.organisation != organisation_id and (role is None or role in p.roles)
        )

    def rules_for(self, capability_id: str) -> tuple[AccessRule, ...]:
        """The access rules that give ``capability_id``, in document order."""
        return tuple(r for r in self.access_rules if r.capability == capability_id)

    def capabilities_for_model(self, model: str) -> tuple[Capability, ...]:
        """The tiers that list ``model``, in document order."""
        return tuple(c for c in self.capabilities if model in c.models)
