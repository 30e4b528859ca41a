"""The gateway models file."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.errors import ConfigError
from custodes.gateway import read_models_file

ROOT = Path(__file__).resolve().parents[3]


def test_example_models_file() -> None:
    routes = read_models_file(ROOT / "examples" / "gateway-models.yaml", environ={})
    assert [(r.name, r.capability) for r in routes] == [
        ("frontier-general", "general"),
        ("frontier-cyber", "cyber-frontier"),
    ]
    assert routes[0].scripted_file == (ROOT / "examples" / "scripted-replies.yaml").resolve()


def test_a_model_may_name_its_weights(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    digest = "sha256:" + "ab" * 32
    path.write_text(
        "models:\n  - name: m\n    capability: c\n    upstream: {scripted: a}\n"
        f"    weights: {digest}\n  - name: n\n    capability: c\n    upstream: {{scripted: a}}\n"
    )
    assert [r.weights for r in read_models_file(path, environ={})] == [digest, None]


def test_credentials_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "models:\n  - name: m\n    capability: c\n    upstream:\n"
        "      base_url: http://127.0.0.1:1/v1/\n      api_key_env: UP_KEY\n"
        "      model: real\n"
    )
    [route] = read_models_file(path, environ={"UP_KEY": "s3cret"})
    assert (route.api_key, route.base_url, route.upstream_model) == (
        "s3cret",
        "http://127.0.0.1:1/v1",
        "real",
    )
    with pytest.raises(ConfigError, match=r"\$UP_KEY, which is not set"):
        read_models_file(path, environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [{name: m, capability: c, upstream: {}}]", "exactly one of base_url"),
        (
            "models: [{name: m, capability: c, upstream: {base_url: 'http://x', scripted: a}}]",
            "exactly one of base_url",
        ),
        (
            "models: [{name: m, capability: c, upstream: {base_url: 'ftp://x'}}]",
            "upstream.base_url",
        ),
        (
            "models: [{name: m, capability: c, upstream: {scripted: a}},"
            " {name: m, capability: c, upstream: {scripted: a}}]",
            "repeated: m",
        ),
        ("models: [{name: m, upstream: {scripted: a}}]", "capability"),
        ("models: [{name: m, capability: c, upstream: {scripted: a}, extra: 1}]", "extra"),
        ("models: {", "not valid YAML"),
        (
            "models: [{name: m, capability: c, upstream: {scripted: a}, weights: 'sha256:AB'}]",
            "models.0.weights: String should match pattern",
        ),
        (
            "models: [{name: m, capability: c, upstream: {scripted: a}, weights: "
            f"'sha512:{'a' * 64}'}}]",
            "models.0.weights",
        ),
    ],
)
def test_malformed_models_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_models_file(path, environ={})
