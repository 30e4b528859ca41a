"""The authority: requests, approvals, grants, revocations, break-glass, reviews, amendments.

Every state change is appended to the log first (invariant 1: no log, no action) and only then
written to the tables and the in-memory index that :meth:`Authority.authorize` reads. Mutations
are serialised by one lock per process; the deployment runs one authority per database.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes._durations import say_seconds
from custodes.authority import _decide, _entries  # noqa: F401  (_entries registers entry types)
from custodes.authority._model import Grant, RequestRecord, RuleStatus
from custodes.authority._quorum import (
    ApprovalFacts,
    QuorumOutcome,
    RequestFacts,
    evaluate_quorum,
)
from custodes.authority._signing import (
    decode_signature,
    renewal_message,
    request_digest,
    request_message,
    verify_signature,
)
from custodes.authority._tables import authority_approvals, authority_grants, authority_requests
from custodes.clock import Clock, utc
from custodes.constitution import (
    AccessRule,
    Acknowledgement,
    AmendmentGuard,
    BreakGlassRule,
    CompiledPolicies,
    Constitution,
    EffectMeasurer,
    Notify,
    Organisation,
    Principal,
    check_amendment,
    compile_policies,
    constitution_versions,
    read_constitution,
    unmeasured,
)
from custodes.errors import (
    ApprovalError,
    ConstitutionError,
    Denial,
    InputError,
    NotFoundError,
    PolicyDenied,
)
from custodes.log import Entry, TransparencyLog, format_time, parse_time

__all__ = ["Authority"]

_log = logging.getLogger(__name__)
_AMENDMENT_VALIDITY = timedelta(days=7)
_NONCE_CHARS = set("0123456789abcdef")
_COMMON_FIELDS = frozenset({"kind", "constitution_version", "requester", "nonce", "created"})
_REQUEST_FIELDS: dict[str, frozenset[str]] = {
    "grant": _COMMON_FIELDS | {"capability", "purpose", "duration_seconds"},
    "escrow-read": _COMMON_FIELDS | {"capability", "purpose", "duration_seconds", "resource"},
    "revocation": _COMMON_FIELDS | {"grant", "reason"},
    "break-glass": _COMMON_FIELDS | {"capability", "rule", "purpose", "duration_seconds"},
    "amendment": _COMMON_FIELDS | {"amendment", "acknowledgements", "purpose"},
}


class Authority:
    """Multi-party authority over one deployment's constitution.

    Args:
        engine: the migrated database.
        log: the transparency log every action is appended to first.
        clock: the one clock (grant expiry is exact to it).
        guards: further amendment checks (e.g. the coalition floor).
        request_skew: how far a request's ``created`` time may be from the server's clock.
        effects: measures what an amendment does to entrenched goals
            (``custodes.coalition.AmendmentEffects``; the server attaches one). Without one,
            every entrenched goal counts as weakened (fail closed).
    """

    def __init__(
        self,
        engine: Engine,
        log: TransparencyLog,
        *,
        clock: Clock,
        guards: Sequence[AmendmentGuard] = (),
        request_skew: timedelta = timedelta(minutes=10),
        effects: EffectMeasurer | None = None,
    ) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock
        self.guards = list(guards)
        self.request_skew = request_skew
        self._lock = threading.RLock()
        self._constitution: Constitution | None = None
        self._compiled: CompiledPolicies | None = None
        self._grants: dict[tuple[str, str], list[Grant]] = {}
        self._revocation_listeners: list[Callable[[Grant], None]] = []
        self.effects = effects
        self._versions: dict[str, Constitution] = {}

    # -- constitution --------------------------------------------------------

    def start(
        self, initial: Constitution | None = None, *, source: str = ""
    ) -> Constitution | None:
        """Load the active constitution from the database, or adopt ``initial`` as the first.

        Raises:
            ConstitutionError: ``initial`` is not version 1, or a stored version is unreadable.
            LogWriteError: the adoption could not be logged (nothing is adopted).
        """
        with self._lock:
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(constitution_versions)
                    .order_by(constitution_versions.c.version.desc())
                    .limit(1)
                ).first()
            if row is not None:
                self._activate(
                    read_constitution(row.document, name=f"stored version {row.version}")
                )
            elif initial is not None:
                self._adopt_first(initial, source=source)
            self._load_grants()
            return self._constitution

    def _adopt_first(self, c: Constitution, *, source: str) -> None:
        if c.version != 1:
            raise ConstitutionError(
                f"the first constitution of a deployment must be version 1, not {c.version}",
                source=source,
            )
        now = self.clock.now()
        [appended] = self.log.append_batch(
            [
                Entry.create(
                    "constitution.adopt/v1",
                    time=now,
                    principal="custodes",
                    body={
                        "version": c.version,
                        "digest": c.digest,
                        "name": c.name,
                        "source": source,
                    },
                )
            ]
        )
        with self.engine.begin() as conn:
            conn.execute(
                constitution_versions.insert().values(
                    version=c.version,
                    digest=c.digest,
                    document=c.text,
                    adopted_at=now,
                    request_id=None,
                    log_index=appended.index,
                )
            )
        self._activate(c)

    def _activate(self, c: Constitution) -> None:
        self._compiled = compile_policies(c)
        self._constitution = c

    @property
    def constitution(self) -> Constitution:
        """The active constitution.

        Raises:
            NotFoundError: none is loaded.
        """
        c = self._constitution
        if c is None:
            raise NotFoundError(
                "no constitution is loaded",
                hint="start the server with --constitution FILE (or --demo)",
            )
        return c

    @property
    def compiled(self) -> CompiledPolicies:
        if self._compiled is None:
            raise NotFoundError("no constitution is loaded")
        return self._compiled

    def principal(self, principal_id: str) -> Principal:
        """Raises: NotFoundError: no such principal in the active constitution."""
        p = self.constitution.principals_by_id.get(principal_id)
        if p is None:
            raise NotFoundError(
                f"unknown principal {principal_id!r}",
                where="principal",
                expected=f"a principal of constitution version {self.constitution.version}",
            )
        return p

    def organisation_of(self, principal_id: str) -> Organisation:
        """The organisation of a principal (stable id, kind, attributes).

        Raises:
            NotFoundError: no such principal.
        """
        return self.constitution.organisations_by_id[self.principal(principal_id).organisation]

    def principals_not_in(
        self, organisation_id: str, *, role: str | None = None
    ) -> tuple[Principal, ...]:
        """Principals outside ``organisation_id`` (with ``role`` if given)."""
        return self.constitution.principals_not_in(organisation_id, role=role)

    def on_revoke(self, callback: Callable[[Grant], None]) -> None:
        """Call ``callback(grant)`` after every revocation (caches drop the grant at once)."""
        self._revocation_listeners.append(callback)

    # -- authorization -------------------------------------------------------

    def authorize(
        self,
        principal_id: str,
        capability_id: str,
        *,
        at: datetime | None = None,
        resource: str | None = None,
    ) -> Grant:
        """May ``principal_id`` use ``capability_id`` now (or ``at``), and under which grant?

        Raises:
            PolicyDenied: no; ``reasons`` name each rule and what is missing.
        """
        c = self._constitution
        compiled = self._compiled
        if c is None or compiled is None:
            # Fail closed: without a constitution nothing is permitted.
            raise PolicyDenied(
                "no constitution is loaded", reasons=[Denial("constitution", "load a constitution")]
            )
        when = utc(at) if at is not None else self.clock.now()
        if principal_id not in c.principals_by_id:
            raise PolicyDenied(
                f"{principal_id!r} is not a principal of constitution version {c.version}",
                reasons=[Denial("constitution", f"unknown principal {principal_id}")],
            )
        if capability_id not in c.capabilities_by_id:
            raise PolicyDenied(
                f"unknown capability {capability_id!r}",
                reasons=[Denial("constitution", f"unknown capability {capability_id}")],
            )
        live = [
            g
            for g in self._grants.get((principal_id, capability_id), ())
            if g.covers(when, resource)
        ]
        approved = [g for g in live if not g.break_glass]
        decision = compiled.decide(
            principal_id, "use", capability_id, grants=frozenset(g.rule for g in approved)
        )
        if decision.allowed:
            # Cedar names the rules that allowed it: a grant under one of them, or a standing
            # rule (which needs none).
            allowing = {p.split(":", 1)[1] for p in decision.policies if p.startswith("use:")}
            covering = [g for g in approved if g.rule in allowing]
            if covering:
                return max(covering, key=lambda g: g.expires_at or when)
            standing = sorted(r for r in allowing if c.access_rules_by_id[r].quorum.approvals == 0)
            if standing:
                return Grant(
                    id=f"standing:{standing[0]}",
                    principal=principal_id,
                    capability=capability_id,
                    rule=standing[0],
                    granted_at=None,
                    expires_at=None,
                    constitution_version=c.version,
                )
        emergency = [g for g in live if g.break_glass and self._break_glass_holds(g)]
        if emergency:
            return max(emergency, key=lambda g: g.expires_at or when)
        raise PolicyDenied(
            f"{principal_id} may not use {capability_id}",
            reasons=self._explain_denial(principal_id, capability_id, when),
        )

    def _break_glass_holds(self, g: Grant) -> bool:
        c = self.constitution
        rule = c.break_glass_by_id.get(g.rule)
        p = c.principals_by_id.get(g.principal)
        return (
            rule is not None
            and p is not None
            and rule.capability == g.capability
            and bool(p.roles & rule.roles)
            and self.compiled.principal_admitted[p.id]
        )

    def _explain_denial(
        self, principal_id: str, capability_id: str, when: datetime
    ) -> list[Denial]:
        c = self.constitution
        compiled = self.compiled
        rules = c.rules_for(capability_id)
        if not rules:
            return [Denial("constitution", f"no access rule covers {capability_id}")]
        past = [
            g for g in self._grants.get((principal_id, capability_id), ()) if not g.active_at(when)
        ]
        out = [
            Denial(
                g.rule,
                f"break-glass grant {g.id} is suspended: its review was due at "
                f"{format_time(g.review_deadline or when)} and is not done",
            )
            for g in self._grants.get((principal_id, capability_id), ())
            if g.active_at(when) and g.suspended_at(when)
        ]
        for rule in rules:
            refusal = _decide.requester_refusal(c, compiled, principal_id, rule)
            if refusal is not None:
                out.append(Denial(rule.id, refusal))
                continue
            q = rule.quorum
            text = (
                f"no active grant: request one (needs {q.approvals} approvals from "
                f"{q.organisations} organisations"
                + "".join(f", at least {n} {k}" for k, n in sorted(q.kinds.items()))
                + ")"
            )
            for g in past:
                if g.rule == rule.id and g.revoked_at is not None:
                    text = f"grant {g.id} was revoked at {format_time(g.revoked_at)}; " + text
                elif g.rule == rule.id and g.expires_at is not None:
                    text = f"grant {g.id} expired at {format_time(g.expires_at)}; " + text
            out.append(Denial(rule.id, text))
        return out

    def _ineligible(self, p: Principal, rule: AccessRule) -> str:
        refusal = _decide.requester_refusal(self.constitution, self.compiled, p.id, rule)
        return refusal or "not an eligible requester"

    # -- grants --------------------------------------------------------------

    def _load_grants(self) -> None:
        now = self.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(authority_grants).where(authority_grants.c.expires_at > now)
            ).all()
        index: dict[tuple[str, str], list[Grant]] = {}
        for row in rows:
            g = _grant_from_row(row)
            index.setdefault((g.principal, g.capability), []).append(g)
        self._grants = index

    def _index(self, g: Grant) -> None:
        key = (g.principal, g.capability)
        now = self.clock.now()
        kept = [
            x
            for x in self._grants.get(key, [])
            if x.id != g.id and (x.expires_at is None or x.expires_at > now)
        ]
        self._grants[key] = [*kept, g]

    def grants(self, *, principal: str | None = None, active_only: bool = False) -> list[Grant]:
        """Grants, newest first."""
        query = sa.select(authority_grants).order_by(authority_grants.c.granted_at.desc())
        if principal is not None:
            query = query.where(authority_grants.c.principal == principal)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        grants = [_grant_from_row(r) for r in rows]
        if active_only:
            now = self.clock.now()
            grants = [g for g in grants if g.active_at(now)]
        return grants

    def _active_where(self, now: datetime, principals: Iterable[str] | None) -> Any:
        # A superset of Grant.active_at(now), so the database can count and order; callers
        # that return grants still apply active_at itself (the microsecond rule lives there).
        c = authority_grants.c
        where = sa.and_(
            sa.or_(c.granted_at.is_(None), c.granted_at <= now),
            sa.or_(c.expires_at.is_(None), c.expires_at > now),
            sa.or_(c.revoked_at.is_(None), c.revoked_at > now),
        )
        if principals is not None:
            where = sa.and_(where, c.principal.in_(list(principals)))
        return where

    def count_active_grants(
        self, *, principals: Iterable[str] | None = None, break_glass: bool | None = None
    ) -> int:
        """How many grants are active now (of ``principals``, when given), without loading
        them (the dashboard's count over 10,000s of grants)."""
        where = self._active_where(self.clock.now(), principals)
        if break_glass is not None:
            where = sa.and_(where, authority_grants.c.break_glass.is_(break_glass))
        query = sa.select(sa.func.count()).select_from(authority_grants).where(where)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def active_grants(
        self,
        *,
        principals: Iterable[str] | None = None,
        break_glass: bool | None = None,
        limit: int = 100,
    ) -> list[Grant]:
        """The ``limit`` active grants that expire soonest (standing grants last), of
        ``principals`` when given; ``break_glass`` keeps only (or leaves out) break-glass."""
        now = self.clock.now()
        c = authority_grants.c
        where = self._active_where(now, principals)
        if break_glass is not None:
            where = sa.and_(where, c.break_glass.is_(break_glass))
        query = (
            sa.select(authority_grants)
            .where(where)
            .order_by(c.expires_at.is_(None), c.expires_at, c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [g for g in (_grant_from_row(r) for r in rows) if g.active_at(now)]

    def grant(self, grant_id: str) -> Grant:
        """Raises: NotFoundError."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(authority_grants).where(authority_grants.c.id == grant_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no grant {grant_id!r}", where="grant_id")
        return _grant_from_row(row)

    # -- requests ------------------------------------------------------------

    def _check_signed(
        self, request: Mapping[str, Any], signature: str, *, kinds: Iterable[str]
    ) -> tuple[dict[str, Any], str, Principal]:
        """Common checks of a signed request object; returns it, its digest and its signer."""
        c = self.constitution
        if not isinstance(request, Mapping):
            raise InputError("request must be an object", where="request")
        req = dict(request)
        kind = req.get("kind")
        if kind not in set(kinds):
            raise InputError(
                f"unexpected request kind {kind!r}",
                where="request.kind",
                expected=" or ".join(kinds),
            )
        unknown = sorted(set(req) - _REQUEST_FIELDS[kind])
        if unknown:
            raise InputError(
                f"unknown field {unknown[0]!r} in a {kind} request",
                where=f"request.{unknown[0]}",
                expected="one of: " + ", ".join(sorted(_REQUEST_FIELDS[kind])),
            )
        _check_bounded(req)
        for name, value in req.items():
            if (
                not isinstance(value, str | int | list | dict)
                or isinstance(value, bool)
                or (isinstance(value, int) and not -(1 << 53) < value < (1 << 53))
            ):
                raise InputError(
                    "request fields are strings, integers, lists or objects",
                    where=f"request.{name}",
                    actual=repr(value)[:100],
                )
            if isinstance(value, str) and len(value) > 4096:
                raise InputError(
                    "field too long", where=f"request.{name}", expected="at most 4096 characters"
                )
        if req.get("constitution_version") != c.version:
            raise InputError(
                "the request names another constitution version",
                where="request.constitution_version",
                expected=str(c.version),
                actual=repr(req.get("constitution_version")),
            )
        nonce = req.get("nonce")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64 or set(nonce) - _NONCE_CHARS:
            raise InputError(
                "malformed nonce",
                where="request.nonce",
                expected="16 to 64 lowercase hex digits",
                actual=repr(nonce),
            )
        created_text = req.get("created")
        created = parse_time(
            created_text if isinstance(created_text, str) else "", where="request.created"
        )
        now = self.clock.now()
        if abs(now - created) > self.request_skew:
            raise InputError(
                "the request's created time is too far from the server's clock",
                where="request.created",
                expected=f"within {self.request_skew} of {format_time(now)}",
                actual=created_text,
            )
        requester_id = req.get("requester")
        if not isinstance(requester_id, str):
            raise InputError("requester missing", where="request.requester")
        requester = self.principal(requester_id)
        if requester.public_key is None:
            raise InputError(
                f"{requester_id} has no key in the constitution",
                where="request.requester",
                expected="a principal with an Ed25519 key, who signs the request",
            )
        digest = request_digest(req)
        sig = decode_signature(signature)
        if not verify_signature(requester.public_key, request_message(digest), sig):
            raise ApprovalError(
                f"the request's signature does not verify under {requester_id}'s key",
                hint="sign custodes-request/v1 over the request's digest",
            )
        return req, digest, requester

    def _purpose_and_duration(self, req: Mapping[str, Any]) -> tuple[str, int]:
        purpose = req.get("purpose", "")
        if not isinstance(purpose, str) or len(purpose) > 2000:
            raise InputError(
                "purpose must be a string of at most 2000 characters", where="request.purpose"
            )
        duration = req.get("duration_seconds")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
            raise InputError(
                "duration_seconds must be a positive integer",
                where="request.duration_seconds",
                actual=repr(duration),
            )
        return purpose, duration

    def _applicable_rules(self, req: Mapping[str, Any], requester: Principal) -> list[AccessRule]:
        c = self.constitution
        capability = req.get("capability")
        if not isinstance(capability, str) or capability not in c.capabilities_by_id:
            raise InputError(
                f"unknown capability {capability!r}",
                where="request.capability",
                expected="one of: " + ", ".join(sorted(c.capabilities_by_id)),
            )
        purpose, duration = self._purpose_and_duration(req)
        rules = c.rules_for(capability)
        eligible = [r for r in rules if _decide.may_request(c, self.compiled, requester.id, r)]
        if not eligible:
            raise PolicyDenied(
                f"{requester.id} may not request {capability}",
                reasons=[Denial(r.id, self._ineligible(requester, r)) for r in rules]
                or [Denial("constitution", f"no access rule covers {capability}")],
            )
        quorum_rules = [r for r in eligible if r.quorum.approvals > 0]
        if not quorum_rules:
            raise InputError(
                f"{requester.id} already holds {capability} under the standing "
                f"rule {eligible[0].id}: there is nothing to request",
                where="request.capability",
            )
        fitting = [
            r
            for r in quorum_rules
            if timedelta(seconds=duration) <= r.max_duration
            and (purpose.strip() or not r.purpose_required)
        ]
        if not fitting:
            longest = max(r.max_duration for r in quorum_rules)
            if timedelta(seconds=duration) > longest:
                raise InputError(
                    "the requested duration is longer than any rule allows",
                    where="request.duration_seconds",
                    expected=f"at most {say_seconds(longest)}",
                    actual=say_seconds(duration),
                )
            raise InputError(
                "a purpose is required",
                where="request.purpose",
                expected="a statement of why the capability is needed",
            )
        return fitting

    def submit_request(self, request: Mapping[str, Any], signature: str) -> RequestRecord:
        """Make a request for a grant (or an escrow read), signed by the requester.

        Raises:
            InputError: malformed, stale or duplicate request.
            ApprovalError: the requester's signature does not verify.
            PolicyDenied: the requester may not request this capability.
            LogWriteError: the request could not be logged (it is not made).
        """
        with self._lock:
            req, digest, requester = self._check_signed(
                request, signature, kinds=("grant", "escrow-read")
            )
            if req["kind"] == "escrow-read" and not isinstance(req.get("resource"), str):
                raise InputError("an escrow read names its resource", where="request.resource")
            rules = self._applicable_rules(req, requester)
            notify = self._notified(*(r.notify for r in rules))
            return self._record_request(req, digest, signature, notify=notify)

    def _record_request(
        self,
        req: dict[str, Any],
        digest: str,
        signature: str | None,
        *,
        notify: dict[str, list[str]],
        payload: str | None = None,
        extra_entries: Sequence[Entry] = (),
        after: Callable[[sa.Connection, int], None] | None = None,
    ) -> RequestRecord:
        request_id = digest[:16]
        with self.engine.connect() as conn:
            dup = conn.execute(
                sa.select(authority_requests.c.id).where(
                    (authority_requests.c.digest == digest)
                    | (authority_requests.c.id == request_id)
                )
            ).first()
        if dup is not None:
            raise InputError(
                "this request was already made (same digest): a replay",
                where="request.nonce",
                expected="a fresh nonce",
            )
        now = self.clock.now()
        entries = [
            *extra_entries,
            Entry.create(
                "authority.request/v1",
                time=now,
                principal=req["requester"],
                body={
                    "id": request_id,
                    "digest": digest,
                    "request": req,
                    "signature": signature,
                    "notify": notify,
                },
            ),
        ]
        appended = self.log.append_batch(entries)
        with self.engine.begin() as conn:
            conn.execute(
                authority_requests.insert().values(
                    id=request_id,
                    digest=digest,
                    kind=req["kind"],
                    requester=req["requester"],
                    capability=req.get("capability"),
                    constitution_version=req["constitution_version"],
                    body=orjson.dumps(req).decode(),
                    signature=signature,
                    payload=payload,
                    status="pending",
                    created_at=now,
                    decided_at=None,
                    log_index=appended[-1].index,
                )
            )
            if after is not None:
                after(conn, appended[0].index)
        return self.request(request_id)

    def _notified(self, *notifies: Notify) -> dict[str, list[str]]:
        return _decide.notified(self.constitution, *notifies).to_json()

    def request(self, request_id: str) -> RequestRecord:
        """A request with its approvals and, while pending, what each rule still needs.

        Raises:
            NotFoundError: no such request.
        """
        self.sweep()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(authority_requests).where(authority_requests.c.id == request_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no request {request_id!r}", where="request_id")
            approvals = conn.execute(
                sa.select(authority_approvals)
                .where(authority_approvals.c.request_id == request_id)
                .order_by(authority_approvals.c.id)
            ).all()
            grant = conn.execute(
                sa.select(authority_grants.c.id).where(authority_grants.c.request_id == request_id)
            ).first()
        statuses: tuple[RuleStatus, ...] = ()
        takes_approvals = row.status == "pending" or (
            row.kind == "review" and row.status == "overdue"
        )
        if takes_approvals and self._constitution is not None:
            statuses = tuple(self._rule_statuses(row, approvals))
        return RequestRecord(
            id=row.id,
            digest=row.digest,
            kind=row.kind,
            requester=row.requester,
            capability=row.capability,
            constitution_version=row.constitution_version,
            request=json.loads(row.body),
            status=row.status,
            created_at=row.created_at,
            decided_at=row.decided_at,
            approvals=tuple(
                {
                    "approver": a.approver,
                    "organisation": a.organisation,
                    "signature": a.signature,
                    "at": format_time(a.created_at),
                    "constitution_version": a.constitution_version,
                }
                for a in approvals
            ),
            rules=statuses,
            grant_id=grant.id if grant else None,
            payload=row.payload,
        )

    def requests(self, *, status: str | None = None, limit: int = 100) -> list[RequestRecord]:
        query = (
            sa.select(authority_requests.c.id)
            .order_by(authority_requests.c.created_at.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(authority_requests.c.status == status)
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(query)]
        return [self.request(i) for i in ids]

    # -- approvals -----------------------------------------------------------

    def _facts(
        self, row: Any, approvals: Sequence[Any]
    ) -> tuple[RequestFacts, list[ApprovalFacts]]:
        return (
            RequestFacts(
                digest=row.digest,
                requester=row.requester,
                constitution_version=row.constitution_version,
            ),
            [
                ApprovalFacts(
                    approver=a.approver,
                    signature=a.signature,
                    at=a.created_at,
                    constitution_version=a.constitution_version,
                )
                for a in approvals
            ],
        )

    def _rule_statuses(self, row: Any, approvals: Sequence[Any]) -> list[RuleStatus]:
        c = self.constitution
        now = self.clock.now()
        facts, approval_facts = self._facts(row, approvals)
        if row.kind in ("grant", "escrow-read"):
            req = json.loads(row.body)
            requester = c.principals_by_id.get(row.requester)
            try:
                rules = self._applicable_rules(req, requester) if requester else []
            except (InputError, PolicyDenied):
                rules = []
            out = []
            for rule in rules:
                o = evaluate_quorum(
                    c,
                    approver_roles=rule.approver_roles,
                    quorum=rule.quorum,
                    validity=rule.approval_validity,
                    request=facts,
                    approvals=approval_facts,
                    now=now,
                )
                out.append(_status(rule.id, o))
            return out
        if row.kind == "review":
            bg = self._review_rule(row)
            if bg is None:
                return []
            o = evaluate_quorum(
                c,
                approver_roles=bg.review.approver_roles,
                quorum=bg.review.quorum,
                validity=bg.review.deadline,
                request=facts,
                approvals=approval_facts,
                now=now,
            )
            return [_status(f"review:{bg.id}", o)]
        if row.kind == "amendment":
            decision, _, _ = self._amendment_decision(row, approvals)
            if decision is None:
                return []
            return [
                RuleStatus(
                    rule="amendment",
                    satisfied=decision.allowed,
                    counted=(),
                    missing=tuple(f"{d.rule}: {d.missing}" for d in decision.denials),
                )
            ]
        return []

    def approve(self, request_id: str, approver_id: str, signature: str) -> RequestRecord:
        """Add an approver's signature over a request's digest; act once the quorum is met.

        Raises:
            NotFoundError: no such request or approver.
            ApprovalError: the request is decided or superseded, the approver is the requester
                or not an approver of it, another identity of the same person already
                approved, the approver's own approval is there (or expired: renew it with
                :meth:`renew_approval`), or the signature does not verify over its digest.
            LogWriteError: the approval could not be logged (it does not count).
        """
        from custodes.authority._signing import approval_message

        with self._lock:
            self.sweep()
            c = self.constitution
            row = self._open_request(request_id)
            keys = self._approver_keys(row, approver_id)
            sig = decode_signature(signature)
            message = approval_message(row.digest)
            if not any(verify_signature(k, message, sig) for k in keys):
                raise ApprovalError(
                    f"the signature does not verify under {approver_id}'s key "
                    f"over request {request_id}'s digest: forged, or made for "
                    "another request"
                )
            now = self.clock.now()
            organisation = self._organisation_for(approver_id, row)
            person = self._person_for(approver_id, row)
            for a in self._approvals_of(request_id):
                if a.approver == approver_id:
                    until = a.created_at + self._approval_validity(row)
                    if now >= until:
                        raise ApprovalError(
                            f"{approver_id}'s approval of request {request_id} expired at "
                            f"{format_time(until)}; it does not count until renewed",
                            hint="renew it: sign custodes-approval-renewal/v1 over the "
                            "request's digest and the time (POST the approval again with "
                            "renewed_at)",
                        )
                    raise ApprovalError(
                        f"{approver_id} has already approved request {request_id}; a person "
                        "counts once"
                    )
                if self._person_for(a.approver, row) == person:
                    raise ApprovalError(
                        f"{approver_id} is the same person as {a.approver}, who already "
                        f"approved request {request_id}: a person counts once, whatever "
                        "identities they hold; this approval does not count and is not recorded"
                    )
            [appended] = self.log.append_batch(
                [
                    Entry.create(
                        "authority.approval/v1",
                        time=now,
                        principal=approver_id,
                        body={
                            "request_id": request_id,
                            "digest": row.digest,
                            "approver": approver_id,
                            "organisation": organisation,
                            "signature": signature,
                        },
                    )
                ]
            )
            with self.engine.begin() as conn:
                conn.execute(
                    authority_approvals.insert().values(
                        request_id=request_id,
                        approver=approver_id,
                        organisation=organisation,
                        signature=signature,
                        constitution_version=c.version,
                        created_at=now,
                        log_index=appended.index,
                    )
                )
            self._decide(request_id)
            return self.request(request_id)

    def renew_approval(
        self, request_id: str, approver_id: str, renewed_at: str, signature: str
    ) -> RequestRecord:
        """Renew the approver's own expired approval of a pending request.

        The approver signs ``custodes-approval-renewal/v1`` over the request's digest and
        ``renewed_at`` (the server's clock, within the request skew): a fresh statement, so an
        expired approval, public in the log, cannot be renewed by anyone else replaying it.

        Raises:
            NotFoundError: no such request or approver.
            ApprovalError: the request is decided, the approver has no approval of it or it has
                not expired, the time is stale, or the signature does not verify.
            InputError: ``renewed_at`` is malformed or too far from the server's clock.
            LogWriteError: the renewal could not be logged (the approval stays expired).
        """
        with self._lock:
            self.sweep()
            c = self.constitution
            row = self._open_request(request_id)
            keys = self._approver_keys(row, approver_id)
            at = parse_time(renewed_at, where="renewed_at")
            now = self.clock.now()
            if abs(now - at) > self.request_skew:
                raise InputError(
                    "the renewal's time is too far from the server's clock",
                    where="renewed_at",
                    expected=f"within {self.request_skew} of {format_time(now)}",
                    actual=renewed_at,
                )
            mine = [a for a in self._approvals_of(request_id) if a.approver == approver_id]
            if not mine:
                raise ApprovalError(
                    f"{approver_id} has no approval of request {request_id} to renew",
                    hint="approve it instead",
                )
            [old] = mine
            until = old.created_at + self._approval_validity(row)
            if now < until:
                raise ApprovalError(
                    f"{approver_id}'s approval of request {request_id} is valid until "
                    f"{format_time(until)}; only an expired approval is renewed"
                )
            if at <= old.created_at:
                raise ApprovalError("the renewal is older than the approval it renews: a replay")
            sig = decode_signature(signature)
            message = renewal_message(row.digest, renewed_at)
            if not any(verify_signature(k, message, sig) for k in keys):
                raise ApprovalError(
                    f"the renewal signature does not verify under {approver_id}'s key over "
                    f"request {request_id}'s digest and {renewed_at}"
                )
            [appended] = self.log.append_batch(
                [
                    Entry.create(
                        "authority.approval_renewal/v1",
                        time=now,
                        principal=approver_id,
                        body={
                            "request_id": request_id,
                            "digest": row.digest,
                            "approver": approver_id,
                            "organisation": old.organisation,
                            "signature": old.signature,
                            "previous_at": format_time(old.created_at),
                            "renewed_at": renewed_at,
                            "renewal_signature": signature,
                        },
                    )
                ]
            )
            with self.engine.begin() as conn:
                conn.execute(
                    authority_approvals.update()
                    .where(authority_approvals.c.id == old.id)
                    .values(
                        created_at=now, constitution_version=c.version, log_index=appended.index
                    )
                )
            self._decide(request_id)
            return self.request(request_id)

    def _open_request(self, request_id: str) -> Any:
        """A request that takes approvals: pending (or a review past its deadline, which may
        still be done late), made under the current constitution.

        Raises:
            NotFoundError, ApprovalError.
        """
        c = self.constitution
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(authority_requests).where(authority_requests.c.id == request_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no request {request_id!r}", where="request_id")
        if row.status != "pending" and not (row.kind == "review" and row.status == "overdue"):
            raise ApprovalError(f"request {request_id} is {row.status}; it takes no more approvals")
        if row.constitution_version != c.version:
            raise ApprovalError(
                f"request {request_id} was made under constitution version "
                f"{row.constitution_version}; the current is {c.version}",
                hint="make a new request",
            )
        return row

    def _approvals_of(self, request_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(authority_approvals)
                    .where(authority_approvals.c.request_id == request_id)
                    .order_by(authority_approvals.c.id)
                ).all()
            )

    def _approval_validity(self, row: Any) -> timedelta:
        """How long an approval of this request counts: the longest its rules allow."""
        c = self.constitution
        if row.kind == "amendment":
            return _AMENDMENT_VALIDITY
        if row.kind == "review":
            rule: BreakGlassRule = self._review_rule_or_fail(row)
            return rule.review.deadline
        rules = c.rules_for(row.capability) if row.capability else ()
        return max((r.approval_validity for r in rules), default=timedelta(hours=24))

    def _person_for(self, principal_id: str, row: Any) -> str:
        p = self.constitution.principals_by_id.get(principal_id)
        if p is None:
            new = self._proposed(row)
            p = new.principals_by_id.get(principal_id) if new is not None else None
        return p.person_id if p is not None else principal_id

    def _organisation_for(self, principal_id: str, row: Any) -> str:
        p = self.constitution.principals_by_id.get(principal_id)
        if p is not None:
            return p.organisation
        new = self._proposed(row)
        if new is not None and principal_id in new.principals_by_id:
            return new.principals_by_id[principal_id].organisation
        raise NotFoundError(f"unknown principal {principal_id!r}", where="approver")

    def _approver_keys(self, row: Any, approver_id: str) -> list[bytes]:
        """The keys an approver may sign this request with; refuses those who may not."""
        c = self.constitution
        p = c.principals_by_id.get(approver_id)
        if row.kind == "amendment":
            new = self._proposed(row)
            keys = []
            if p is not None and p.public_key and _decide.may_sign_amendment(c, approver_id):
                keys.append(p.public_key)
            if new is not None and _decide.may_sign_amendment(new, approver_id):
                q = new.principals_by_id[approver_id]
                if q.public_key:
                    keys.append(q.public_key)
            if not keys:
                raise ApprovalError(
                    f"{approver_id} is not an amendment signer of version "
                    f"{c.version} or of the proposed version"
                )
            return keys
        if p is None:
            raise NotFoundError(f"unknown principal {approver_id!r}", where="approver")
        if row.kind == "review":
            roles = self._review_rule_or_fail(row).review.approver_roles
        else:
            roles = frozenset().union(*(r.approver_roles for r in c.rules_for(row.capability)))
        refusal = _decide.approver_refusal(c, approver_id, roles, requester=row.requester)
        if refusal is not None or p.public_key is None:
            raise ApprovalError(refusal or f"{approver_id} has no key in the constitution")
        return [p.public_key]

    def _decide(self, request_id: str) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(authority_requests).where(authority_requests.c.id == request_id)
            ).first()
            approvals = conn.execute(
                sa.select(authority_approvals).where(authority_approvals.c.request_id == request_id)
            ).all()
        if row is None or (
            row.status != "pending" and not (row.kind == "review" and row.status == "overdue")
        ):
            return
        if row.kind == "amendment":
            self._maybe_adopt(row, approvals)
            return
        statuses = self._rule_statuses(row, approvals)
        done = [s for s in statuses if s.satisfied]
        if not done:
            return
        if row.kind == "review":
            self._ratify(row, done[0])
        else:
            self._grant(row, done[0])

    def _grant(self, row: Any, status: RuleStatus) -> None:
        c = self.constitution
        req = json.loads(row.body)
        rule = c.access_rules_by_id[status.rule]
        now = self.clock.now()
        expires = now + timedelta(seconds=req["duration_seconds"])
        grant_id = f"g-{row.id}"
        notify = self._notified(rule.notify)
        [appended] = self.log.append_batch(
            [
                Entry.create(
                    "authority.grant/v1",
                    time=now,
                    principal=row.requester,
                    body={
                        "id": grant_id,
                        "request_id": row.id,
                        "principal": row.requester,
                        "capability": row.capability,
                        "rule": rule.id,
                        "resource": req.get("resource"),
                        "granted_at": format_time(now),
                        "expires_at": format_time(expires),
                        "constitution_version": c.version,
                        "approvals": [
                            {"principal": p, "organisation": o} for p, o in status.counted
                        ],
                        "notify": notify,
                    },
                )
            ]
        )
        grant = Grant(
            id=grant_id,
            principal=row.requester,
            capability=row.capability,
            rule=rule.id,
            granted_at=now,
            expires_at=expires,
            constitution_version=c.version,
            request_id=row.id,
            approvals=status.counted,
            resource=req.get("resource"),
        )
        with self.engine.begin() as conn:
            conn.execute(authority_grants.insert().values(**_grant_row(grant, appended.index)))
            conn.execute(
                authority_requests.update()
                .where(authority_requests.c.id == row.id)
                .values(status="granted", decided_at=now)
            )
        self._index(grant)

    # -- revocation ----------------------------------------------------------

    def revoke(self, revocation: Mapping[str, Any], signature: str) -> Grant:
        """Revoke a grant at once. Signed by the revoker: the holder, an approver of its rule,
        or anyone of an overseer organisation.

        Raises:
            NotFoundError, InputError, ApprovalError, PolicyDenied, LogWriteError.
        """
        with self._lock:
            req, digest, revoker = self._check_signed(revocation, signature, kinds=("revocation",))
            grant_id = req.get("grant")
            if not isinstance(grant_id, str):
                raise InputError("the revocation names no grant", where="request.grant")
            grant = self.grant(grant_id)
            now = self.clock.now()
            if grant.revoked_at is not None:
                raise InputError(f"grant {grant_id} is already revoked", where="request.grant")
            if grant.expires_at is not None and grant.expires_at <= now:
                raise InputError(f"grant {grant_id} has already expired", where="request.grant")
            c = self.constitution
            org = c.organisations_by_id[revoker.organisation]
            rule = c.access_rules_by_id.get(grant.rule)
            bg = c.break_glass_by_id.get(grant.rule)
            approver_roles = (
                rule.approver_roles if rule else bg.review.approver_roles if bg else frozenset()
            )
            if not (
                revoker.id == grant.principal
                or org.kind == "overseer"
                or revoker.roles & approver_roles
            ):
                raise PolicyDenied(
                    f"{revoker.id} may not revoke grant {grant_id}",
                    reasons=[
                        Denial(
                            grant.rule,
                            "only the holder, an approver of the rule or an "
                            "overseer organisation may revoke",
                        )
                    ],
                )
            reason = str(req.get("reason", ""))[:2000]
            notify = self._notified(rule.notify if rule else bg.notify if bg else Notify())
            if grant.principal not in notify["principals"]:
                notify["principals"] = sorted({*notify["principals"], grant.principal})
            [appended] = self.log.append_batch(
                [
                    Entry.create(
                        "authority.revocation/v1",
                        time=now,
                        principal=revoker.id,
                        body={
                            "grant_id": grant_id,
                            "by": revoker.id,
                            "reason": reason,
                            "digest": digest,
                            "signature": signature,
                            "notify": notify,
                        },
                    )
                ]
            )
            with self.engine.begin() as conn:
                conn.execute(
                    authority_grants.update()
                    .where(authority_grants.c.id == grant_id)
                    .values(revoked_at=now, revoked_by=revoker.id, revoke_reason=reason)
                )
            _log.info("grant %s revoked by %s (log index %d)", grant_id, revoker.id, appended.index)
            revoked = self.grant(grant_id)
            self._index(revoked)
        for listener in self._revocation_listeners:
            listener(revoked)
        return revoked

    # -- break-glass and reviews ----------------------------------------------

    def break_glass(self, request: Mapping[str, Any], signature: str) -> Grant:
        """An immediate, short grant for a named emergency the constitution allows, loudly
        notified and followed by a mandatory review (itself k-of-n) with a deadline.

        Raises:
            InputError, ApprovalError, PolicyDenied, LogWriteError.
        """
        with self._lock:
            self.sweep()
            req, digest, user = self._check_signed(request, signature, kinds=("break-glass",))
            c = self.constitution
            rule = c.break_glass_by_id.get(str(req.get("rule")))
            if rule is None:
                raise InputError(
                    f"no break-glass rule {req.get('rule')!r}",
                    where="request.rule",
                    expected="one of: "
                    + (", ".join(c.break_glass_by_id) or "(the constitution allows none)"),
                )
            if req.get("capability") != rule.capability:
                raise InputError(
                    f"rule {rule.id} covers {rule.capability}",
                    where="request.capability",
                    expected=rule.capability,
                    actual=repr(req.get("capability")),
                )
            purpose, duration = self._purpose_and_duration(req)
            if not purpose.strip():
                raise InputError(
                    "break-glass needs a statement of the emergency", where="request.purpose"
                )
            if timedelta(seconds=duration) > rule.max_duration:
                raise InputError(
                    "longer than the break-glass rule allows",
                    where="request.duration_seconds",
                    expected=f"at most {say_seconds(rule.max_duration)}",
                    actual=say_seconds(duration),
                )
            refusal = _decide.break_glass_refusal(c, self.compiled, user.id, rule)
            if refusal is not None:
                raise PolicyDenied(
                    f"{user.id} may not break glass under {rule.id}",
                    reasons=[Denial(rule.id, refusal)],
                )
            grant_id = f"bg-{digest[:16]}"
            with self.engine.connect() as conn:
                replayed = conn.execute(
                    sa.select(authority_grants.c.id).where(authority_grants.c.id == grant_id)
                ).first()
            if replayed is not None:
                # Checked before anything is logged: a replayed body must leave no entry
                # claiming a second emergency grant.
                raise InputError(
                    f"this break-glass request was already made (grant {grant_id}): a replay",
                    where="request.nonce",
                    expected="a fresh nonce",
                )
            now = self.clock.now()
            self._refuse_open_break_glass(user, rule.capability, rule.id, now)
            expires = now + timedelta(seconds=duration)
            deadline = now + rule.review.deadline
            # Loud: every approver this skips, every overseer organisation, and whom the rule
            # names.
            notify = _decide.break_glass_notified(c, rule).to_json()
            review = {
                "kind": "review",
                "constitution_version": c.version,
                "requester": user.id,
                "capability": rule.capability,
                "rule": rule.id,
                "break_glass": digest[:16],
                "nonce": secrets.token_hex(16),
                "created": format_time(now),
                "deadline": format_time(deadline),
            }
            review_digest = request_digest(review)
            entry = Entry.create(
                "authority.break_glass/v1",
                time=now,
                principal=user.id,
                body={
                    "grant_id": grant_id,
                    "rule": rule.id,
                    "emergency": rule.emergency,
                    "statement": purpose,
                    "principal": user.id,
                    "capability": rule.capability,
                    "granted_at": format_time(now),
                    "expires_at": format_time(expires),
                    "digest": digest,
                    "signature": signature,
                    "review_request_id": review_digest[:16],
                    "review_deadline": format_time(deadline),
                    "constitution_version": c.version,
                    "notify": notify,
                },
            )
            grant = Grant(
                id=grant_id,
                principal=user.id,
                capability=rule.capability,
                rule=rule.id,
                granted_at=now,
                expires_at=expires,
                constitution_version=c.version,
                break_glass=True,
                review_request_id=review_digest[:16],
                review_deadline=deadline,
                review_status="pending",
            )

            def insert_grant(conn: sa.Connection, index: int) -> None:
                conn.execute(authority_grants.insert().values(**_grant_row(grant, index)))

            self._record_request(
                review,
                review_digest,
                None,
                notify=notify,
                extra_entries=[entry],
                after=insert_grant,
            )
            self._index(grant)
            _log.warning(
                "BREAK-GLASS: %s took %s under %s until %s",
                user.id,
                rule.capability,
                rule.id,
                format_time(expires),
            )
            return grant

    def _refuse_open_break_glass(
        self, user: Principal, capability: str, rule_id: str, now: datetime
    ) -> None:
        """At most one open break-glass grant per person and capability (one still usable, or
        one whose review is not done), whichever of the person's identities took it; and none
        at all while a review of theirs is overdue.

        Raises:
            PolicyDenied: there is one; the reason names it.
        """
        c = self.constitution
        identities = [p.id for p in c.principals if p.person_id == user.person_id]
        query = sa.select(authority_grants).where(
            authority_grants.c.break_glass.is_(True) & authority_grants.c.principal.in_(identities)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        grants = sorted(map(_grant_from_row, rows), key=lambda g: g.granted_at or now)
        reasons = []
        for g in grants:
            if g.review_status == "overdue":
                reasons.append(
                    f"the review of {g.id} is overdue; it must be reviewed before glass is "
                    "broken again"
                )
            elif g.capability != capability:
                continue
            elif g.active_at(now):
                reasons.append(
                    f"{g.id} is active until {format_time(g.expires_at or now)}: one open "
                    "break-glass grant per person and capability"
                )
            elif g.review_status == "pending":
                reasons.append(
                    f"{g.id} is still under review (deadline "
                    f"{format_time(g.review_deadline or now)}): one open break-glass grant "
                    "per person and capability"
                )
        if reasons:
            raise PolicyDenied(
                f"{user.id} already has an open break-glass grant",
                reasons=[Denial(rule_id, reasons[0])],
            )

    def _review_rule(self, row: Any) -> Any:
        req = json.loads(row.body)
        return self.constitution.break_glass_by_id.get(req.get("rule", ""))

    def _review_rule_or_fail(self, row: Any) -> Any:
        rule = self._review_rule(row)
        if rule is None:
            raise ApprovalError("the break-glass rule of this review no longer exists")
        return rule

    def _ratify(self, row: Any, status: RuleStatus) -> None:
        req = json.loads(row.body)
        grant_id = f"bg-{req['break_glass']}"
        now = self.clock.now()
        rule = self._review_rule_or_fail(row)
        # A review done after its deadline still counts, and says it was late.
        late = row.status == "overdue" or now >= parse_time(req["deadline"])
        outcome = "ratified-late" if late else "ratified"
        self.log.append_batch(
            [
                Entry.create(
                    "authority.review/v1",
                    time=now,
                    principal="custodes",
                    body={
                        "grant_id": grant_id,
                        "request_id": row.id,
                        "outcome": outcome,
                        "deadline": req["deadline"],
                        "approvals": [
                            {"principal": p, "organisation": o} for p, o in status.counted
                        ],
                        "notify": self._notified(rule.notify, Notify(kinds=("overseer",))),
                    },
                )
            ]
        )
        with self.engine.begin() as conn:
            conn.execute(
                authority_grants.update()
                .where(authority_grants.c.id == grant_id)
                .values(review_status="ratified")
            )
            conn.execute(
                authority_requests.update()
                .where(authority_requests.c.id == row.id)
                .values(status=outcome, decided_at=now)
            )
        self._index(self.grant(grant_id))

    def sweep(self) -> list[str]:
        """Mark break-glass reviews past their deadline overdue (logged). Returns grant ids."""
        if self._constitution is None:
            return []
        now = self.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(authority_grants).where(
                    (authority_grants.c.review_status == "pending")
                    & (authority_grants.c.review_deadline <= now)
                )
            ).all()
        done = []
        for row in rows:
            with self._lock:
                self.log.append_batch(
                    [
                        Entry.create(
                            "authority.review/v1",
                            time=now,
                            principal="custodes",
                            body={
                                "grant_id": row.id,
                                "request_id": row.review_request_id,
                                "outcome": "overdue",
                                "deadline": format_time(row.review_deadline),
                                "notify": self._notified(Notify(kinds=("overseer",))),
                            },
                        )
                    ]
                )
                with self.engine.begin() as conn:
                    conn.execute(
                        authority_grants.update()
                        .where(authority_grants.c.id == row.id)
                        .values(review_status="overdue")
                    )
                    conn.execute(
                        authority_requests.update()
                        .where(authority_requests.c.id == row.review_request_id)
                        .values(status="overdue")
                    )
                self._index(self.grant(row.id))
            done.append(row.id)
        return done

    # -- amendments ----------------------------------------------------------

    def propose_amendment(
        self, document: str, request: Mapping[str, Any], signature: str
    ) -> RequestRecord:
        """Propose version N+1, signed by the proposer; signers then approve it.

        Raises:
            ConstitutionError: the proposed document is invalid.
            InputError, ApprovalError, LogWriteError.
        """
        with self._lock:
            req, digest, proposer = self._check_signed(request, signature, kinds=("amendment",))
            new = read_constitution(document, name="proposed constitution")
            amendment = req.get("amendment")
            if not isinstance(amendment, Mapping) or amendment.get("digest") != new.digest:
                raise InputError(
                    "the request does not name the proposed document's digest",
                    where="request.amendment.digest",
                    expected=new.digest,
                    actual=repr(
                        amendment.get("digest") if isinstance(amendment, Mapping) else amendment
                    ),
                )
            if amendment.get("version") != new.version:
                raise InputError(
                    "the request names another version than the document",
                    where="request.amendment.version",
                    expected=str(new.version),
                )
            c = self.constitution
            if new.version != c.version + 1:
                raise InputError(
                    f"an amendment must be version {c.version + 1}",
                    where="version",
                    expected=str(c.version + 1),
                    actual=str(new.version),
                )
            acks = req.get("acknowledgements", [])
            if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
                raise InputError(
                    "acknowledgements must be a list of statement ids",
                    where="request.acknowledgements",
                )
            notify = {
                "organisations": sorted(o.id for o in c.organisations),
                "principals": sorted(set(c.amendment.signers) | set(new.amendment.signers)),
            }
            del proposer
            return self._record_request(req, digest, signature, notify=notify, payload=document)

    def _proposed(self, row: Any) -> Constitution | None:
        if row.kind != "amendment" or row.payload is None:
            return None
        try:
            return read_constitution(row.payload, name="proposed constitution")
        except ConstitutionError:
            return None

    def _amendment_decision(
        self, row: Any, approvals: Sequence[Any]
    ) -> tuple[Any, set[str], set[str]]:
        from custodes.authority._signing import approval_message

        c = self.constitution
        new = self._proposed(row)
        if new is None or row.constitution_version != c.version:
            return None, set(), set()
        now = self.clock.now()
        message = approval_message(row.digest)
        signed_old: set[str] = set()
        signed_new: set[str] = set()
        for a in approvals:
            if a.constitution_version != c.version or now - a.created_at >= _AMENDMENT_VALIDITY:
                continue
            sig = decode_signature(a.signature)
            p_old = c.principals_by_id.get(a.approver)
            p_new = new.principals_by_id.get(a.approver)
            if p_old and p_old.public_key and verify_signature(p_old.public_key, message, sig):
                signed_old.add(a.approver)
            if p_new and p_new.public_key and verify_signature(p_new.public_key, message, sig):
                signed_new.add(a.approver)
        req = json.loads(row.body)
        acks = [
            Acknowledgement(statement=s, signed_by=frozenset(signed_old | signed_new))
            for s in req.get("acknowledgements", [])
        ]
        history = self._history(c)
        decision = check_amendment(
            c,
            new,
            signed_old=signed_old,
            signed_new=signed_new,
            acknowledgements=acks,
            guards=self.guards,
            weakened=(
                self.effects.weakenings(c, new, history)
                if self.effects is not None
                else unmeasured(c, history)
            ),
            history=history,
        )
        return decision, signed_old, signed_new

    def _history(self, current: Constitution) -> list[Constitution]:
        """The adopted versions before ``current`` (their thresholds still hold: no ratchet
        down in steps)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(constitution_versions.c.version, constitution_versions.c.digest)
                .where(constitution_versions.c.version < current.version)
                .order_by(constitution_versions.c.version)
            ).all()
        out = []
        for row in rows:
            c = self._versions.get(row.digest)
            if c is None:
                with self.engine.connect() as conn:
                    text = conn.execute(
                        sa.select(constitution_versions.c.document).where(
                            constitution_versions.c.version == row.version
                        )
                    ).scalar_one()
                c = read_constitution(text, name=f"stored version {row.version}")
                self._versions[row.digest] = c
            out.append(c)
        return out

    def _maybe_adopt(self, row: Any, approvals: Sequence[Any]) -> None:
        decision, signed_old, signed_new = self._amendment_decision(row, approvals)
        if decision is None or not decision.allowed:
            return
        old = self.constitution
        new = self._proposed(row)
        assert new is not None
        now = self.clock.now()
        signers = sorted(signed_old | signed_new)
        req = json.loads(row.body)
        [appended] = self.log.append_batch(
            [
                Entry.create(
                    "constitution.amend/v1",
                    time=now,
                    principal="custodes",
                    body={
                        "version": new.version,
                        "digest": new.digest,
                        "previous_version": old.version,
                        "previous_digest": old.digest,
                        "request_id": row.id,
                        "signers": [
                            {
                                "principal": s,
                                "organisation": self._organisation_for(s, row),
                                "old": s in signed_old,
                                "new": s in signed_new,
                            }
                            for s in signers
                        ],
                        "entrenched_changed": list(decision.changed_clauses),
                        "acknowledgements": list(req.get("acknowledgements", [])),
                    },
                )
            ]
        )
        with self.engine.begin() as conn:
            conn.execute(
                constitution_versions.insert().values(
                    version=new.version,
                    digest=new.digest,
                    document=new.text,
                    adopted_at=now,
                    request_id=row.id,
                    log_index=appended.index,
                )
            )
            conn.execute(
                authority_requests.update()
                .where(authority_requests.c.id == row.id)
                .values(status="adopted", decided_at=now)
            )
            # Requests made under the old version can no longer be approved.
            conn.execute(
                authority_requests.update()
                .where(
                    (authority_requests.c.status == "pending")
                    & (authority_requests.c.constitution_version < new.version)
                )
                .values(status="superseded", decided_at=now)
            )
        self._activate(new)
        _log.warning("constitution version %d adopted", new.version)


_MAX_REQUEST_DEPTH = 8
_MAX_REQUEST_NODES = 2000


def _check_bounded(request: Mapping[str, Any]) -> None:
    """A signed request object is small and shallow: at most 8 levels and 2000 values, every
    string at most 4096 characters, every integer within I-JSON's range (RFC 7493 §2.2).

    Raises:
        InputError: it is not; ``where`` names the first value out of bounds.
    """
    todo: list[tuple[Any, str, int]] = [(request, "request", 0)]
    seen = 0
    while todo:
        value, where, depth = todo.pop()
        seen += 1
        if seen > _MAX_REQUEST_NODES:
            raise InputError(
                "the request object is too large",
                where="request",
                expected=f"at most {_MAX_REQUEST_NODES} values",
            )
        if depth > _MAX_REQUEST_DEPTH:
            raise InputError(
                "the request object is nested too deeply",
                where=where,
                expected=f"at most {_MAX_REQUEST_DEPTH} levels",
            )
        if isinstance(value, Mapping):
            todo.extend((v, f"{where}.{str(k)[:64]}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, str) and len(value) > 4096:
            raise InputError("field too long", where=where, expected="at most 4096 characters")
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not -(1 << 53) < value < (1 << 53)
        ):
            raise InputError(
                "integer out of range",
                where=where,
                expected="an integer within +-(2**53 - 1) (RFC 7493 §2.2)",
            )


def _status(rule: str, o: QuorumOutcome) -> RuleStatus:
    return RuleStatus(
        rule=rule, satisfied=o.satisfied, counted=o.counted, missing=o.missing, rejected=o.rejected
    )


def _grant_row(g: Grant, index: int) -> dict[str, Any]:
    return {
        "id": g.id,
        "request_id": g.request_id,
        "principal": g.principal,
        "capability": g.capability,
        "rule": g.rule,
        "resource": g.resource,
        "break_glass": g.break_glass,
        "granted_at": g.granted_at,
        "expires_at": g.expires_at,
        "revoked_at": g.revoked_at,
        "revoked_by": g.revoked_by,
        "revoke_reason": g.revoke_reason,
        "constitution_version": g.constitution_version,
        "approvals": json.dumps([list(a) for a in g.approvals]),
        "review_request_id": g.review_request_id,
        "review_deadline": g.review_deadline,
        "review_status": g.review_status,
        "log_index": index,
    }


def _grant_from_row(row: Any) -> Grant:
    return Grant(
        id=row.id,
        principal=row.principal,
        capability=row.capability,
        rule=row.rule,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        constitution_version=row.constitution_version,
        request_id=row.request_id,
        approvals=tuple((p, o) for p, o in json.loads(row.approvals)),
        break_glass=bool(row.break_glass),
        resource=row.resource,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        review_request_id=row.review_request_id,
        review_deadline=row.review_deadline,
        review_status=row.review_status,
    )
