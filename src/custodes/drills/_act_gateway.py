"""Attacker actions on the gateway, through the real ``openai`` client, as any caller would."""

from __future__ import annotations

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
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=models[0], messages=[{"role": "user", "content": params.prompt}]
        )
    except openai.APIStatusError as exc:
        headers = exc.response.headers
        return Observation(
            False,
            f"{exc.status_code} from the gateway: {exc.message}",
            ids=tuple(x for x in (headers.get("x-custodes-request-id"),) if x),
            indices=_index(headers.get("x-custodes-log-index")),
        )
    except openai.APIConnectionError as exc:
        raise NotRunnable(f"cannot reach the gateway: {exc}") from None
    finally:
        client.close()
    return Observation(
        True,
        f"answered by {models[0]} for {caller}",
        ids=tuple(x for x in (raw.headers.get("x-custodes-request-id"),) if x),
        indices=_index(raw.headers.get("x-custodes-log-index")),
    )


def _index(text: str | None) -> tuple[int, ...]:
    return (int(text),) if text is not None and text.isdigit() else ()


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
