"""The witnessed log: the newest checkpoint with its witness cosignatures, and witness status.

``GET /checkpoint/cosigned`` answers the newest checkpoint that met the witness quorum, as a
C2SP signed note: the log's signature first, then one cosignature line per witness. A client
checks it with its own :class:`custodes.witness.WitnessPolicy`; ``?quorum=any`` gives the newest
checkpoint with whatever cosignatures it has so far. ``GET /witnesses`` reports each witness.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from custodes.bounds import check_int
from custodes.errors import InputError, NotFoundError
from custodes.log import format_time
from custodes.server._deps import deployment_of
from custodes.witness import WitnessPublisher

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
    """The newest cosigned checkpoint (C2SP tlog-checkpoint with cosignature lines)."""
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


@router.get("/witnesses")
async def witnesses(request: Request) -> dict[str, Any]:
    """Each witness's state, the quorum, and whether the newest checkpoint has it."""
    publisher = _publisher(request)
    peers = await asyncio.to_thread(publisher.status)
    latest = await asyncio.to_thread(publisher.cosigned, require_quorum=False)
    best = await asyncio.to_thread(publisher.cosigned, require_quorum=True)
    return {
        "quorum": publisher.policy.describe(),
        "latest_size": latest.checkpoint.checkpoint.size if latest else None,
        "latest_quorum_met": latest.quorum_met if latest else False,
        "cosigned_size": best.checkpoint.checkpoint.size if best else None,
        "witnesses": [
            {
                "name": p.name,
                "url": p.url,
                "size": p.size,
                "last_ok_at": format_time(p.last_ok_at) if p.last_ok_at else None,
                "last_error": p.last_error,
            }
            for p in peers
        ],
    }


@router.get("/log/receipt/{index}/cosigned")
async def cosigned_receipt(request: Request, index: int) -> Response:
    """A C2SP tlog-proof receipt for entry ``index`` on the newest cosigned checkpoint.

    Its checkpoint carries the witnesses' cosignatures, so a client can check it offline against
    its own witness policy (``custodes witness verify FILE --policy ...``).
    """
    from custodes.log import Receipt

    publisher = _publisher(request)
    if index < 0:
        raise InputError("index must not be negative", where="index", actual=str(index))
    check_int(index, where="index")  # the database holds 64-bit indices
    found = await asyncio.to_thread(publisher.cosigned, require_quorum=True)
    if found is None or index >= found.checkpoint.checkpoint.size:
        raise NotFoundError(
            f"entry {index} is not yet covered by a checkpoint that met the witness quorum",
            where="index",
            expected=f"index < {found.checkpoint.checkpoint.size if found else 0}",
            hint="retry once the witnesses have cosigned a newer checkpoint",
        )
    log = publisher.log
    size = found.checkpoint.checkpoint.size
    data = await asyncio.to_thread(log.entry_data, index)
    proof = await asyncio.to_thread(log.inclusion_proof, index, size)
    built = Receipt.build(index=index, proof=proof, checkpoint=found.checkpoint, entry_data=data)
    return Response(built.to_text(), media_type="text/plain; charset=utf-8")
