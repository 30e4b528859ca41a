"""Amend a running demo deployment's constitution over its HTTP API: proposed on one server and
signed on others (the demo's bob and dana meet version 1's amendment thresholds for a change
that only adds a capability tier)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from custodes.authority import SigningKey, new_request, sign_approval, sign_request
from custodes.constitution import read_constitution

__all__ = ["amend_over_http", "next_version"]

_ROOT = Path(__file__).resolve().parents[2]
_KEYS = _ROOT / "examples" / "keys"


def next_version(document: str) -> str:
    """``document`` as the next version, with one more (unused) capability tier."""
    match = re.search(r"^version: (\d+)$", document, re.MULTILINE)
    assert match is not None, "the document has no version line"
    n = int(match.group(1)) + 1
    new = document[: match.start()] + f"version: {n}" + document[match.end() :]
    return new.replace(
        "capabilities:\n", f"capabilities:\n  - id: tier-v{n}\n    models: [model-v{n}]\n", 1
    )


def amend_over_http(
    proposer: str,
    approvers: list[str],
    keys: dict[str, str],
    *,
    timeout: float = 30,
    change: Callable[[str], str] = next_version,
) -> tuple[int, str]:
    """Propose the next version on ``proposer`` (a base URL) as bob, sign it as bob and dana
    on ``approvers`` (one base URL each, in turn); ``keys``: API keys of bob@lab and dana@asi;
    ``change``: the next version's text from the current one's.

    Returns:
        The adopted version and the request id (the last approval adopted it).
    """
    current = httpx.get(f"{proposer}/constitution/versions", timeout=timeout).json()["versions"]
    version = current[-1]["version"]
    text = httpx.get(f"{proposer}/constitution/versions/{version}", timeout=timeout).text
    document = change(text)
    new = read_constitution(document, name="next version")
    request = new_request(
        "amendment",
        constitution_version=version,
        requester="bob@lab",
        created=datetime.now(UTC),
        purpose="one more tier",
        amendment={"version": new.version, "digest": new.digest},
        acknowledgements=[],
    )
    bob = SigningKey.from_file(_KEYS / "bob.key")
    r = httpx.post(
        f"{proposer}/constitution/proposals",
        json={"document": document, "request": request, "signature": sign_request(request, bob)},
        headers={"authorization": f"Bearer {keys['bob@lab']}"},
        timeout=timeout,
    )
    assert r.status_code == 201, r.text
    request_id = str(r.json()["id"])
    signers = [("bob@lab", "bob"), ("dana@asi", "dana")]
    for i, (approver, name) in enumerate(signers):
        _, signature = sign_approval(request, SigningKey.from_file(_KEYS / f"{name}.key"))
        r = httpx.post(
            f"{approvers[i % len(approvers)]}/authority/requests/{request_id}/approvals",
            json={"approver": approver, "signature": signature},
            headers={"authorization": f"Bearer {keys[approver]}"},
            timeout=timeout,
        )
        assert r.status_code == 201, r.text
    assert r.json()["status"] == "adopted", r.json()
    return new.version, request_id
