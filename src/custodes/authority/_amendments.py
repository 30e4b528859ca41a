"""The constitution's versions: the first adoption, amendments proposed and signed by thresholds
of the old and the new signers, and the adoption that follows.

An amendment is decided by :func:`custodes.constitution.check_amendment` over the signatures that
verify under each version's keys, the guards (e.g. the coalition floor), what the amendment does
to entrenched goals, and every earlier version (their thresholds still hold, so nothing ratchets
down in small steps). Adoption supersedes every request pending under the old version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from custodes.authority import _decide
from custodes.authority._model import RuleStatus
from custodes.authority._requests import RequestBook
from custodes.authority._signed import check_signed
from custodes.authority._signing import approval_message, decode_signature, verify_signature
from custodes.authority._state import AuthorityState
from custodes.authority._tables import authority_requests
from custodes.constitution import (
    Acknowledgement,
    AmendmentDecision,
    AmendmentGuard,
    Constitution,
    EffectMeasurer,
    Principal,
    adopted_versions,
    check_amendment,
    constitution_versions,
    newest_document,
    newest_version,
    read_constitution,
    stored_document,
    unmeasured,
)
from custodes.errors import ApprovalError, ConstitutionError, InputError, NotFoundError

__all__ = ["AMENDMENT_VALIDITY", "Amendments"]

_log = logging.getLogger(__name__)
# Long enough for signers in several organisations and time zones; short enough that a
# signature given for one situation is not used in a much later one.
AMENDMENT_VALIDITY = timedelta(days=7)


class Amendments:
    """The constitution's adoption and amendment (the ``amendment`` request kind).

    Args:
        state: the authority's shared state.
        requests: the stored requests (a proposal is one).
        guards: further amendment checks; the list is kept, so a component may add to it.
        effects: measures what an amendment does to entrenched goals; without one, every
            entrenched goal counts as weakened (fail closed).
    """

    def __init__(
        self,
        state: AuthorityState,
        requests: RequestBook,
        *,
        guards: list[AmendmentGuard],
        effects: EffectMeasurer | None,
    ) -> None:
        self._state = state
        self._requests = requests
        self.guards = guards
        self.effects = effects
        self._versions: dict[str, Constitution] = {}

    def start(self, initial: Constitution | None, *, source: str) -> None:
        """Activate the database's newest version, or adopt ``initial`` as version 1.

        Raises:
            ConstitutionError: ``initial`` is not version 1, or a stored version is unreadable.
            LogWriteError: the adoption could not be logged (nothing is adopted).
        """
        stored = newest_document(self._state.engine)
        if stored is not None:
            # The database wins over any file: the file may be older than adopted amendments.
            self._state.activate(
                read_constitution(stored.document, name=f"stored version {stored.version}")
            )
        elif initial is not None:
            self._adopt_first(initial, source=source)

    def refresh(self) -> Constitution | None:
        """Activate the newest stored version when another process (a replica) adopted a newer
        one than the active; the caller holds the state's lock.

        Returns:
            The version now in force, or ``None`` when nothing changed.

        Raises:
            ConstitutionError: the newer version does not read or compile here (a replica of
                another release): nothing is in force any more, so every authorization is
                denied until it does (fail closed, rather than deciding under a superseded
                version).
        """
        newest = newest_version(self._state.engine)
        active = self._state.loaded
        if newest is None or (active is not None and newest <= active.version):
            return None
        stored = newest_document(self._state.engine)
        if stored is None:  # pragma: no cover - a version is never deleted
            return None
        try:
            c = read_constitution(stored.document, name=f"stored version {stored.version}")
            self._state.activate(c)
        except ConstitutionError:
            self._state.deactivate()
            raise
        _log.warning("constitution version %d, adopted by another process, is in force", c.version)
        return c

    def _adopt_first(self, c: Constitution, *, source: str) -> None:
        # A deployment starts at version 1, so the log's first adoption is the whole history.
        if c.version != 1:
            raise ConstitutionError(
                f"the first constitution of a deployment must be version 1, not {c.version}",
                source=source,
            )
        now = self._state.clock.now()
        index = self._state.append(
            "constitution.adopt/v1",
            time=now,
            principal="custodes",
            body={"version": c.version, "digest": c.digest, "name": c.name, "source": source},
        )
        with self._state.engine.begin() as conn:
            _store_version(conn, c, adopted_at=now, request_id=None, log_index=index)
        self._state.activate(c)

    def propose(self, document: str, request: Mapping[str, Any], signature: str) -> str:
        """Propose version N+1, signed by the proposer; signers then approve it.

        Returns:
            The proposal's request id.

        Raises:
            ConstitutionError: the proposed document is invalid.
            InputError: the request is malformed, names another digest or version than the
                document, or the document is not the next version.
            ApprovalError: the proposer's signature does not verify.
            LogWriteError: the proposal could not be logged (it is not made).
        """
        with self._state.lock:
            signed = check_signed(self._state, request, signature, kinds=("amendment",))
            req = signed.request
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
            # The signed request names the digest and version, so signers sign the document itself.
            if amendment.get("version") != new.version:
                raise InputError(
                    "the request names another version than the document",
                    where="request.amendment.version",
                    expected=str(new.version),
                )
            c = self._state.constitution
            # Versions are consecutive: no version can be skipped or adopted twice.
            if new.version != c.version + 1:
                raise InputError(
                    f"an amendment must be version {c.version + 1}",
                    where="version",
                    expected=str(c.version + 1),
                    actual=str(new.version),
                )
            acks = req.get("acknowledgements", [])
            # Acknowledgements are signed statements (e.g. that a coalition floor drops).
            if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
                raise InputError(
                    "acknowledgements must be a list of statement ids",
                    where="request.acknowledgements",
                )
            # Everyone, and both versions' signers by name: an amendment is never quiet.
            notify = {
                "organisations": sorted(o.id for o in c.organisations),
                "principals": sorted(set(c.amendment.signers) | set(new.amendment.signers)),
            }
            return self._requests.record(
                req, signed.digest, signature, notify=notify, payload=document
            )

    # -- RequestRules ----------------------------------------------------------------------

    def statuses(self, row: Any, approvals: Sequence[Any]) -> list[RuleStatus]:
        """The amendment's one status: allowed, or each denial of the amendment check."""
        decision, _, _ = self._decision(row, approvals)
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

    def approval_validity(self, row: Any) -> timedelta:
        """A signature on an amendment counts for seven days."""
        return AMENDMENT_VALIDITY

    def approver_keys(self, row: Any, approver_id: str) -> list[bytes]:
        """The keys ``approver_id`` signs with as a signer of the current version, of the
        proposed one, or both.

        Raises:
            ApprovalError: it is a signer (with a key) of neither version.
        """
        c = self._state.constitution
        new = self._proposed(row)
        keys = []
        p = c.principals_by_id.get(approver_id)
        if p is not None and p.public_key and _decide.may_sign_amendment(c, approver_id):
            keys.append(p.public_key)
        # A signer of the new version signs with the new version's key (a rotated key works).
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

    def signer(self, row: Any, principal_id: str) -> Principal | None:
        """The principal in the current version, else in the proposed one (a new signer)."""
        p = self._state.constitution.principals_by_id.get(principal_id)
        if p is None:
            new = self._proposed(row)
            p = new.principals_by_id.get(principal_id) if new is not None else None
        return p

    def settle(self, row: Any, approvals: Sequence[Any]) -> None:
        """Adopt the proposed version once the amendment check allows it.

        Raises:
            LogWriteError: the adoption could not be logged (nothing is adopted).
        """
        decision, signed_old, signed_new = self._decision(row, approvals)
        new = self._proposed(row)
        if decision is None or not decision.allowed or new is None:
            return
        old = self._state.constitution
        now = self._state.clock.now()
        req = json.loads(row.body)
        signers = []
        for s in sorted(signed_old | signed_new):
            who = self.signer(row, s)
            if who is None:
                raise NotFoundError(f"unknown principal {s!r}", where="approver")
            signers.append(
                {
                    "principal": s,
                    "organisation": who.organisation,
                    "old": s in signed_old,
                    "new": s in signed_new,
                }
            )
        index = self._state.append(
            "constitution.amend/v1",
            time=now,
            principal="custodes",
            body={
                "version": new.version,
                "digest": new.digest,
                "previous_version": old.version,
                "previous_digest": old.digest,
                "request_id": row.id,
                "signers": signers,
                "entrenched_changed": list(decision.changed_clauses),
                "acknowledgements": list(req.get("acknowledgements", [])),
            },
        )
        with self._state.engine.begin() as conn:
            _store_version(conn, new, adopted_at=now, request_id=row.id, log_index=index)
            self._requests.set_status(conn, row.id, "adopted", decided_at=now)
            # Requests made under the old version can no longer be approved.
            conn.execute(
                authority_requests.update()
                .where(
                    (authority_requests.c.status == "pending")
                    & (authority_requests.c.constitution_version < new.version)
                )
                .values(status="superseded", decided_at=now)
            )
        # Activated only once its entry is durable and the row is stored (invariant 1).
        self._state.activate(new)
        _log.warning("constitution version %d adopted", new.version)

    # -- the decision ----------------------------------------------------------------------

    def _proposed(self, row: Any) -> Constitution | None:
        if row.kind != "amendment" or row.payload is None:
            return None
        try:
            return read_constitution(row.payload, name="proposed constitution")
        except ConstitutionError:
            # Checked when proposed; unreadable now only if the reader became stricter, and
            # then the proposal can gather nothing.
            return None

    def _decision(
        self, row: Any, approvals: Sequence[Any]
    ) -> tuple[AmendmentDecision | None, set[str], set[str]]:
        """The amendment check over the unexpired signatures, and who signed as a signer of
        the old version and of the new (``None`` if the proposal is stale or unreadable)."""
        c = self._state.constitution
        new = self._proposed(row)
        if new is None or row.constitution_version != c.version:
            return None, set(), set()
        now = self._state.clock.now()
        message = approval_message(row.digest)
        signed_old: set[str] = set()
        signed_new: set[str] = set()
        for a in approvals:
            if a.constitution_version != c.version or now - a.created_at >= AMENDMENT_VALIDITY:
                continue
            sig = decode_signature(a.signature)
            p_old = c.principals_by_id.get(a.approver)
            p_new = new.principals_by_id.get(a.approver)
            # Each version's signers are counted by that version's key: a key rotated by the
            # amendment signs as new, never as old.
            if p_old and p_old.public_key and verify_signature(p_old.public_key, message, sig):
                signed_old.add(a.approver)
            if p_new and p_new.public_key and verify_signature(p_new.public_key, message, sig):
                signed_new.add(a.approver)
        req = json.loads(row.body)
        acks = [
            Acknowledgement(statement=s, signed_by=frozenset(signed_old | signed_new))
            for s in req.get("acknowledgements", [])
        ]
        # Every earlier version's thresholds apply: lowering them in small steps gains nothing.
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
                # Without a measurer every entrenched goal counts as weakened: fail closed.
                if self.effects is not None
                else unmeasured(c, history)
            ),
            history=history,
        )
        return decision, signed_old, signed_new

    def _history(self, current: Constitution) -> list[Constitution]:
        """The adopted versions before ``current`` (their thresholds still hold: no ratchet
        down in steps), each read once and kept by digest."""
        out = []
        for v in adopted_versions(self._state.engine):
            if v.version >= current.version:
                break
            c = self._versions.get(v.digest)
            if c is None:
                text = stored_document(self._state.engine, v.version)
                c = read_constitution(text, name=f"stored version {v.version}")
                self._versions[v.digest] = c
            out.append(c)
        return out


def _store_version(
    conn: sa.Connection,
    c: Constitution,
    *,
    adopted_at: datetime,
    request_id: str | None,
    log_index: int,
) -> None:
    # The stored text is the document exactly as adopted: its digest is what the log names.
    conn.execute(
        constitution_versions.insert().values(
            version=c.version,
            digest=c.digest,
            document=c.text,
            adopted_at=adopted_at,
            request_id=request_id,
            log_index=log_index,
        )
    )
