"""``/constitution``: the active version, its schema, its history, and amendment proposals."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from custodes.authority._service import utc
from custodes.constitution import MAX_DOCUMENT_BYTES, constitution_schema
from custodes.constitution._tables import constitution_versions
from custodes.errors import NotFoundError
from custodes.log import format_time
from custodes.server.routes.authority import authority_of, record_json

__all__ = ["router"]

router = APIRouter(prefix="/constitution", tags=["constitution"])


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: str = Field(
        max_length=MAX_DOCUMENT_BYTES,
        description="The proposed YAML, version N+1 (at most 4 MiB; no aliases).",
    )
    request: dict[str, Any]
    signature: str = Field(max_length=200)


@router.get("")
def show(
    request: Request, format: str = Query(default="json", pattern="^(json|yaml)$")
) -> Response:
    c = authority_of(request).constitution
    if format == "yaml":
        return PlainTextResponse(c.text, media_type="application/yaml")
    return JSONResponse(
        {
            "version": c.version,
            "digest": c.digest,
            "name": c.name,
            "document": c.document,
            "text": c.text,
        }
    )


@router.get("/schema")
def schema() -> dict[str, Any]:
    return constitution_schema()


@router.get("/versions")
def versions(request: Request) -> dict[str, Any]:
    with authority_of(request).engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                constitution_versions.c.version,
                constitution_versions.c.digest,
                constitution_versions.c.adopted_at,
                constitution_versions.c.request_id,
                constitution_versions.c.log_index,
            ).order_by(constitution_versions.c.version)
        ).all()
    return {
        "versions": [
            {
                "version": r.version,
                "digest": r.digest,
                "adopted_at": format_time(utc(r.adopted_at)),
                "request_id": r.request_id,
                "log_index": r.log_index,
            }
            for r in rows
        ]
    }


@router.get("/versions/{version}")
def version_text(request: Request, version: int = Path(ge=1, le=2147483647)) -> PlainTextResponse:
    with authority_of(request).engine.connect() as conn:
        row = conn.execute(
            sa.select(constitution_versions.c.document).where(
                constitution_versions.c.version == version
            )
        ).first()
    if row is None:
        raise NotFoundError(f"no constitution version {version}", where="version")
    return PlainTextResponse(row.document, media_type="application/yaml")


@router.post("/proposals", status_code=201)
def propose(body: Proposal, request: Request) -> dict[str, Any]:
    record = authority_of(request).propose_amendment(body.document, body.request, body.signature)
    return record_json(record)
