"""Which models the gateway serves: each model's capability tier and its upstream.

Read from a YAML file (setting ``gateway_models_file``)::

    models:
      - name: frontier-cyber            # what callers put in "model"
        capability: frontier-cyber      # the constitution's capability tier it belongs to
        upstream:
          base_url: http://127.0.0.1:8000/v1   # any OpenAI-compatible server
          api_key_env: VLLM_API_KEY            # credentials come from the environment
          model: Qwen/Qwen2.5-7B-Instruct      # the upstream's name for it (default: name)
          timeout_s: 120
        weights: sha256:9f2c...                # optional: the model-signing digest of the
                                               # weights it serves; then it serves only if the
                                               # model registry approves them (docs/provenance.md)
        attestation:                           # optional: the model server's attesting sidecar
          url: http://127.0.0.1:8010/attestation   # (custodes provenance attest); checked at
          signer: modelserver@lab                  # start and at the serving check's interval
      - name: demo-scripted
        capability: general-use
        upstream:
          scripted: scripted-replies.yaml      # canned replies, NOT a model (relative paths are
                                               # relative to this file)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custodes.errors import ConfigError

__all__ = ["ModelRoute", "ModelsFile", "UpstreamSpec", "read_models_file"]

_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
_DIGEST_RE = r"^sha256:[0-9a-f]{64}$"


class UpstreamSpec(BaseModel):
    """Where a model is served: an OpenAI-compatible base URL, or the scripted replies file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, pattern=r"^https?://")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    model: str | None = None
    timeout_s: float = Field(default=120.0, gt=0, le=3600)
    scripted: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> UpstreamSpec:
        if (self.base_url is None) == (self.scripted is None):
            raise ValueError("give exactly one of base_url (a real upstream) or scripted")
        return self


class AttestationSpec(BaseModel):
    """The attesting sidecar of a model's server: its URL and the principal whose key signs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", max_length=2000)
    signer: str = Field(pattern=_NAME_RE.replace(":/", ":/@"))


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_RE)
    capability: str = Field(min_length=1, max_length=128)
    upstream: UpstreamSpec
    owned_by: str = "custodes"
    weights: str | None = Field(default=None, pattern=_DIGEST_RE)
    attestation: AttestationSpec | None = None

    @model_validator(mode="after")
    def _attests_weights(self) -> ModelEntry:
        if self.attestation is not None and self.weights is None:
            raise ValueError("an attestation is checked against the weights: name them too")
        return self


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[ModelEntry]

    @model_validator(mode="after")
    def _unique(self) -> ModelsFile:
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        return self


@dataclass(frozen=True)
class ModelRoute:
    """One servable model, resolved: credentials read from the environment, paths absolute."""

    name: str
    capability: str
    upstream_model: str
    base_url: str | None
    api_key: str | None
    timeout_s: float
    scripted_file: Path | None
    owned_by: str
    weights: str | None = None  # the weights digest; set: served only if approved
    attestation_url: str | None = None  # the model server's attesting sidecar
    attestation_signer: str | None = None  # the principal whose workload key signs


def read_models_file(path: Path, *, environ: Mapping[str, str] | None = None) -> list[ModelRoute]:
    """Read and check the models file.

    Raises:
        ConfigError: the file is missing, malformed, or names an unset credentials variable.
    """
    env = os.environ if environ is None else environ
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the gateway models file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        parsed = ModelsFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid gateway models file: {problems}") from exc
    routes = []
    for m in parsed.models:
        up = m.upstream
        api_key = None
        if up.api_key_env:
            api_key = env.get(up.api_key_env)
            if not api_key:
                raise ConfigError(
                    f"{path}: model {m.name!r} takes its upstream key from ${up.api_key_env}, "
                    "which is not set"
                )
        scripted = None
        if up.scripted is not None:
            scripted = Path(up.scripted)
            if not scripted.is_absolute():
                scripted = (path.parent / scripted).resolve()
        routes.append(
            ModelRoute(
                name=m.name,
                capability=m.capability,
                upstream_model=up.model or m.name,
                base_url=re.sub(r"/+$", "", up.base_url) if up.base_url else None,
                api_key=api_key,
                timeout_s=up.timeout_s,
                scripted_file=scripted,
                owned_by=m.owned_by,
                weights=m.weights,
                attestation_url=m.attestation.url if m.attestation else None,
                attestation_signer=m.attestation.signer if m.attestation else None,
            )
        )
    return routes
