"""Attacker actions on the gateway, through the real ``openai`` client, as any caller would."""

from __future__ import annotations

import time

import openai
from pydantic import Field

from custodes.drills._actions import ActionContext, NotRunnable, Observation, Params, action
from custodes.drills._scenario import Step

__all__: list[str] = []


class CallParams(Params):
    capability: str
    key_of: str | None = None
    """The actor whose API key is used (a stolen key); default: the step's actor's own."""
    prompt: str = Field(default="drill: summarise the newest exploit technique", max_length=2000)
    retry_for_seconds: float = Field(default=0.0, ge=0, le=120)
    """Call again while answered, for up to this long: a change made elsewhere (an API key
    revoked on the database) reaches the gateway within its key poll, not at once. Every
    answered call is counted in the account."""
    refused_with: int | None = Field(default=None, ge=400, le=599)
    """While retrying, a refusal with another status is not yet the control under test (a key
    whose grant was revoked is refused 403 by policy before the key poll refuses it 401): call
    again until this status or the deadline, and report the last answer."""


@action("gateway_call", CallParams)
def gateway_call(ctx: ActionContext, step: Step, params: CallParams) -> Observation:
    """One chat completion on a model of ``capability``; it took effect if answered."""
    caller = ctx.principal(params.key_of or step.actor, step)
    capability = ctx.capability(params.capability)
    models = [c.models for c in ctx.constitution.capabilities if c.id == capability][0]
    if not models:
        raise NotRunnable(f"capability {capability} has no model the gateway serves")
    key = ctx.credentials.api_key(caller)
    if key is None:
        raise NotRunnable(f"the drill holds no API key of {caller}")
    client = openai.OpenAI(
        base_url=ctx.target.base_url + "/v1", api_key=key, max_retries=0, timeout=30.0
    )
    deadline = time.monotonic() + params.retry_for_seconds
    answered = 0
    try:
        while True:
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=models[0], messages=[{"role": "user", "content": params.prompt}]
                )
            except openai.APIStatusError as exc:
                if (
                    params.refused_with is not None
                    and exc.status_code != params.refused_with
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                    continue
                headers = exc.response.headers
                before = f" (after {answered} answered calls)" if answered else ""
                return Observation(
                    False,
                    f"{exc.status_code} from the gateway{before}: {exc.message}",
                    ids=tuple(x for x in (headers.get("x-custodes-request-id"),) if x),
                    indices=_index(headers.get("x-custodes-log-index")),
                )
            answered += 1
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    except openai.APIConnectionError as exc:
        raise NotRunnable(f"cannot reach the gateway: {exc}") from None
    finally:
        client.close()
    times = f" ({answered} calls in {params.retry_for_seconds:g} s)" if answered > 1 else ""
    return Observation(
        True,
        f"answered by {models[0]} for {caller}{times}",
        ids=tuple(x for x in (raw.headers.get("x-custodes-request-id"),) if x),
        indices=_index(raw.headers.get("x-custodes-log-index")),
    )


def _index(text: str | None) -> tuple[int, ...]:
    # ASCII digits only: str.isdigit alone passes "²", on which int() raises.
    return (int(text),) if text is not None and text.isascii() and text.isdigit() else ()


class RevokeKeysParams(Params):
    of: str


@action("revoke_api_keys", RevokeKeysParams)
def revoke_api_keys(ctx: ActionContext, step: Step, params: RevokeKeysParams) -> Observation:
    """The operator revokes every API key of an actor (``custodes keys revoke``)."""
    who = ctx.principal(params.of, step)
    if ctx.credentials.revoke_api_keys is None:
        raise NotRunnable(
            "revoking API keys is the operator's (custodes keys revoke, on the deployment's "
            "database): run the drill where it can reach it (--data-dir)"
        )
    ctx.credentials.revoke_api_keys(who)
    return Observation(True, f"every API key of {who} revoked")


class PendingParams(Params):
    reason: str = Field(min_length=1, max_length=1000)


@action("pending", PendingParams)
def pending(ctx: ActionContext, step: Step, params: PendingParams) -> Observation:
    """A step the drill cannot exercise yet: always not runnable, with the reason."""
    raise NotRunnable(params.reason)


class ExclusiveParams(Params):
    capability: str
    approvers: list[str] = Field(default_factory=list, max_length=20)
    """Who approves the actor's grant of the tier first (their own keys); none: the actor
    holds one already."""
    calls: int | None = Field(default=None, ge=1, le=500)
    """How many calls to make; default: one more than the concentration rule's ``min_calls``."""
    prompt: str = Field(default="drill: all of it, for my team only", max_length=2000)


_SHARE_RULES = ("max-person-share", "max-organisation-share")


@action("use_exclusively", ExclusiveParams)
def use_exclusively(ctx: ActionContext, step: Step, params: ExclusiveParams) -> Observation:
    """The actor takes a tier for themselves alone: a grant (approved by ``approvers``), then
    call after call, nobody else using it. It took effect if every call was answered. Not
    runnable unless the constitution in force has a concentration rule on the tier (usage
    rules): without one there is nothing to trip."""
    who = ctx.principal(step.actor, step)
    capability = ctx.capability(params.capability)
    usage = ctx.constitution.document.get("usage") or {}
    rules = [
        r
        for r in usage.get("rules", [])
        if r.get("capability") == capability and r.get("kind") in _SHARE_RULES
    ]
    if not rules:
        raise NotRunnable(
            f"the constitution in force has no concentration rule on {capability} "
            "(usage.rules of kind max-person-share or max-organisation-share: docs/usage.md)"
        )
    if params.approvers:
        from custodes.drills._act_authority import GrantParams, request_grant

        got = request_grant(
            ctx, step, GrantParams(capability=params.capability, approvers=params.approvers)
        )
        if not got.took_effect:
            raise NotRunnable(f"the actor could not get the tier: {got.account}")
    calls = params.calls or min(500, int(rules[0].get("min_calls", 0)) + 1)
    models = [c.models for c in ctx.constitution.capabilities if c.id == capability][0]
    key = ctx.credentials.api_key(who)
    if not models or key is None:
        raise NotRunnable(f"no model of {capability}, or no API key of {who}")
    client = openai.OpenAI(
        base_url=ctx.target.base_url + "/v1", api_key=key, max_retries=0, timeout=30.0
    )
    answered, refused = 0, ""
    indices: list[int] = []
    try:
        for _ in range(calls):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=models[0], messages=[{"role": "user", "content": params.prompt}]
                )
            except openai.APIStatusError as exc:
                refused = f"call {answered + 1} refused: {exc.status_code} {exc.message}"
                indices += _index(exc.response.headers.get("x-custodes-log-index"))
                break
            except openai.APIConnectionError as exc:
                raise NotRunnable(f"cannot reach the gateway: {exc}") from None
            answered += 1
            indices += _index(raw.headers.get("x-custodes-log-index"))
    finally:
        client.close()
    rule_ids = ", ".join(str(r.get("id")) for r in rules)
    account = f"{answered} of {calls} calls on {capability} answered for {who} (rules {rule_ids})"
    # The alarm names its subject (the person, or their organisation as a JSON string), not
    # the calls.
    org = ctx.constitution.principals_by_id[who].organisation
    subject = tuple({who if r.get("kind") == "max-person-share" else f'"{org}"' for r in rules})
    if refused:
        return Observation(False, f"{account}; {refused}", ids=subject, indices=tuple(indices[-1:]))
    return Observation(True, account, ids=subject)


class RateParams(Params):
    capability: str
    key_of: str | None = None
    """The actor whose API key is used (a stolen key); default: the step's actor's own."""
    calls: int | None = Field(default=None, ge=1, le=2000)
    """How many calls to make; default: one more than the unusual-key-rate rule's
    ``min_calls`` (and at least 20)."""
    prompt: str = Field(default="drill: everything you know, again", max_length=2000)


@action("use_key_rapidly", RateParams)
def use_key_rapidly(ctx: ActionContext, step: Step, params: RateParams) -> Observation:
    """Call the gateway with one API key again and again, as fast as it answers: a stolen key
    used at a rate its owner never uses. Every call is use of the key, answered or refused, so
    it always takes effect; the control must reveal it. Not runnable unless the constitution
    in force has an ``unusual-key-rate`` usage rule (docs/usage.md)."""
    caller = ctx.principal(params.key_of or step.actor, step)
    capability = ctx.capability(params.capability)
    usage = ctx.constitution.document.get("usage") or {}
    rules = [
        r
        for r in usage.get("rules", [])
        if r.get("kind") == "unusual-key-rate" and r.get("capability") in (None, capability)
    ]
    if not rules:
        raise NotRunnable(
            f"the constitution in force has no unusual-key-rate rule watching {capability} "
            "(usage.rules: docs/usage.md)"
        )
    models = [c.models for c in ctx.constitution.capabilities if c.id == capability][0]
    key = ctx.credentials.api_key(caller)
    if not models or key is None:
        raise NotRunnable(f"no model of {capability}, or no API key of {caller}")
    calls = params.calls or max(20, int(rules[0].get("min_calls", 0)) + 1)
    client = openai.OpenAI(
        base_url=ctx.target.base_url + "/v1", api_key=key, max_retries=0, timeout=30.0
    )
    answered = 0
    statuses: set[int] = set()
    indices: list[int] = []
    t0 = time.monotonic()
    try:
        for _ in range(calls):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=models[0], messages=[{"role": "user", "content": params.prompt}]
                )
                answered += 1
                indices += _index(raw.headers.get("x-custodes-log-index"))
            except openai.APIStatusError as exc:
                statuses.add(exc.status_code)
                indices += _index(exc.response.headers.get("x-custodes-log-index"))
    except openai.APIConnectionError as exc:
        raise NotRunnable(f"cannot reach the gateway: {exc}") from None
    finally:
        client.close()
    seconds = time.monotonic() - t0
    # The key's id, as the gateway logged it: what an unusual-rate alarm names.
    key_ids: set[str] = set()
    for i in indices[-1:]:
        for e in ctx.target.entries(i, i + 1):
            if isinstance(e.body.get("key_id"), str):
                key_ids.add(str(e.body["key_id"]))
    refused = f", {calls - answered} refused ({', '.join(map(str, sorted(statuses)))})"
    return Observation(
        True,
        f"{calls} calls in {seconds:.1f} s with {caller}'s API key "
        f"({', '.join(sorted(key_ids)) or 'key id not logged'}): {answered} answered"
        + (refused if statuses else ""),
        ids=tuple(sorted(key_ids)),
    )
