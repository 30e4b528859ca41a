"""The serving check with the model server's own word: its signed attestation first.

A route may name, beside its ``weights``, the attesting sidecar of its model server
(``attestation: {url: ..., signer: <principal>}``; custodes.provenance's ``Attester``). Then
each serving check (at start and every ``gateway_serving_check_s``, never per call) first asks
the sidecar, with a fresh nonce, which weights the server loaded, checks the answer's signature
under the signer's workload key in the constitution, and refuses the model (an alarm in the log,
as for any refusal) when the attested digest is not the declared one or no valid answer comes:
an upstream that starts serving other weights while running stops being served at the next
check. Only then is the registry asked whether the weights may serve in the tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from custodes.clock import Clock
from custodes.errors import Error
from custodes.gateway._serving import Key, ServingCheck
from custodes.provenance import ServingVerdict, check_attestation, new_nonce

__all__ = ["AttestationSource", "AttestedServing"]

_MAX_ANSWER_BYTES = 1 << 20


def _said(r: httpx.Response) -> str:
    """The sidecar's own reason for a refusal (its JSON ``error``), bounded, or nothing."""
    try:
        error = r.json().get("error") if len(r.content) <= 4096 else None
    except (ValueError, AttributeError):
        return ""
    return f": {error[:300]}" if isinstance(error, str) else ""


@dataclass(frozen=True)
class AttestationSource:
    """Where a route's model server attests its weights, and whose key signs."""

    url: str
    signer: str
    key: bytes


class AttestedServing:
    """A :class:`ServingCheck` asking each route's attesting sidecar before the registry.

    Args:
        inner: the registry's check (the lineage, the promotion, the evaluations).
        sources: the sidecar of each (weights, tier) whose route names one.
        clock: the time attestations are checked against.
        timeout: seconds to wait for a sidecar.
    """

    def __init__(
        self,
        inner: ServingCheck,
        sources: Mapping[Key, AttestationSource],
        *,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        self._inner = inner
        self._sources = dict(sources)
        self._clock = clock
        self._timeout = timeout

    def serving_verdict(self, digest: str, capability: str) -> ServingVerdict:
        """The sidecar's attestation must name ``digest``; then the registry's verdict.

        Raises:
            Error: the registry's verdict cannot be reached.
        """
        source = self._sources.get((digest, capability))
        if source is not None:
            refusal = self._attested(source, digest, capability)
            if refusal is not None:
                return refusal
        return self._inner.serving_verdict(digest, capability)

    def _attested(
        self, source: AttestationSource, digest: str, capability: str
    ) -> ServingVerdict | None:
        now = self._clock.now()
        nonce = new_nonce()
        try:
            r = httpx.get(source.url, params={"nonce": nonce}, timeout=self._timeout)
            if r.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"answered {r.status_code}{_said(r)}", request=r.request, response=r
                )
            if len(r.content) > _MAX_ANSWER_BYTES:
                raise httpx.DecodingError("the answer is over 1 MiB")
            attested = check_attestation(
                r.content, signer=source.signer, key=source.key, nonce=nonce, now=now
            )
        except (httpx.HTTPError, Error) as exc:
            # Fail closed: without the server's own word, the declared digest is unchecked.
            text = exc.message if isinstance(exc, Error) else f"{type(exc).__name__}: {exc}"
            return ServingVerdict(
                digest,
                False,
                (f"the model server's attestation ({source.url}) cannot be checked: {text[:500]}",),
                now,
                capability=capability,
            )
        if attested != digest:
            return ServingVerdict(
                digest,
                False,
                (
                    f"the model server ({source.signer}) attests it serves weights {attested}, "
                    f"not the declared {digest}",
                ),
                now,
                capability=capability,
            )
        return None
