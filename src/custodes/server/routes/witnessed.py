"""The witnessed log: the newest checkpoint with its witness cosignatures, and witness status.

``GET /checkpoint/cosigned`` answers the newest checkpoint that met the witness quorum, as a
C2SP signed note: the log's signature first, then one cosignature line per witness. A client
checks it with its own :class:`custodes.witness.WitnessPolicy`; ``?quorum=any`` gives the newest
checkpoint with whatever cosignatures it has so far. ``GET /witnesses`` reports each witness.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from custodes.errors import NotFoundError
from custodes.log import format_time
from custodes.server._deps import deployment_of
from custodes.witness import WitnessPublisher, WitnessReport

router = APIRouter(tags=["witnesses"])


def _publisher(request: Request) -> WitnessPublisher:
    publisher = deployment_of(request).witness
    if publisher is None:
        raise NotFoundError(
            "this log publishes to no witnesses",
            where="witnesses",
            hint="configure witnesses in the constitution or CUSTODES_WITNESS_POLICY_FILE",
        )
    return publisher


@router.get("/checkpoint/cosigned")
async def cosigned_checkpoint(
    request: Request,
    quorum: Literal["met", "any"] = Query(
        default="met", description="'met': newest with quorum; 'any': newest published."
    ),
) -> Response:
    """The newest cosigned checkpoint (C2SP tlog-checkpoint with cosignature lines).
    \f
    Raises:
        NotFoundError: the log publishes to no witnesses, or no checkpoint has reached the
            quorum (``quorum=met``) or been published at all (``quorum=any``) yet.
    """
    publisher = _publisher(request)
    found = await asyncio.to_thread(publisher.cosigned, require_quorum=quorum == "met")
    if found is None:
        raise NotFoundError(
            "no checkpoint has reached the witness quorum yet"
            if quorum == "met"
            else "no checkpoint has been published yet",
            where="quorum",
        )
    return Response(
        found.to_text(),
        media_type="text/plain; charset=utf-8",
        headers={
            "Cache-Control": "no-store",
            "X-Custodes-Quorum": "met" if found.quorum_met else "lacking",
            "X-Custodes-Cosigners": ",".join(found.witnesses),
        },
    )


class WitnessOut(BaseModel):
    """One witness of the policy, as the publisher last saw it."""

    name: str
    url: str | None
    size: int = Field(description="The size of the newest checkpoint it cosigned (0: none).")
    last_ok_at: str | None = Field(description="When it last cosigned (RFC 3339 UTC).")
    last_error: str | None


class WitnessesOut(BaseModel):
    """Where the witnessing stands: the quorum, how far it reaches, and each witness."""

    quorum: str
    latest_size: int | None = Field(description="The newest published checkpoint's size.")
    latest_quorum_met: bool
    cosigned_size: int | None = Field(description="The newest checkpoint with the quorum.")
    witnesses: list[WitnessOut]

    @classmethod
    def of(cls, report: WitnessReport) -> WitnessesOut:
        """The publisher's report as JSON (times RFC 3339, UTC)."""
        return cls(
            quorum=report.quorum,
            latest_size=report.latest_size,
            latest_quorum_met=report.latest_quorum_met,
            cosigned_size=report.cosigned_size,
            witnesses=[
                WitnessOut(
                    name=p.name,
                    url=p.url,
                    size=p.size,
                    last_ok_at=format_time(p.last_ok_at) if p.last_ok_at else None,
                    last_error=p.last_error,
                )
                for p in report.witnesses
            ],
        )


@router.get("/witnesses")
async def witnesses(request: Request) -> WitnessesOut:
    """Each witness's state, the quorum, and whether the newest checkpoint has it."""
    publisher = _publisher(request)
    return WitnessesOut.of(await asyncio.to_thread(publisher.report))


@router.get("/log/receipt/{index}/cosigned")
async def cosigned_receipt(request: Request, index: int) -> Response:
    """A C2SP tlog-proof receipt for entry ``index`` on the newest cosigned checkpoint.

    Its checkpoint carries the witnesses' cosignatures, so a client can check it offline against
    its own witness policy (``custodes witness verify FILE --policy ...``).
    """
    publisher = _publisher(request)
    receipt = await asyncio.to_thread(publisher.cosigned_receipt, index)
    return Response(receipt.to_text(), media_type="text/plain; charset=utf-8")
