"""Log entry types of the constitution: adoption of the first version and every amendment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = ["AdoptBody", "AmendBody"]


class AdoptBody(BaseModel):
    """The first constitution of a deployment was loaded (version and document digest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=1)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    name: str = ""
    source: str = ""


class AmendSigner(BaseModel):
    """One signer of an amendment: whether they signed as a signer of the old version, of
    the new one, or both (a key can be in both)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    principal: str
    organisation: str
    old: bool
    new: bool


class AmendBody(BaseModel):
    """Version N+1 was adopted, signed by thresholds of the old and the new signers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=2)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    previous_version: int = Field(ge=1)
    previous_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    request_id: str
    signers: list[AmendSigner]
    entrenched_changed: list[str] = Field(default_factory=list)
    acknowledgements: list[str] = Field(default_factory=list)


register_entry_type("constitution.adopt/v1", AdoptBody)
register_entry_type("constitution.amend/v1", AmendBody)
