"""Manifests are model-signing's own: the same per-file digests and the same root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from custodes.errors import InputError, TooLarge
from custodes.provenance import FileManifest, ManifestFile, ModelRegistry, hash_path
from custodes.provenance._manifest import _model_signing_hashing
from tests.unit.provenance.conftest import write_weights


def _model_signing_root(path: Path) -> str:
    """The subject digest model-signing itself signs (its signing Payload)."""
    from model_signing._signing import signing

    hashing = _model_signing_hashing()

    payload = signing.Payload(hashing.hash(path))
    return "sha256:" + payload.statement.pb.subject[0].digest["sha256"]


def test_directory_digest_is_model_signings_subject(tmp_path: Path) -> None:
    folder = write_weights(tmp_path / "w", b"x", files=4)
    (folder / "sub").mkdir()
    (folder / "sub" / "tokenizer.json").write_text("{}")
    m = hash_path(folder)
    assert m.digest == _model_signing_root(folder)
    assert [f.path for f in m.files] == sorted(f.path for f in m.files)
    assert "sub/tokenizer.json" in {f.path for f in m.files}
    for f in m.files:
        assert f.sha256 == hashlib.sha256((folder / f.path).read_bytes()).hexdigest()
    raw = b"".join(bytes.fromhex(f.sha256) for f in m.files)
    assert m.digest == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_real_gguf_weights(smollm_gguf: Path) -> None:
    m = hash_path(smollm_gguf)
    h = hashlib.sha256()
    with smollm_gguf.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    assert [x.sha256 for x in m.files] == [h.hexdigest()]
    assert m.digest == "sha256:" + hashlib.sha256(h.digest()).hexdigest()


def test_a_lone_file_is_named_by_its_file_name_and_registers(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    # model-signing names a lone file "." (relative to itself), which no stored manifest may.
    path = tmp_path / "train.py"
    path.write_text("print('training')\n")
    m = hash_path(path)
    assert [f.path for f in m.files] == ["train.py"]
    assert m.digest == _model_signing_root(path)
    a = registry.register_artifact("dave@lab", "code", name="trainer", manifest=m)
    assert registry.artifact(a.digest).manifest == m
    # A manifest built in code is held to the stored bounds before anything is logged.
    bad = FileManifest("x", (ManifestFile(".", "0" * 64),))
    with pytest.raises(InputError, match="a file path is relative"):
        registry.register_artifact("dave@lab", "code", name="bad", manifest=bad)
    assert registry.artifacts(kind="code") == [a]


def test_one_byte_changes_the_digest(tmp_path: Path) -> None:
    folder = write_weights(tmp_path / "w", b"x")
    before = hash_path(folder).digest
    shard = folder / "shard-01.bin"
    data = bytearray(shard.read_bytes())
    data[500] ^= 0x01
    shard.write_bytes(bytes(data))
    assert hash_path(folder).digest != before


def test_document_round_trip(tmp_path: Path) -> None:
    m = hash_path(write_weights(tmp_path / "w", b"y"))
    assert FileManifest.from_document(m.to_document()) == m


def test_symlinks_are_refused(tmp_path: Path) -> None:
    folder = write_weights(tmp_path / "w", b"x")
    os.symlink("/etc/hostname", folder / "link")
    with pytest.raises(InputError, match="cannot hash"):
        hash_path(folder)


def test_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        hash_path(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        hash_path(tmp_path / "empty")


def test_too_many_files(tmp_path: Path) -> None:
    folder = write_weights(tmp_path / "w", b"x", files=5)
    with pytest.raises(TooLarge, match="too many files"):
        hash_path(folder, max_files=3)


def _doc(*resources: dict[str, object]) -> dict[str, object]:
    return {"name": "m", "resources": list(resources)}


GOOD = {"name": "a.bin", "algorithm": "sha256", "digest": "a" * 64}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "is an object"),
        ({"name": "m", "resources": [], "extra": 1}, "unknown field"),
        (_doc(), "at least one file"),
        (_doc({**GOOD, "name": "/etc/passwd"}), "relative"),
        (_doc({**GOOD, "name": "a/../../b"}), "relative"),
        (_doc({**GOOD, "name": "a//b"}), "relative"),
        (_doc({**GOOD, "name": ""}), "non-empty"),
        (_doc(GOOD, GOOD), "listed twice"),
        (_doc({**GOOD, "algorithm": "md5"}), "only SHA-256"),
        (_doc({**GOOD, "digest": "A" * 64}), "malformed digest"),
        (_doc({**GOOD, "digest": "a" * 63}), "malformed digest"),
        (_doc({"name": "a", "digest": "a" * 64}), "name, algorithm and digest"),
        (
            {"name": "m", "serialization": {"method": "shards"}, "resources": [GOOD]},
            "file serialization",
        ),
    ],
)
def test_bad_documents(doc: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        FileManifest.from_document(doc)
    assert info.value.where is not None and info.value.where.startswith("manifest")


def test_document_file_count_is_bounded() -> None:
    many = [{"name": f"f{i}", "algorithm": "sha256", "digest": "a" * 64} for i in range(100_001)]
    with pytest.raises(TooLarge):
        FileManifest.from_document({"name": "m", "resources": many})
