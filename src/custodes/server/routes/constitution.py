"""``/constitution``: the active version, its schema, its history, and amendment proposals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from custodes.constitution import (
    MAX_DOCUMENT_BYTES,
    AdoptedVersion,
    adopted_versions,
    constitution_schema,
    stored_document,
)
from custodes.log import format_time
from custodes.server._deps import Components
from custodes.server.routes.authority import RequestOut

__all__ = ["router"]

router = APIRouter(prefix="/constitution", tags=["constitution"])


class Proposal(BaseModel):
    """A proposed amendment: the new document and the proposer's signed request."""

    model_config = ConfigDict(extra="forbid")
    document: str = Field(
        max_length=MAX_DOCUMENT_BYTES,
        description="The proposed YAML, version N+1 (at most 4 MiB; no aliases).",
    )
    request: dict[str, Any]
    signature: str = Field(max_length=200)


class VersionOut(BaseModel):
    """One adopted version (its text: ``GET /constitution/versions/{version}``)."""

    version: int
    digest: str = Field(description="SHA-256 of the document, hex.")
    adopted_at: str = Field(description="RFC 3339, UTC.")
    request_id: str | None = Field(description="The amendment that adopted it (None: v1).")
    log_index: int = Field(description="The index of its adoption entry in the log.")

    @classmethod
    def of(cls, v: AdoptedVersion) -> VersionOut:
        return cls(
            version=v.version,
            digest=v.digest,
            adopted_at=format_time(v.adopted_at),
            request_id=v.request_id,
            log_index=v.log_index,
        )


class VersionsOut(BaseModel):
    """Every adopted version, oldest first."""

    versions: list[VersionOut]


@router.get("")
def show(
    deployment: Components, format: str = Query(default="json", pattern="^(json|yaml)$")
) -> Response:
    """The constitution in force, as JSON (with its text) or as its YAML text."""
    c = deployment.authority.constitution
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
    """The JSON Schema every constitution document is validated against."""
    return constitution_schema()


@router.get("/versions")
def versions(deployment: Components) -> VersionsOut:
    """Every adopted version, oldest first."""
    return VersionsOut(versions=[VersionOut.of(v) for v in adopted_versions(deployment.engine)])


@router.get("/versions/{version}")
def version_text(
    deployment: Components, version: int = Path(ge=1, le=2147483647)
) -> PlainTextResponse:
    """The YAML text of an adopted version, exactly as adopted."""
    return PlainTextResponse(
        stored_document(deployment.engine, version), media_type="application/yaml"
    )


@router.post("/proposals", status_code=201, response_model_exclude_unset=True)
def propose(body: Proposal, deployment: Components) -> RequestOut:
    """Propose an amendment (version N+1), signed by its proposer; it then gathers approvals."""
    record = deployment.authority.propose_amendment(body.document, body.request, body.signature)
    return RequestOut.of(record)
