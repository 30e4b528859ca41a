"""The models file checked against the constitution's tiers, and its tiers of approved weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from custodes.constitution import read_constitution
from custodes.errors import ConfigError
from custodes.gateway import ModelRoute, check_capabilities, read_models_file

ROOT = Path(__file__).resolve().parents[3]
DEMO = (ROOT / "examples" / "constitution.yaml").read_text()
# The demo's tiers (its last key) with cyber-frontier among them.
SERVED = DEMO[: DEMO.index("\n  tiers:\n") + 1] + "  tiers:\n    - capability: cyber-frontier\n"
DIGEST = "sha256:" + "ab" * 32


def routes(tmp_path: Path) -> list[ModelRoute]:
    return read_models_file(ROOT / "examples" / "gateway-models.yaml", environ={})


def test_a_tier_of_promoted_weights_refuses_a_model_that_names_none(tmp_path: Path) -> None:
    served = read_constitution(SERVED)
    demo_routes = routes(tmp_path)
    check_capabilities(demo_routes, read_constitution(DEMO))  # no such tier: as before
    with pytest.raises(ConfigError) as info:
        check_capabilities(demo_routes, served)
    assert "model 'frontier-cyber': capability 'cyber-frontier' serves only weights promoted" in (
        info.value.message
    )
    assert "frontier-general" not in info.value.message  # general is not such a tier
    named = [replace(r, weights=DIGEST) if r.name == "frontier-cyber" else r for r in demo_routes]
    check_capabilities(named, served)


def test_other_disagreements_are_still_refused(tmp_path: Path) -> None:
    demo = read_constitution(DEMO)
    moved = [replace(r, capability="general") for r in routes(tmp_path)]
    with pytest.raises(ConfigError, match="capability 'general' lists only the models"):
        check_capabilities(moved, demo)
    unknown = [replace(r, capability="nowhere") for r in routes(tmp_path)]
    with pytest.raises(ConfigError, match="has no capability 'nowhere'"):
        check_capabilities(unknown, demo)


def test_an_attesting_route_needs_weights_a_known_signer_and_no_unattested_twin(
    tmp_path: Path,
) -> None:
    from custodes.gateway._build import _attestation_sources

    path = tmp_path / "m.yaml"
    path.write_text(
        "models:\n  - name: m\n    capability: general\n    upstream: {scripted: a}\n"
        "    attestation: {url: 'http://127.0.0.1:1/attestation', signer: pipeline@lab}\n"
    )
    with pytest.raises(ConfigError, match="an attestation is checked against the weights"):
        read_models_file(path, environ={})
    demo = read_constitution(DEMO)
    [base] = [r for r in routes(tmp_path) if r.name == "frontier-general"]
    attested = replace(
        base, weights=DIGEST, attestation_url="http://127.0.0.1:1/a", attestation_signer="x@lab"
    )
    with pytest.raises(ConfigError, match="'x@lab' is not a principal of the constitution"):
        _attestation_sources([attested], demo)
    keyless = replace(attested, attestation_signer="gateway@lab")  # a workload without a key
    with pytest.raises(ConfigError, match="with a key"):
        _attestation_sources([keyless], demo)
    signed = replace(attested, attestation_signer="pipeline@lab")
    [source] = _attestation_sources([signed], demo).values()
    assert source.signer == "pipeline@lab" and len(source.key) == 32
    twin = replace(base, name="twin", weights=DIGEST)
    with pytest.raises(ConfigError, match="give every such model the same attestation"):
        _attestation_sources([signed, twin], demo)
