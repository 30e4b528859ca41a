"""What the log's entries mean, checked from the log alone (plus the stored constitution texts).

A well-formed entry can still be a lie: a grant no quorum approved, an approval with a forged
signature, an amendment nobody signed, a model call under a grant that does not exist. The
:class:`EntryAuditor` reads entries in index order, keeps what earlier entries established (the
constitution in force, requests, approvals, grants, revocations) and checks each later entry
against it with the authority's own rules:

- ``constitution.adopt/v1``: the first entry of its kind, version 1, and the stored document
  of that version hashes to the entry's digest (a second adoption is a forgery).
- ``constitution.amend/v1``: follows the version in force; its request was logged and signed;
  each signer listed has a logged approval whose signature verifies under their key in the old
  or the new version as the entry says; the amendment rules of both versions, entrenchment by
  effect against every earlier version and the coalition floor pass, as the server decides
  (:func:`custodes.constitution.check_amendment` with the coalition's measurer and guard).
- ``authority.request/v1``: its digest is the request's; a signed request's signature verifies
  under the requester's key in the version it names, which is the version in force.
- ``authority.approval/v1`` / ``approval_renewal/v1``: of a logged request, over its digest,
  signed by the approver's key.
- ``authority.grant/v1``: of a logged grant request by the same principal for the same
  capability, under a rule of the version in force, no longer than the rule and the request
  allow, and its approvals meet the rule's quorum as :func:`custodes.authority.evaluate_quorum`
  decides over the logged approvals at the grant's time.
- ``authority.break_glass/v1``: signed by the principal, under a rule of the version in force
  that gives one of their roles that capability, no longer than the rule allows.
- ``authority.revocation/v1``: of a known grant, signed by the revoker.
- ``authority.review/v1``: of a logged review request; a ratification meets the review quorum.
- ``authority.withdrawal/v1``: of a logged grant, escrow-read or amendment request, by its
  requester, signed over the withdrawal's own digest; no approval, grant or adoption of that
  request may follow it.
- ``gateway.call_start/v1`` and ``gateway.call/v1`` of a call that reached a model: under a
  standing rule of the version in force, or a logged grant of that principal and capability
  that covered the call's time and was not revoked.

Entries that claim a principal must come from them (a request from its requester, an approval
from its approver); entries of custodes' own decisions name ``custodes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from custodes.authority import (
    ApprovalFacts,
    RequestFacts,
    approval_message,
    decode_signature,
    evaluate_quorum,
    renewal_message,
    request_digest,
    request_message,
    verify_signature,
)
from custodes.coalition import AmendmentEffects, CoalitionFloorGuard
from custodes.constitution import Acknowledgement, Constitution, check_amendment, read_constitution
from custodes.errors import ConstitutionError, InputError
from custodes.log import Entry, parse_time

__all__ = ["EntryAuditor", "stored_documents"]

# Outcomes of gateway.call/v1 that say the call reached a model: only these need a grant
# behind them; a refused call claims nothing happened.
_CALLED = frozenset({"answered", "cut", "upstream_error", "abandoned"})


def _not_withdrawn(request: _Request) -> None:
    """Raises _Problem if ``request`` was withdrawn: nothing may count towards it since."""
    if request.withdrawn is not None:
        raise _Problem(f"request {request.id} was withdrawn at index {request.withdrawn}")


class _Problem(Exception):
    """One thing an entry claims that the log does not back.

    Raised by the per-type checks and turned into the report line by
    :meth:`EntryAuditor.check_entry`, so no check can end the audit of the entries after it.
    """


@dataclass
class _Request:
    """An ``authority.request/v1`` the log holds, and the approvals logged for it since.

    Attributes:
        id: the request id (the first 16 hex digits of ``digest``).
        digest: the request's digest, which approvals sign.
        request: the request body as logged.
        requester: who asked (the entry's principal).
        version: the constitution version in force when it was logged.
        index: the entry's log index.
        approvals: the latest logged approval of each approver (a renewal replaces one).
        withdrawn: the log index of its withdrawal, if it was withdrawn.
    """

    id: str
    digest: str
    request: Mapping[str, Any]
    requester: str
    version: int
    index: int
    approvals: dict[str, ApprovalFacts] = field(default_factory=dict)  # by approver
    withdrawn: int | None = None


@dataclass
class _Grant:
    """A grant (``authority.grant/v1``) or break-glass use the log holds.

    Attributes:
        id: the grant id (``bg-...`` for a break-glass use).
        principal: who holds it.
        capability: what it gives.
        granted_at: when it starts.
        expires_at: when it ends (exclusive).
        index: the entry's log index.
        revoked_at: the time of the first logged revocation, if any.
    """

    id: str
    principal: str
    capability: str
    granted_at: datetime
    expires_at: datetime
    index: int
    revoked_at: datetime | None = None


class EntryAuditor:
    """Checks the meaning of log entries, in index order (see the module docstring).

    Args:
        documents: the stored constitution texts by version (``constitution_versions``);
            a version whose text is missing or does not match its logged digest is reported
            where it is adopted.
    """

    def __init__(self, documents: Mapping[int, str]) -> None:
        self.documents = dict(documents)
        self.in_force: Constitution | None = None
        self.history: list[Constitution] = []  # the versions before the one in force
        self._effects = AmendmentEffects()
        self.requests: dict[str, _Request] = {}
        self.grants: dict[str, _Grant] = {}
        self._checks: dict[str, Callable[[Entry, int], None]] = {
            "constitution.adopt/v1": self._adopt,
            "constitution.amend/v1": self._amend,
            "authority.request/v1": self._request,
            "authority.approval/v1": self._approval,
            "authority.approval_renewal/v1": self._renewal,
            "authority.grant/v1": self._grant,
            "authority.break_glass/v1": self._break_glass,
            "authority.revocation/v1": self._revocation,
            "authority.review/v1": self._review,
            "authority.withdrawal/v1": self._withdrawal,
            "gateway.call_start/v1": self._call,
            "gateway.call/v1": self._call,
        }

    def check(self, index: int, data: bytes) -> str | None:
        """The problem with entry ``index`` (its canonical bytes ``data``), or None.

        Call for every entry in index order; a problem is reported and the entry's claims are
        not believed by later checks.

        Args:
            index: the entry's log index.
            data: its canonical JSON bytes, as the log stores them.

        Returns:
            One line naming the entry type and what it claims that the log does not back, or
            None when the entry checks out (or is of a type this audit does not read, or is
            malformed: well-formedness is reported by the log's own form check).
        """
        try:
            entry = Entry.from_json(data)
        except InputError:
            return None  # well-formedness is the form check's to report
        return self.check_entry(index, entry)

    def check_entry(self, index: int, entry: Entry) -> str | None:
        """:meth:`check` for an entry already parsed.

        Returns:
            The problem line, or None (see :meth:`check`).
        """
        check = self._checks.get(entry.type)
        if check is None:
            return None
        try:
            check(entry, index)
        except _Problem as exc:
            return f"{entry.type}: {exc}"
        return None

    # -- the constitution ----------------------------------------------------------------

    def _document(self, version: int, digest: str) -> Constitution:
        """The stored constitution ``version``, checked against its logged ``digest``.

        Raises:
            _Problem: no stored text, a text the reader refuses, or one whose digest or
                version is not the logged one.
        """
        text = self.documents.get(version)
        if text is None:
            raise _Problem(
                f"no stored document of constitution version {version}: what it adopted "
                "cannot be checked"
            )
        try:
            c = read_constitution(text, name=f"stored version {version}")
        except ConstitutionError as exc:
            raise _Problem(f"the stored constitution version {version} is refused: {exc}") from exc
        if c.digest != digest or c.version != version:
            raise _Problem(
                f"the stored constitution version {version} has digest {c.digest}, not the "
                f"logged {digest}: the stored text or the entry was altered"
            )
        return c

    def _by_custodes(self, entry: Entry) -> None:
        """Raises _Problem unless custodes itself made ``entry`` (its own decisions only)."""
        if entry.principal != "custodes":
            raise _Problem(f"names {entry.principal!r}; only custodes itself records this")

    def _adopt(self, entry: Entry, index: int) -> None:
        """``constitution.adopt/v1``: the one first version, matching its stored text.

        Raises:
            _Problem: not by custodes, a second adoption, not version 1, or the stored text
                does not match.
        """
        self._by_custodes(entry)
        if self.in_force is not None:
            raise _Problem(
                f"a second first constitution (version {entry.body['version']}) after version "
                f"{self.in_force.version}: amendments are constitution.amend/v1"
            )
        if entry.body["version"] != 1:
            raise _Problem(f"the first constitution must be version 1, not {entry.body['version']}")
        self.in_force = self._document(1, entry.body["digest"])

    def _amend(self, entry: Entry, index: int) -> None:
        """``constitution.amend/v1``: a signed, logged amendment the rules allow.

        Raises:
            _Problem: it does not follow the version in force, has no logged amendment request
                for that document, lists a signer without a logged approval or whose signature
                fails under the key the entry says, or the amendment rules (entrenchment and
                the coalition floor) refuse it.
        """
        self._by_custodes(entry)
        body = entry.body
        old = self._constitution()
        if (body["previous_version"], body["previous_digest"]) != (old.version, old.digest):
            raise _Problem(
                f"amends version {body['previous_version']}, but version {old.version} "
                f"({old.digest[:12]}...) is in force"
            )
        request = self.requests.get(body["request_id"])
        if request is None or request.request.get("kind") != "amendment":
            raise _Problem(f"no logged amendment request {body['request_id']!r} before it")
        _not_withdrawn(request)
        proposed = request.request.get("amendment")
        if not isinstance(proposed, Mapping) or proposed.get("digest") != body["digest"]:
            raise _Problem(
                f"request {request.id} proposed another document, not digest {body['digest']}"
            )
        new = self._document(body["version"], body["digest"])
        message = approval_message(request.digest)
        signed_old: set[str] = set()
        signed_new: set[str] = set()
        for signer in body["signers"]:
            who = signer["principal"]
            approval = request.approvals.get(who)
            if approval is None:
                raise _Problem(f"lists {who} as a signer, but no approval of {who} was logged")
            sig = _signature(approval.signature)
            for flag, version, bucket in (("old", old, signed_old), ("new", new, signed_new)):
                if not signer[flag]:
                    continue
                p = version.principals_by_id.get(who)
                if p is None or p.public_key is None:
                    raise _Problem(f"{who} has no key in version {version.version}")
                if not verify_signature(p.public_key, message, sig):
                    raise _Problem(
                        f"{who}'s signature does not verify under their key in version "
                        f"{version.version}"
                    )
                bucket.add(who)
        acks = [
            Acknowledgement(statement=s, signed_by=frozenset(signed_old | signed_new))
            for s in body.get("acknowledgements", [])
        ]
        # The server's own decision: the coalition floor, and entrenchment by effect against
        # every version before (no ratchet down in steps).
        decision = check_amendment(
            old,
            new,
            signed_old=signed_old,
            signed_new=signed_new,
            acknowledgements=acks,
            guards=[CoalitionFloorGuard()],
            weakened=self._effects.weakenings(old, new, self.history),
            history=self.history,
        )
        if not decision.allowed:
            why = "; ".join(f"{d.rule}: {d.missing}" for d in decision.denials)
            raise _Problem(f"version {new.version} was not validly signed: {why}")
        self.history.append(old)
        self.in_force = new

    def _constitution(self) -> Constitution:
        """The version in force; raises _Problem if none was adopted yet."""
        if self.in_force is None:
            raise _Problem("no constitution was adopted before it")
        return self.in_force

    # -- requests and approvals ----------------------------------------------------------

    def _request(self, entry: Entry, index: int) -> None:
        """``authority.request/v1``: a request by its requester, signed, under the version in
        force, logged once.

        Raises:
            _Problem: the digest or id is not the request's, the entry's principal is not the
                requester, it names another version, its signature fails (or it is unsigned
                and not custodes' review of a break-glass use), or it is a replay.
        """
        body = entry.body
        req = body["request"]
        c = self._constitution()
        try:
            digest = request_digest(req)
        except InputError as exc:
            raise _Problem(exc.message) from exc
        if digest != body["digest"] or body["id"] != digest[:16]:
            raise _Problem(f"request {body['id']}: its digest is not its request's")
        requester = req.get("requester")
        if entry.principal != requester:
            raise _Problem(f"request {body['id']} by {requester!r} is logged as {entry.principal}")
        if req.get("constitution_version") != c.version:
            raise _Problem(
                f"request {body['id']} names constitution version "
                f"{req.get('constitution_version')}, but version {c.version} is in force"
            )
        if body["signature"] is None:
            # Only custodes makes unsigned requests: the review that follows a break-glass use.
            if req.get("kind") != "review" or f"bg-{req.get('break_glass')}" not in self.grants:
                raise _Problem(f"request {body['id']} is unsigned and reviews no break-glass use")
        else:
            self._signed_by(c, requester, request_message(digest), body["signature"], body["id"])
        if body["id"] in self.requests:
            raise _Problem(f"request {body['id']} was already logged: a replay")
        self.requests[body["id"]] = _Request(
            body["id"], digest, req, str(requester), c.version, index
        )

    def _signed_by(
        self, c: Constitution, who: Any, message: bytes, signature: str, what: str
    ) -> None:
        """Raises _Problem unless ``signature`` over ``message`` verifies under ``who``'s key
        in ``c`` (``what`` names the entry in the message)."""
        p = c.principals_by_id.get(who) if isinstance(who, str) else None
        if p is None or p.public_key is None:
            raise _Problem(f"{what}: {who!r} has no key in constitution version {c.version}")
        if not verify_signature(p.public_key, message, _signature(signature)):
            raise _Problem(f"{what}: the signature does not verify under {who}'s key")

    def _approval(self, entry: Entry, index: int) -> None:
        """``authority.approval/v1``: the approver's signature over a logged request.

        For an amendment, the approver's key in the proposed version counts too (a new member
        signs with the key the amendment gives them).

        Raises:
            _Problem: no such request, another digest, logged under someone else's name, or a
                signature that verifies under neither key.
        """
        body = entry.body
        request = self._logged_request(body["request_id"], body["digest"])
        approver = body["approver"]
        if entry.principal != approver:
            raise _Problem(f"an approval by {approver} is logged as {entry.principal}")
        c = self._constitution()
        keys = [self._key(c, approver)]
        if request.request.get("kind") == "amendment":
            keys.append(self._proposed_key(request, approver))
        sig = _signature(body["signature"])
        message = approval_message(request.digest)
        if not any(k is not None and verify_signature(k, message, sig) for k in keys):
            raise _Problem(
                f"{approver}'s signature over request {request.id} does not verify under their key"
            )
        request.approvals[approver] = ApprovalFacts(
            approver=approver,
            signature=body["signature"],
            at=entry.time,
            constitution_version=c.version,
        )

    def _renewal(self, entry: Entry, index: int) -> None:
        """``authority.approval_renewal/v1``: renews a logged approval, signed by its approver.

        Raises:
            _Problem: no such request or approval, or the renewal signature fails.
        """
        body = entry.body
        request = self._logged_request(body["request_id"], body["digest"])
        approver = body["approver"]
        old = request.approvals.get(approver)
        if old is None or old.signature != body["signature"]:
            raise _Problem(f"renews an approval of {approver} that was never logged")
        c = self._constitution()
        self._signed_by(
            c,
            approver,
            renewal_message(request.digest, body["renewed_at"]),
            body["renewal_signature"],
            f"renewal of {approver}'s approval",
        )
        request.approvals[approver] = ApprovalFacts(
            approver=approver,
            signature=old.signature,
            at=entry.time,
            constitution_version=c.version,
        )

    def _logged_request(self, request_id: str, digest: str) -> _Request:
        """The logged request ``request_id``; raises _Problem if none, or of another digest."""
        request = self.requests.get(request_id)
        if request is None:
            raise _Problem(f"no request {request_id!r} was logged before it")
        if request.digest != digest:
            raise _Problem(f"names digest {digest[:12]}..., not request {request_id}'s")
        _not_withdrawn(request)
        return request

    def _key(self, c: Constitution, who: str) -> bytes | None:
        """``who``'s public key in ``c``, or None."""
        p = c.principals_by_id.get(who)
        return p.public_key if p is not None else None

    def _proposed_key(self, request: _Request, who: str) -> bytes | None:
        """``who``'s key in the version an amendment request proposes, if its stored text is
        the proposed one; else None (the approval then has to verify under the current key)."""
        proposed = request.request.get("amendment")
        version = self._constitution().version + 1
        text = self.documents.get(version)
        if not isinstance(proposed, Mapping) or text is None:
            return None
        try:
            new = read_constitution(text, name=f"stored version {version}")
        except ConstitutionError:
            return None
        return self._key(new, who) if new.digest == proposed.get("digest") else None

    # -- grants ----------------------------------------------------------------------------

    def _grant(self, entry: Entry, index: int) -> None:
        """``authority.grant/v1``: what a logged request asked, under a rule in force, with a
        quorum of logged approvals at the grant's time.

        Raises:
            _Problem: no logged grant request, another principal or capability, another
                version, no such rule, longer than the rule or request allows, a quorum not
                met, approvals named that do not count, or a replayed id.
        """
        body = entry.body
        c = self._constitution()
        request = self.requests.get(body["request_id"] or "")
        if request is None or request.request.get("kind") not in {"grant", "escrow-read"}:
            raise _Problem(f"grant {body['id']} has no logged grant request before it")
        _not_withdrawn(request)
        req = request.request
        if (body["principal"], body["capability"]) != (request.requester, req.get("capability")):
            raise _Problem(
                f"grant {body['id']} gives {body['capability']} to {body['principal']}, but "
                f"request {request.id} asked for {req.get('capability')} for {request.requester}"
            )
        if body["constitution_version"] != c.version or request.version != c.version:
            raise _Problem(f"grant {body['id']} is not under version {c.version}, in force")
        rule = c.access_rules_by_id.get(body["rule"])
        if rule is None or rule.capability != body["capability"]:
            raise _Problem(f"grant {body['id']}: no rule {body['rule']!r} gives that capability")
        granted = parse_time(body["granted_at"])
        expires = parse_time(body["expires_at"])
        asked = req.get("duration_seconds")
        if expires - granted > rule.max_duration or (
            isinstance(asked, int) and expires - granted > timedelta(seconds=asked)
        ):
            raise _Problem(f"grant {body['id']} runs longer than its rule or request allows")
        outcome = evaluate_quorum(
            c,
            approver_roles=rule.approver_roles,
            quorum=rule.quorum,
            validity=rule.approval_validity,
            request=RequestFacts(request.digest, request.requester, request.version),
            approvals=list(request.approvals.values()),
            now=entry.time,
        )
        if not outcome.satisfied:
            raise _Problem(
                f"grant {body['id']}: the logged approvals of request {request.id} do not meet "
                f"rule {rule.id}'s quorum: " + "; ".join(outcome.missing)
            )
        claimed = {(a["principal"], a["organisation"]) for a in body["approvals"]}
        if not claimed <= set(outcome.counted):
            extra = sorted(p for p, _ in claimed - set(outcome.counted))
            raise _Problem(
                f"grant {body['id']} names approvals that do not count: {', '.join(extra)}"
            )
        self._add_grant(body["id"], body["principal"], body["capability"], granted, expires, index)

    def _add_grant(
        self,
        grant_id: str,
        principal: str,
        capability: str,
        start: datetime,
        end: datetime,
        index: int,
    ) -> None:
        """Record a grant; raises _Problem if its id was already logged (a replay)."""
        if grant_id in self.grants:
            raise _Problem(f"grant {grant_id} was already logged: a replay")
        self.grants[grant_id] = _Grant(grant_id, principal, capability, start, end, index)

    def _break_glass(self, entry: Entry, index: int) -> None:
        """``authority.break_glass/v1``: signed by its principal, under a break-glass rule that
        gives one of their roles the capability, no longer than the rule allows.

        Raises:
            _Problem: logged under someone else's name, a signature that fails, no such rule
                for their roles, too long, or a replayed id.
        """
        body = entry.body
        c = self._constitution()
        principal = body["principal"]
        if entry.principal != principal:
            raise _Problem(f"a break-glass use by {principal} is logged as {entry.principal}")
        self._signed_by(
            c, principal, request_message(body["digest"]), body["signature"], body["grant_id"]
        )
        rule = c.break_glass_by_id.get(body["rule"])
        p = c.principals_by_id[principal]
        if rule is None or rule.capability != body["capability"] or not (p.roles & rule.roles):
            raise _Problem(
                f"{principal} may not break glass for {body['capability']} under rule "
                f"{body['rule']!r} of version {c.version}"
            )
        granted = parse_time(body["granted_at"])
        expires = parse_time(body["expires_at"])
        if expires - granted > rule.max_duration:
            raise _Problem(f"{body['grant_id']} runs longer than rule {rule.id} allows")
        self._add_grant(body["grant_id"], principal, body["capability"], granted, expires, index)

    def _revocation(self, entry: Entry, index: int) -> None:
        """``authority.revocation/v1``: of a known grant, signed by the revoker; the first
        revocation's time is when the grant stopped covering calls.

        Raises:
            _Problem: no such grant, or the revoker's signature fails.
        """
        body = entry.body
        grant = self.grants.get(body["grant_id"])
        if grant is None:
            raise _Problem(f"revokes {body['grant_id']!r}, which was never granted")
        self._signed_by(
            self._constitution(),
            body["by"],
            request_message(body["digest"]),
            body["signature"],
            f"revocation of {grant.id}",
        )
        grant.revoked_at = grant.revoked_at or entry.time

    def _withdrawal(self, entry: Entry, index: int) -> None:
        """``authority.withdrawal/v1``: a logged request withdrawn by its requester, who signed
        the withdrawal logged with it.

        Raises:
            _Problem: no such request, of a kind nobody withdraws, withdrawn twice, not by its
                requester, or the withdrawal's digest or signature does not check.
        """
        body = entry.body
        request = self.requests.get(body["request_id"])
        if request is None:
            raise _Problem(f"withdraws {body['request_id']!r}, which was never logged")
        if request.request.get("kind") not in {"grant", "escrow-read", "amendment"}:
            raise _Problem(f"withdraws request {request.id}, a {request.request.get('kind')}")
        _not_withdrawn(request)
        withdrawal = body["withdrawal"]
        if (
            entry.principal != request.requester
            or body["by"] != request.requester
            or withdrawal.get("requester") != request.requester
            or withdrawal.get("request_id") != request.id
            or withdrawal.get("kind") != "withdrawal"
        ):
            raise _Problem(
                f"request {request.id} of {request.requester} is withdrawn by "
                f"{entry.principal}: only its requester withdraws it"
            )
        try:
            digest = request_digest(withdrawal)
        except InputError as exc:
            raise _Problem(exc.message) from exc
        if digest != body["digest"]:
            raise _Problem(f"the withdrawal of {request.id}: its digest is not its object's")
        self._signed_by(
            self._constitution(),
            request.requester,
            request_message(digest),
            body["signature"],
            f"withdrawal of {request.id}",
        )
        request.withdrawn = index

    def _review(self, entry: Entry, index: int) -> None:
        """``authority.review/v1``: of a logged review request; a ratification needs the
        break-glass rule's review quorum.

        Raises:
            _Problem: not by custodes, no review request or grant, no such rule, or a
                ratification without the quorum.
        """
        self._by_custodes(entry)
        body = entry.body
        request = self.requests.get(body["request_id"])
        grant = self.grants.get(body["grant_id"])
        if request is None or request.request.get("kind") != "review" or grant is None:
            raise _Problem(f"reviews {body['grant_id']!r} without a logged review request")
        if body["outcome"] != "ratified":
            return
        c = self._constitution()
        rule = c.break_glass_by_id.get(str(request.request.get("rule")))
        if rule is None:
            raise _Problem(f"no break-glass rule {request.request.get('rule')!r} in force")
        outcome = evaluate_quorum(
            c,
            approver_roles=rule.review.approver_roles,
            quorum=rule.review.quorum,
            validity=timedelta(days=36500),  # a review's approvals last until it is done
            request=RequestFacts(request.digest, request.requester, request.version),
            approvals=list(request.approvals.values()),
            now=entry.time,
        )
        if not outcome.satisfied:
            raise _Problem(
                f"ratifies {grant.id} without the review quorum: " + "; ".join(outcome.missing)
            )

    # -- model calls -----------------------------------------------------------------------

    def _call(self, entry: Entry, index: int) -> None:
        """``gateway.call_start/v1`` / ``gateway.call/v1`` of a call that reached a model: a
        standing rule for the principal's roles, or their unrevoked grant covering its time.

        Raises:
            _Problem: no grant named, no such standing rule for them, a grant never logged, of
                someone else or another capability, or one that did not cover the call.
        """
        body = entry.body
        if entry.type == "gateway.call/v1" and body["outcome"] not in _CALLED:
            return  # refused: it claims nothing happened
        grant_id, capability = body.get("grant"), body.get("capability")
        if not isinstance(grant_id, str) or not isinstance(capability, str):
            raise _Problem(f"a call that reached model {body.get('model')!r} names no grant")
        c = self._constitution()
        if grant_id.startswith("standing:"):
            rule = c.access_rules_by_id.get(grant_id.removeprefix("standing:"))
            p = c.principals_by_id.get(entry.principal)
            if (
                rule is None
                or rule.quorum.approvals != 0
                or rule.capability != capability
                or p is None
                or not (p.roles & rule.requester_roles)
            ):
                raise _Problem(
                    f"{entry.principal} has no standing permission {grant_id!r} for "
                    f"{capability} in version {c.version}"
                )
            return
        grant = self.grants.get(grant_id)
        if grant is None:
            raise _Problem(f"the call names grant {grant_id!r}, which was never granted")
        if (grant.principal, grant.capability) != (entry.principal, capability):
            raise _Problem(
                f"grant {grant_id} is {grant.principal}'s for {grant.capability}, not "
                f"{entry.principal}'s for {capability}"
            )
        if not grant.granted_at <= entry.time < grant.expires_at or (
            grant.revoked_at is not None and entry.time >= grant.revoked_at
        ):
            raise _Problem(f"grant {grant_id} did not cover the call's time")


def _signature(text: Any) -> bytes:
    """The signature's bytes; an undecodable one is empty, so it fails verification as a
    forged one would (a malformed entry must not stop the audit)."""
    try:
        return decode_signature(text if isinstance(text, str) else "")
    except InputError:
        return b""


def stored_documents(engine: Engine) -> dict[int, str]:
    """Every stored constitution text by version.

    Args:
        engine: the server's database.

    Returns:
        ``constitution_versions`` as version -> document; empty if the database has no such
        table (a log without a constitution: adoptions are then reported as unverifiable).
    """
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version, document FROM constitution_versions")).all()
    except SQLAlchemyError:
        return {}
    return {int(r.version): str(r.document) for r in rows}
