"""Attacker actions on the authority and the constitution, as the CLI takes them: request
objects signed on the attacker's side with the actor's own key, only signatures sent."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from custodes.authority import AuthorityClient, SigningKey, new_request, sign_approval, sign_request
from custodes.constitution import encode_public_key, read_constitution
from custodes.drills._actions import ActionContext, NotRunnable, Observation, Params, action
from custodes.drills._scenario import Step
from custodes.errors import Error
from custodes.log import parse_time

__all__ = ["tidy_up"]

_TEMPLATE = re.compile(r"\{(actor|org|roles|capability|rule|key):([a-z][a-z0-9-]*)\}")


def _client(ctx: ActionContext) -> AuthorityClient:
    """A client of the target's authority API (over HTTP, as an outside attacker is)."""
    return AuthorityClient(ctx.target.base_url)


def _key(ctx: ActionContext, principal: str) -> SigningKey:
    """The drill's signing key of ``principal``, the one whose public key the constitution
    names (a key the drill does not hold makes the step not runnable, not failed).

    Raises:
        NotRunnable: the drill holds no such key.
    """
    p = ctx.constitution.principals_by_id[principal]
    public = encode_public_key(p.public_key) if p.public_key is not None else None
    key = ctx.credentials.signing_key(principal, public)
    if key is None:
        raise NotRunnable(f"the drill holds no signing key of {principal}")
    return key


def _signed(ctx: ActionContext, kind: str, who: str, **fields: Any) -> dict[str, Any]:
    """A request of ``kind`` by ``who`` against the version in force, signed here with
    ``who``'s key: the request body and its signature, as the API takes them."""
    req = new_request(
        kind,
        constitution_version=ctx.constitution.version,
        requester=who,
        created=ctx.target.now(),
        **fields,
    )
    return {"request": req, "signature": sign_request(req, _key(ctx, who))}


def _refusal(exc: Error) -> str:
    """A refusal's diagnostics on one line (for an observation's sentence)."""
    return exc.diagnostics().replace("\n", "; ")


def _missing(record: dict[str, Any]) -> str:
    """Why a request is not (yet) decided, in the authority's words."""
    parts = []
    for rule in record.get("rules", []):
        if not rule.get("satisfied"):
            parts += [f"{rule['rule']}: {m}" for m in rule.get("missing", [])]
            parts += [
                f"{rule['rule']}: {r['principal']} does not count: {r['reason']}"
                for r in rule.get("rejected", [])
            ]
    return "; ".join(parts) or f"status {record.get('status')}"


def _approve(
    client: AuthorityClient, ctx: ActionContext, record: dict[str, Any], signer: str, claim: str
) -> tuple[dict[str, Any] | None, str | None]:
    """Sign ``record`` with ``signer``'s key and submit it as ``claim``'s approval."""
    _, signature = sign_approval(record["request"], _key(ctx, signer))
    try:
        answer = client.call(
            "POST",
            f"/authority/requests/{record['id']}/approvals",
            json={"approver": claim, "signature": signature},
        )
    except Error as exc:
        who = signer if signer == claim else f"{signer}'s key as {claim}"
        return None, f"approval by {who} refused: {_refusal(exc)}"
    return answer, None


# --- amend ----------------------------------------------------------------------------------


class Edit(Params):
    """One change to the constitution in force: ``set`` (replace or add a key), ``remove``,
    or ``append`` (to a list) at a path; list items are addressed by ``id`` or index."""

    set: str | None = Field(default=None, max_length=300)
    remove: str | None = Field(default=None, max_length=300)
    append: str | None = Field(default=None, max_length=300)
    value: Any = None

    @model_validator(mode="after")
    def _one(self) -> Edit:
        """Exactly one of ``set``, ``remove``, ``append`` is given."""
        if sum(x is not None for x in (self.set, self.remove, self.append)) != 1:
            raise ValueError("an edit is exactly one of set, remove, append")
        return self


class AmendParams(Params):
    """An amendment: its edits, who signs it besides the proposer, the clauses whose
    weakening it acknowledges (entrenched clauses, the coalition floor), and its purpose."""

    edits: list[Edit] = Field(min_length=1, max_length=50)
    signers: list[str] = Field(default_factory=list, max_length=20)
    acknowledge: list[str] = Field(default_factory=list, max_length=10)
    purpose: str = Field(default="drill", max_length=500)


def _fill(ctx: ActionContext, value: Any) -> Any:
    """``value`` with ``{actor:x}``, ``{org:x}``, ``{roles:x}``, ``{key:x}`` (of actor x),
    ``{capability:x}`` and ``{rule:x}`` (the first access rule to capability x that needs
    approvals) replaced from the cast (a whole-string ``{roles:x}`` becomes the role list)."""
    if isinstance(value, dict):
        return {k: _fill(ctx, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(ctx, v) for v in value]
    if not isinstance(value, str):
        return value
    whole = _TEMPLATE.fullmatch(value)
    if whole and whole.group(1) == "roles":
        p = ctx.constitution.principals_by_id[_actor(ctx, whole.group(2))]
        return sorted(p.roles)
    return _TEMPLATE.sub(lambda m: _one_value(ctx, m.group(1), m.group(2)), value)


def _actor(ctx: ActionContext, name: str) -> str:
    """The principal the cast chose for the scenario's actor ``name``.

    Raises:
        NotRunnable: the constitution has nobody who fits the role (with the cast's reason).
    """
    who = ctx.cast.actor(name)
    if who is None:
        raise NotRunnable(f"actor {name}: {ctx.cast.why_not.get(name, 'not cast')}")
    return who


def _one_value(ctx: ActionContext, kind: str, name: str) -> str:
    """The text one ``{kind:name}`` placeholder of :func:`_fill` stands for.

    Raises:
        NotRunnable: the actor is not cast, has no key, or no access rule to the capability
            needs approvals.
    """
    if kind == "capability":
        return ctx.capability(name)
    if kind == "rule":
        cap = ctx.capability(name)
        for rule in ctx.constitution.access_rules:
            if rule.capability == cap and rule.quorum.approvals > 0:
                return rule.id
        raise NotRunnable(f"no access rule to {cap} needs approvals")
    p = ctx.constitution.principals_by_id[_actor(ctx, name)]
    if kind == "org":
        return p.organisation
    if kind == "key":
        if p.public_key is None:
            raise NotRunnable(f"{p.id} has no key")
        return encode_public_key(p.public_key)
    if kind == "roles":
        return ",".join(sorted(p.roles))
    return p.id


def _walk(doc: Any, path: str) -> tuple[Any, str | int]:
    """The container holding the last segment of ``path``, and that segment."""
    parts = [p for p in path.split("/")][1:]
    if not path.startswith("/") or not parts:
        raise NotRunnable(f"bad path {path!r}: expected /a/b/c")
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, path)
    last = parts[-1]
    if isinstance(node, list):
        return node, _index(node, last, path)
    if not isinstance(node, dict):
        raise NotRunnable(f"path {path}: {last!r} is not under a mapping or list")
    return node, last


def _child(node: Any, part: str, path: str) -> Any:
    """The value under ``part`` of a mapping or list (an item by ``id`` or index).

    Raises:
        NotRunnable: nothing there in the constitution in force.
    """
    if isinstance(node, dict):
        if part not in node:
            raise NotRunnable(f"the constitution in force has nothing at {path} ({part!r})")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, path)]
    raise NotRunnable(f"the constitution in force has nothing at {path}")


def _index(node: list[Any], part: str, path: str) -> int:
    """The index ``part`` names in a list: the item whose ``id`` it is, else a number.

    Raises:
        NotRunnable: no such item.
    """
    # "-" is the position after the last item, as in JSON Pointer (RFC 6901 section 4).
    if part == "-":
        return len(node)
    for i, item in enumerate(node):
        if isinstance(item, dict) and item.get("id") == part:
            return i
    # ASCII digits only, as custodes.constitution's resolve_path: "²" passes str.isdigit.
    if part.isascii() and part.isdigit() and int(part) < len(node):
        return int(part)
    raise NotRunnable(f"the constitution in force has no item {part!r} at {path}")


def _apply(ctx: ActionContext, doc: dict[str, Any], edit: Edit) -> None:
    """Apply ``edit`` (its path and value filled from the cast) to ``doc`` in place.

    Raises:
        NotRunnable: the path does not exist, there is nothing to remove, or an append's
            target is not a list.
    """
    path = _fill(ctx, edit.set or edit.remove or edit.append)
    holder, last = _walk(doc, path)
    value = _fill(ctx, edit.value)
    if edit.remove is not None:
        if isinstance(holder, list):
            if not isinstance(last, int) or last >= len(holder):
                raise NotRunnable(f"nothing to remove at {path}")
            del holder[last]
        elif last in holder:
            del holder[last]
        else:
            raise NotRunnable(f"nothing to remove at {path}")
    elif edit.append is not None:
        target = holder[last] if not isinstance(holder, list) else holder
        if not isinstance(target, list):
            raise NotRunnable(f"{path} is not a list")
        target.append(value)
    elif isinstance(holder, list):
        if isinstance(last, int) and last < len(holder):
            holder[last] = value
        else:
            holder.append(value)
    else:
        holder[last] = value


class _NoAliases(yaml.SafeDumper):
    """A YAML dumper that writes a value used twice out twice, never as ``&anchor``/``*alias``."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a constitution refuses aliases: every value is written out


@action("amend", AmendParams)
def amend(ctx: ActionContext, step: Step, params: AmendParams) -> Observation:
    """Propose an amendment of the constitution in force (signed by the step's actor), then
    have ``signers`` sign it; it took effect if the version in force is now the new one."""
    proposer = ctx.principal(step.actor, step)
    doc = copy.deepcopy(dict(ctx.constitution.document))
    for edit in params.edits:
        _apply(ctx, doc, edit)
    new_version = ctx.constitution.version + 1
    doc["version"] = new_version
    text = yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, allow_unicode=True)
    try:
        new = read_constitution(text, name="the drill's amendment")
    except Error as exc:
        raise NotRunnable(f"the edited constitution does not read: {_refusal(exc)}") from None
    signers = [_actor(ctx, s) for s in params.signers]
    with _client(ctx) as client:
        body = _signed(
            ctx,
            "amendment",
            proposer,
            purpose=params.purpose,
            amendment={
                "version": new.version,
                "digest": new.digest,
                "sha256": hashlib.sha256(new.text.encode()).hexdigest(),
            },
            acknowledgements=list(params.acknowledge),
        )
        try:
            record = client.call(
                "POST", "/constitution/proposals", json={**body, "document": new.text}
            )
        except Error as exc:
            return Observation(False, f"proposal refused: {_refusal(exc)}")
        ctx.made_request(record, proposer)
        accounts = []
        for signer in signers:
            answer, refused = _approve(client, ctx, record, signer, signer)
            if refused:
                accounts.append(refused)
            elif answer is not None:
                record = answer
        in_force = client.call("GET", "/constitution")
    adopted = int(in_force["version"]) == new_version and in_force.get("digest") in (
        None,
        new.digest,
    )
    if adopted:
        return Observation(
            True,
            f"version {new_version} adopted (request {record['id']})",
            ids=(record["id"],),
            outputs={"request": record["id"], "version": new_version},
        )
    why = "; ".join([*accounts, _missing(record)])
    return Observation(
        False,
        f"not adopted (request {record['id']}, {record.get('status')}): {why}",
        ids=(record["id"],),
        outputs={"request": record["id"]},
    )


# --- grants ---------------------------------------------------------------------------------


class Forged(Params):
    """An approval signed with ``signer``'s key, submitted as ``claim``'s."""

    signer: str
    claim: str


class GrantParams(Params):
    """A capability request: the capability, who approves it honestly and whose approvals
    are forged, how long the grant should last, and why."""

    capability: str
    approvers: list[str] = Field(default_factory=list, max_length=20)
    forged: list[Forged] = Field(default_factory=list, max_length=20)
    duration_seconds: int = Field(default=900, ge=60, le=86400)
    purpose: str = Field(default="drill: an attacker's request", max_length=500)


@action("request_grant", GrantParams)
def request_grant(ctx: ActionContext, step: Step, params: GrantParams) -> Observation:
    """Request ``capability`` as the step's actor and have ``approvers`` (their own keys) and
    ``forged`` approvals sign it; it took effect if a grant was issued."""
    requester = ctx.principal(step.actor, step)
    capability = ctx.capability(params.capability)
    with _client(ctx) as client:
        body = _signed(
            ctx,
            "grant",
            requester,
            capability=capability,
            purpose=params.purpose,
            duration_seconds=params.duration_seconds,
        )
        try:
            record = client.call("POST", "/authority/requests", json=body)
        except Error as exc:
            return Observation(False, f"request refused: {_refusal(exc)}")
        ctx.made_request(record, requester)
        accounts = []
        pairs = [(a, a) for a in params.approvers] + [(f.signer, f.claim) for f in params.forged]
        for signer, claim in pairs:
            answer, refused = _approve(client, ctx, record, _actor(ctx, signer), _actor(ctx, claim))
            if refused:
                accounts.append(refused)
            elif answer is not None:
                record = answer
    grant = record.get("grant_id")
    ids = tuple(x for x in (record["id"], grant) if x)
    if record.get("status") == "granted" and grant:
        ctx.made_grant(grant, requester)
        return Observation(
            True,
            f"grant {grant} of {capability} to {requester}",
            ids=ids,
            outputs={"request": record["id"], "grant": grant},
        )
    why = "; ".join([*accounts, _missing(record)])
    return Observation(
        False,
        f"no grant (request {record['id']}): {why}",
        ids=ids,
        outputs={"request": record["id"]},
    )


class RevokeParams(Params):
    """A revocation of the grant an earlier step (``grant_from``) obtained."""

    grant_from: str
    reason: str = Field(default="drill: revoked", max_length=500)


@action("revoke_grant", RevokeParams)
def revoke_grant(ctx: ActionContext, step: Step, params: RevokeParams) -> Observation:
    """Revoke the grant an earlier step obtained, as the step's actor."""
    who = ctx.principal(step.actor, step)
    grant = ctx.output(params.grant_from, "grant")
    with _client(ctx) as client:
        body = _signed(ctx, "revocation", who, grant=grant, reason=params.reason)
        try:
            client.call("POST", "/authority/revocations", json=body)
        except Error as exc:
            return Observation(False, f"revocation refused: {_refusal(exc)}", ids=(grant,))
    return Observation(True, f"grant {grant} revoked by {who}", ids=(grant,))


class BreakGlassParams(Params):
    """A break-glass invocation: the capability, how long, the emergency claimed, and
    optionally an earlier invocation to replay byte for byte."""

    capability: str
    duration_seconds: int = Field(default=600, ge=60, le=86400)
    statement: str = Field(default="drill: an emergency is claimed", max_length=500)
    replay: str | None = None
    """An earlier break-glass step whose exact signed body is sent again."""


@action("break_glass", BreakGlassParams)
def break_glass(ctx: ActionContext, step: Step, params: BreakGlassParams) -> Observation:
    """Take ``capability`` under a break-glass rule the actor's roles reach (or replay an
    earlier step's signed body); it took effect if a grant was issued."""
    who = ctx.principal(step.actor, step)
    capability = ctx.capability(params.capability)
    if params.replay is not None:
        body = ctx.output(params.replay, "body")
    else:
        rules = [
            r
            for r in ctx.constitution.break_glass
            if r.capability == capability and r.roles & ctx.constitution.principals_by_id[who].roles
        ]
        if not rules:
            raise NotRunnable(f"no break-glass rule lets {who} take {capability}")
        rule = rules[0]
        duration = min(params.duration_seconds, int(rule.max_duration.total_seconds()))
        body = _signed(
            ctx,
            "break-glass",
            who,
            capability=capability,
            rule=rule.id,
            purpose=params.statement,
            duration_seconds=duration,
        )
    with _client(ctx) as client:
        try:
            grant = client.call("POST", "/authority/break-glass", json=body)
        except Error as exc:
            return Observation(
                False, f"break-glass refused: {_refusal(exc)}", ids=(body["request"]["nonce"],)
            )
    review = grant.get("review_request_id")
    ctx.made_grant(grant["id"], who)
    return Observation(
        True,
        f"break-glass grant {grant['id']} to {who}; review {review} {grant.get('review_status')}"
        f" by {grant.get('review_deadline')}",
        ids=tuple(x for x in (grant["id"], review) if x),
        outputs={"grant": grant["id"], "body": body, "review": review},
    )


class ApproveParams(Params):
    """An approval, as the step's actor, of the request (or review) an earlier step opened."""

    request_from: str
    output: Literal["request", "review"] = "request"


@action("approve", ApproveParams)
def approve(ctx: ActionContext, step: Step, params: ApproveParams) -> Observation:
    """Approve the request (or review) an earlier step opened, as the step's actor."""
    who = ctx.principal(step.actor, step)
    request_id = ctx.output(params.request_from, params.output)
    with _client(ctx) as client:
        record = client.call("GET", f"/authority/requests/{request_id}")
        answer, refused = _approve(client, ctx, record, who, who)
    if refused or answer is None:
        return Observation(False, refused or "no answer", ids=(request_id,))
    return Observation(True, f"approval by {who}: {answer.get('status')}", ids=(request_id,))


# --- tidying up -----------------------------------------------------------------------------


def tidy_up(ctx: ActionContext, *, reason: str) -> tuple[str, ...]:
    """Undo what the drill left standing, each by whoever may, with their own key: every
    request and proposal it made that is still pending is withdrawn by its requester (``POST
    /authority/withdrawals``), and every grant it obtained that is still active is revoked by
    its holder, so a drill leaves nothing waiting for approvers and a later drill starts from
    no grant. Never raises: what could not be undone is said.

    Returns:
        One line per request or grant: withdrawn or revoked, or why not.
    """
    done: list[str] = []
    with _client(ctx) as client:
        for request_id, requester in ctx.made:
            line = _undo(
                ctx,
                client,
                what=f"request {request_id}",
                read=f"/authority/requests/{request_id}",
                standing=lambda r: r.get("status") == "pending",
                kind="withdrawal",
                path="/authority/withdrawals",
                who=requester,
                fields={"request_id": request_id, "reason": reason},
            )
            if line:
                done.append(line)
        for grant_id, holder in ctx.granted:
            line = _undo(
                ctx,
                client,
                what=f"grant {grant_id}",
                read=f"/authority/grants/{grant_id}",
                standing=lambda g: _active(g, ctx.target.now()),
                kind="revocation",
                path="/authority/revocations",
                who=holder,
                fields={"grant": grant_id, "reason": reason},
            )
            if line:
                done.append(line)
    return tuple(done)


def _active(grant: dict[str, Any], now: datetime) -> bool:
    if grant.get("revoked_at"):
        return False
    expires = grant.get("expires_at")
    return expires is None or parse_time(str(expires)) > now


def _undo(
    ctx: ActionContext,
    client: AuthorityClient,
    *,
    what: str,
    read: str,
    standing: Callable[[dict[str, Any]], bool],
    kind: str,
    path: str,
    who: str,
    fields: dict[str, Any],
) -> str | None:
    """Send ``who``'s signed ``kind`` to ``path`` if ``read`` shows ``what`` still standing."""
    try:
        if not standing(client.call("GET", read)):
            return None
        # The version in force now: an earlier step may have amended it.
        version = int(client.call("GET", "/constitution")["version"])
        req = new_request(
            kind, constitution_version=version, requester=who, created=ctx.target.now(), **fields
        )
        client.call(
            "POST", path, json={"request": req, "signature": sign_request(req, _key(ctx, who))}
        )
    except NotRunnable as exc:
        return f"{what} left standing: {exc.reason}"
    except KeyError:
        return f"{what} left standing: {who} is no principal now"
    except Error as exc:
        return f"{what} left standing: {_refusal(exc)}"
    verb = "withdrawn" if kind == "withdrawal" else "revoked"
    return f"{what} {verb} by {who}"
