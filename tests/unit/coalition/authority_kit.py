"""A throwaway deployment for checking the coalition analysis against the real authority.

:class:`Deployment` writes a constitution from a plain document, giving every principal marked
``key: true`` a fresh Ed25519 key whose private half the test holds. :class:`Driver` then acts
as a coalition of persons would, through the real :class:`~custodes.authority.Authority` on a
throwaway SQLite store and log: it requests, approves, breaks glass, proposes and signs
amendments, and reports which goals the coalition actually reached. It uses the coalition
package only as the server does (the floor guard and the measurer of entrenchment by effect);
otherwise it tries every move the authority offers and watches what happens.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from custodes.authority import Authority, SigningKey, new_request, sign_approval, sign_request
from custodes.clock import FrozenClock
from custodes.coalition._service import start_coalition
from custodes.constitution import Constitution, encode_public_key, read_constitution
from custodes.errors import Error
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine, migrate


class Deployment:
    """A constitution and the private keys of its principals (``key: true`` in ``doc``)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = copy.deepcopy(doc)
        self.keys: dict[str, SigningKey] = {}
        for p in self.doc["principals"]:
            if p.pop("key", False):
                key = SigningKey.generate()
                self.keys[p["id"]] = key
                p["key"] = encode_public_key(key.public_bytes)
        self.text = json.dumps(self.doc)
        self.constitution: Constitution = read_constitution(self.text, name="generated")

    def identities(self, persons: Iterable[str]) -> list[str]:
        """Every principal of ``persons``."""
        wanted = set(persons)
        return [p.id for p in self.constitution.principals if p.person_id in wanted]


@contextmanager
def running(deployment: Deployment, where: Path, clock: FrozenClock) -> Iterator[Authority]:
    """A real authority on a fresh SQLite store and log in ``where``, wired as the server wires
    it (``start_coalition``: the floor guard, and amendments measured by their effect on the
    game)."""
    where.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(f"sqlite:///{where / 'custodes.db'}")
    migrate(engine)
    log = TransparencyLog(engine, NoteSigner.generate("test.custodes/log"), clock=clock)
    log.start()
    authority = Authority(engine, log, clock=clock)
    authority.start(read_constitution(deployment.text, name="generated"), source="test")
    # As the server does: the floor guard, and entrenchment by effect measured on the game.
    start_coalition(authority)
    try:
        yield authority
    finally:
        log.close()
        engine.dispose()


def _notices(log: TransparencyLog, start: int) -> list[dict[str, Any]]:
    out = []
    for _, data in log.entries(start, log.size()):
        body = json.loads(data).get("body", {})
        if isinstance(body, dict) and isinstance(body.get("notify"), dict):
            out.append(body["notify"])
    return out


class Driver:
    """A coalition (its identities and their keys) acting on a real authority."""

    def __init__(
        self, authority: Authority, keys: dict[str, SigningKey], identities: list[str]
    ) -> None:
        self.authority = authority
        self.keys = keys
        self.identities = identities

    @property
    def c(self) -> Constitution:
        return self.authority.constitution

    def _signed(self, kind: str, who: str, **fields: Any) -> tuple[dict[str, Any], str]:
        req = new_request(
            kind,
            constitution_version=self.c.version,
            requester=who,
            created=self.authority.clock.now(),
            **fields,
        )
        return req, sign_request(req, self.keys[who])

    def _approve_all(self, record: Any) -> Any:
        for who in self.identities:
            if who not in self.keys:
                continue
            _, signature = sign_approval(record.request, self.keys[who])
            try:
                record = self.authority.approve(record.id, who, signature)
            except Error:
                continue
        return record

    def _tells_outsiders(self, notices: list[dict[str, Any]]) -> bool:
        c = self.c
        orgs = set()
        for n in notices:
            orgs.update(n.get("organisations", []))
            orgs.update(c.principals_by_id[p].organisation for p in n.get("principals", []))
        return any(c.organisations_by_id[o].kind != "developer" for o in orgs)

    def use(self, capability: str) -> tuple[bool, bool]:
        """(reached, reached with nobody outside the developers told)."""
        reached = quiet = False
        c = self.c
        for who in self.identities:
            try:
                grant = self.authority.authorize(who, capability)
            except Error:
                continue
            if grant.id.startswith("standing:"):
                return True, True
        for rule in c.rules_for(capability):
            if rule.quorum.approvals == 0:
                continue
            for who in self.identities:
                if who not in self.keys:
                    continue
                # The longest the rule allows, and a purpose only where one is required: the
                # request then fits the fewest other rules (each of which it would notify).
                for purpose in ("", "incident triage"):
                    if rule.purpose_required and not purpose:
                        continue
                    start = self.authority.log.size()
                    req, sig = self._signed(
                        "grant",
                        who,
                        capability=capability,
                        purpose=purpose,
                        duration_seconds=int(rule.max_duration.total_seconds()),
                    )
                    try:
                        record = self.authority.submit_request(req, sig)
                    except Error:
                        continue
                    record = self._approve_all(record)
                    if record.status == "granted":
                        reached = True
                        if not self._tells_outsiders(_notices(self.authority.log, start)):
                            quiet = True
                    if quiet:
                        return True, True
        for bg in c.break_glass:
            if bg.capability != capability:
                continue
            for who in self.identities:
                if who not in self.keys:
                    continue
                start = self.authority.log.size()
                req, sig = self._signed(
                    "break-glass",
                    who,
                    capability=capability,
                    rule=bg.id,
                    purpose="the serving cluster is compromised",
                    duration_seconds=60,
                )
                try:
                    self.authority.break_glass(req, sig)
                except Error:
                    continue
                reached = True
                if not self._tells_outsiders(_notices(self.authority.log, start)):
                    return True, True
        return reached, quiet

    def take_every_role(self) -> None:
        """Give each identity of the coalition every role the constitution names, and a key if
        it has none, one amendment per identity (what the analysis assumes a coalition that
        may change those entries does); an amendment the authority refuses is left out.

        The reader refuses a document in which some rule can no longer be used (a break-glass
        user or requester left without reviewers or approvers other than themselves), so when
        the coalition's own change alone is refused, the same change also gives the rules'
        roles to other persons' entries that already have keys (all of them, else one at a
        time, for entries some clause entrenches): a change the coalition may make to any entry
        it may change, which keeps every quorum feasible without a key the coalition holds.
        """
        for who in self.identities:
            c = self.c
            roles: set[str] = set().union(*(p.roles for p in c.principals))
            for r in c.access_rules:
                roles |= r.requester_roles | r.approver_roles
            for bg in c.break_glass:
                roles |= bg.roles | bg.review.approver_roles
            mine = {q.id for q in c.principals if q.person_id == c.principals_by_id[who].person_id}
            others = [q.id for q in c.principals if q.id not in mine and q.public_key is not None]

            def every_role(
                d: dict[str, Any],
                who: str = who,
                roles: set[str] = roles,
                also: Iterable[str] = (),
            ) -> dict[str, Any]:
                also = set(also)
                for p in d["principals"]:
                    if p["id"] == who:
                        p["roles"] = sorted(set(p.get("roles", [])) | roles)
                        if "key" not in p:
                            self.keys.setdefault(who, SigningKey.generate())
                            p["key"] = encode_public_key(self.keys[who].public_bytes)
                    elif p["id"] in also:
                        p["roles"] = sorted(set(p.get("roles", [])) | roles)
                return d

            for also in [[], others, *([q] for q in others)]:
                if also is not others and also and len(others) == 1:
                    break  # the one other entry was tried with all of them
                if self.amend(functools.partial(every_role, also=also)):
                    break

    def append_standing_rule(self, capability: str) -> bool:
        """Append a standing access rule for ``capability`` and use it; whether it was used.

        For each identity of the coalition and each role it holds, one amendment appends
        ``{capability, requesters: {roles: [role]}, quorum: {approvals: 0}}``; an identity
        holding no role is given the role in the same amendment (a membership change too). The
        authority decides what each needs (entrenched paths, weakenings, the floor).
        """
        for who in self.identities:
            held = sorted(self.c.principals_by_id[who].roles)
            roles = held or sorted(set().union(*(p.roles for p in self.c.principals)))
            for role in roles:
                rule_id = f"appended-{self.c.version}"

                def append(
                    d: dict[str, Any], who: str = who, role: str = role, rule_id: str = rule_id
                ) -> dict[str, Any]:
                    d.setdefault("access", []).append(
                        {
                            "id": rule_id,
                            "capability": capability,
                            "requesters": {"roles": [role]},
                            "quorum": {"approvals": 0},
                            "max_duration": "1h",
                        }
                    )
                    for p in d["principals"]:
                        if p["id"] == who:
                            p["roles"] = sorted({*p.get("roles", []), role})
                    return d

                if not self.amend(append):
                    continue
                try:
                    self.authority.authorize(who, capability)
                except Error:
                    continue
                return True
        return False

    def amend(self, change: Any) -> bool:
        """Propose ``change(document) -> document`` (version N+1) and have every signer of
        the coalition sign it; whether it was adopted."""
        old = self.c
        doc = json.loads(json.dumps(old.document))
        doc = change(doc)
        doc["version"] = old.version + 1
        text = json.dumps(doc)
        try:
            new = read_constitution(text, name="proposed")
        except Error:
            return False
        for who in self.identities:
            if who not in self.keys:
                continue
            req, sig = self._signed(
                "amendment",
                who,
                purpose="amend",
                amendment={"version": new.version, "digest": new.digest},
                # Signed by a threshold of signers, it lets a goal drop below the floor: a
                # coalition that meets the threshold can always sign it.
                acknowledgements=["coalition-floor"],
            )
            try:
                record = self.authority.propose_amendment(text, req, sig)
            except Error:
                continue
            self._approve_all(record)
            return self.authority.constitution.version == new.version
        return False
