"""The log operator turns on its own log: it rolls a witness back to an older tree, or shows it
another history (a fork), signing with the log's real key and speaking C2SP tlog-witness
``add-checkpoint`` byte for byte. The witnesses are the control: they must refuse, and keep
evidence of a fork that anyone with the log's key can check (:func:`verify_evidence`)."""

from __future__ import annotations

import base64
import json
from typing import Literal

import httpx
from pydantic import Field

from custodes.drills._actions import ActionContext, NotRunnable, Observation, Params, action
from custodes.drills._scenario import Step
from custodes.errors import Error
from custodes.log import Checkpoint, NoteSigner, consistency_proof, leaf_hash, tree_hash
from custodes.witness import Evidence, verify_evidence

__all__: list[str] = []

_ATTEMPTS = 8  # the log's own publisher may move a witness on between our read and our offer


class ForkParams(Params):
    kind: Literal["rollback", "same-size", "rewrite"]
    witnesses: Literal["all", "one"] = "all"
    text: str = Field(default="drill: a history the overseers never saw", max_length=500)


def _signer(ctx: ActionContext) -> NoteSigner:
    signer = ctx.credentials.log_signer
    if signer is None:
        raise NotRunnable("the drill holds no log signing key (--log-signing-key)")
    if signer.verifier.to_key() != ctx.target.verifier.to_key():
        raise NotRunnable("the log signing key given is not the key of this deployment's log")
    return signer


def _held(http: httpx.Client, url: str, origin: str) -> int | None:
    info = http.get(url.rstrip("/") + "/").json()
    for log in info.get("logs", []):
        if log.get("origin") == origin:
            size = log.get("size")
            return int(size) if size is not None else None
    return None


@action("witness_fork", ForkParams)
def witness_fork(ctx: ActionContext, step: Step, params: ForkParams) -> Observation:
    """Offer each witness a checkpoint of a tree other than the log's public one: an older tree
    (``rollback``), another tree of the size it holds (``same-size``), or a larger tree that
    rewrites the newest entry it holds (``rewrite``). It took effect if any witness cosigned."""
    signer = _signer(ctx)
    origin = ctx.target.verifier.name
    listed = ctx.target.get_json("/witnesses").get("witnesses", [])
    if not listed:
        raise NotRunnable("the deployment has no witnesses")
    if params.witnesses == "one":
        listed = listed[:1]
    cosigned, refused, outside = [], [], []
    with httpx.Client(timeout=30.0) as http:
        for w in listed:
            name, url = w["name"], w["url"]
            verdict = _offer(ctx, http, signer, origin, url, params)
            if verdict is None:
                raise NotRunnable(f"witness {name} holds no checkpoint of {origin} big enough")
            status, answer, note = verdict
            if status == 200:
                cosigned.append(f"{name} cosigned it")
                continue
            refused.append(f"{name}: {status} {answer.strip()[:200]}")
            found = _evidence(http, url, note, ctx)
            if found:
                outside.append(f"{name}: {found}")
    if cosigned:
        return Observation(True, "; ".join(cosigned + refused), outside=tuple(outside))
    return Observation(False, "refused by " + "; ".join(refused), outside=tuple(outside))


def _offer(
    ctx: ActionContext,
    http: httpx.Client,
    signer: NoteSigner,
    origin: str,
    url: str,
    params: ForkParams,
) -> tuple[int, str, str] | None:
    for _ in range(_ATTEMPTS):
        held = _held(http, url, origin)
        if held is None or held < 2:
            return None
        leaves = [
            base64.b64decode(item["leaf_hash"])
            for item in ctx.target.get_json("/log/entries", start=0, end=held)["entries"]
        ]
        if len(leaves) < held:
            return None
        forged = leaf_hash(json.dumps({"type": "log.annotation/v1", "text": params.text}).encode())
        proof: list[bytes] = []
        if params.kind == "rollback":
            tree = leaves[: held - 1]
        elif params.kind == "same-size":
            tree = [*leaves[: held - 1], forged]
        else:
            tree = [*leaves[: held - 1], forged, forged]
            proof = consistency_proof(held, len(tree), tree)
        note = Checkpoint(origin, len(tree), tree_hash(tree)).sign(signer).to_text()
        body = f"old {held}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof)
        r = http.post(url.rstrip("/") + "/add-checkpoint", content=(body + "\n" + note).encode())
        # 409 with another size: the log's publisher moved the witness on; offer again.
        if r.status_code == 409 and r.text.strip().isdigit() and int(r.text.strip()) != held:
            continue
        return r.status_code, r.text, note
    return None


def _evidence(http: httpx.Client, url: str, note: str, ctx: ActionContext) -> str | None:
    """The witness's stored evidence of our offer, checked with the log's key."""
    try:
        items = http.get(url.rstrip("/") + "/evidence").json()
    except (httpx.HTTPError, ValueError):
        return None
    for item in items:
        if item.get("offered_note") != note:
            continue
        try:
            finding = verify_evidence(Evidence.from_json(json.dumps(item)), ctx.target.verifier)
        except Error as exc:
            return f"evidence kept, but it does not verify: {exc.message}"
        return f"evidence kept ({item.get('kind')}), verified: {finding.summary}"
    return None
