"""The log operator turns on its own log: it rolls a witness back to an older tree, or shows it
another history (a fork), signing with the log's real key and speaking C2SP tlog-witness
``add-checkpoint`` byte for byte. The witnesses are the control: they must refuse, and keep
evidence of a fork that anyone with the log's key can check (:func:`verify_evidence`)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Literal

import httpx
from pydantic import Field

from custodes.drills._actions import ActionContext, NotRunnable, Observation, Params, action
from custodes.drills._scenario import Step
from custodes.errors import Error
from custodes.log import Checkpoint, NoteSigner, consistency_proof, leaf_hash, tree_hash
from custodes.witness import Evidence, verify_evidence

__all__: list[str] = []

# The log's own publisher may move a witness on between our read and our offer, and a witness
# may not yet hold a tree of two entries: keep offering for this long (wall seconds), not a
# fixed number of times, since a loaded machine slows our reads and not the publisher.
_PATIENCE = 90.0


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
    cosigned, refused, outside, unreachable = [], [], [], []
    with httpx.Client(timeout=30.0) as http:
        for w in listed:
            name, url = w["name"], w["url"]
            try:
                verdict = _offer(ctx, http, signer, origin, url, params)
            except (httpx.HTTPError, ValueError) as exc:
                # A witness that cannot be reached refuses nothing: it is no control here.
                unreachable.append(f"{name} cannot be reached at {url}: {exc}")
                continue
            status, answer, note = verdict
            if status == 200:
                cosigned.append(f"{name} cosigned it")
                continue
            refused.append(f"{name}: {status} {answer.strip()[:200]}")
            found = _evidence(http, url, note, ctx)
            if found is not None and found[0]:
                outside.append(f"{name}: {found[1]}")
            elif found is not None:
                refused.append(f"{name}: {found[1]}")
    if cosigned:
        return Observation(
            True, "; ".join(cosigned + refused + unreachable), outside=tuple(outside)
        )
    if not refused:
        raise NotRunnable("no witness could be reached: " + "; ".join(unreachable))
    refused += unreachable
    return Observation(False, "refused by " + "; ".join(refused), outside=tuple(outside))


def _offer(
    ctx: ActionContext,
    http: httpx.Client,
    signer: NoteSigner,
    origin: str,
    url: str,
    params: ForkParams,
) -> tuple[int, str, str]:
    """Offer the witness at ``url`` the forged checkpoint: (status, answer, note offered).

    Raises:
        NotRunnable: the witness held no tree of two entries, or the publisher moved it on
            every time, for ``_PATIENCE`` seconds.
    """
    nonce = secrets.token_hex(8)
    leaves: list[bytes] = []  # the real tree's leaves, read once and extended as the log grows
    deadline = time.monotonic() + _PATIENCE
    held: int | None = None
    while time.monotonic() < deadline:
        held = _held(http, url, origin)
        if held is None or held < 2:
            time.sleep(0.5)  # the publisher has not brought the witness this far yet
            continue
        if len(leaves) < held:
            # Each re-hashed from the entry's canonical bytes.
            leaves += [leaf_hash(e.data) for e in ctx.target.entries(len(leaves), held)]
            if len(leaves) < held:
                raise NotRunnable(f"the log serves fewer than the {held} entries {url} holds")
        # A fresh forged entry each time: evidence of this offer is never an earlier run's.
        forged = leaf_hash(
            json.dumps({"type": "log.annotation/v1", "text": f"{params.text} ({nonce})"}).encode()
        )
        proof: list[bytes] = []
        old = held
        if params.kind == "rollback":
            # The operator pretends the witness is where the older tree is (C2SP: the old size
            # is the client's belief); a witness that kept its state answers 409 with its own.
            tree = leaves[: held - 1]
            old = len(tree)
        elif params.kind == "same-size":
            tree = [*leaves[: held - 1], forged]
        else:
            tree = [*leaves[: held - 1], forged, forged]
            proof = consistency_proof(held, len(tree), tree)
        note = Checkpoint(origin, len(tree), tree_hash(tree)).sign(signer).to_text()
        body = f"old {old}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof)
        r = http.post(url.rstrip("/") + "/add-checkpoint", content=(body + "\n" + note).encode())
        # 409 with a size other than the one read: the log's publisher moved the witness on
        # meanwhile; offer again.
        size = r.text.strip()
        if r.status_code == 409 and size.isascii() and size.isdigit() and int(size) != held:
            continue
        return r.status_code, r.text, note
    if held is None or held < 2:
        raise NotRunnable(
            f"{url} held no checkpoint of {origin} with two entries after {_PATIENCE:.0f} s"
        )
    raise NotRunnable(f"the log's publisher moved {url} on at every offer for {_PATIENCE:.0f} s")


def _evidence(
    http: httpx.Client, url: str, note: str, ctx: ActionContext
) -> tuple[bool, str] | None:
    """The witness's stored evidence of our offer, checked with the log's key: it counts only
    if it holds the very checkpoint offered and convicts the log by itself."""
    try:
        r = http.get(url.rstrip("/") + "/evidence")
        r.raise_for_status()
        items = r.json()
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(items, list):
        return None
    for item in items:
        try:
            evidence = Evidence.from_json(json.dumps(item))
        except (Error, TypeError, ValueError):
            continue
        if evidence.offered_note != note:
            continue
        try:
            finding = verify_evidence(evidence, ctx.target.verifier)
        except Error as exc:
            return False, f"evidence kept, but it does not verify: {exc.message}"
        if not finding.conclusive:
            return False, f"evidence kept ({evidence.kind}), inconclusive: {finding.summary}"
        return True, f"evidence kept ({evidence.kind}), verified: {finding.summary}"
    return None
