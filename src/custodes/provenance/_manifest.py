"""File manifests in the OpenSSF model-signing format: one SHA-256 per file, and a root digest.

A weights directory, a dataset or a source tree is registered as the manifest that
``model_signing.hashing`` builds (file serialization, SHA-256, no symlinks). Its digest is the
one model-signing puts in the subject of its signature statement: SHA-256 over the raw per-file
digests concatenated in the order of their sorted paths (model_signing ``signing.Payload``), so
a model signed with ``model_signing sign`` and registered here have the same name.

The manifest document is model-signing's predicate: ``{"serialization": {...}, "resources":
[{"name", "algorithm", "digest"}]}`` (with ``name`` for the model's name), so a predicate taken
from a model-signing signature can be registered as it is.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from custodes.errors import InputError, TooLarge
from custodes.provenance._digests import format_digest

__all__ = ["MAX_FILES", "FileManifest", "ManifestFile", "hash_path"]

MAX_FILES = 100_000
_MAX_PATH = 4096
_SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


@dataclass(frozen=True)
class ManifestFile:
    """One file of a manifest: its path (relative, ``/``-separated) and its SHA-256 (hex)."""

    path: str
    sha256: str


@dataclass(frozen=True)
class FileManifest:
    """A per-file SHA-256 manifest and its root digest (``sha256:<hex>``).

    Build it with :func:`hash_path` or :meth:`from_document`; the constructor is not checked.
    """

    name: str
    files: tuple[ManifestFile, ...]

    @property
    def digest(self) -> str:
        """The root: SHA-256 over the raw file digests in sorted path order (model-signing)."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(bytes.fromhex(f.sha256))
        return format_digest(h.digest())

    def to_document(self) -> dict[str, Any]:
        """model-signing's predicate shape, with the manifest's ``name``."""
        return {
            "name": self.name,
            "serialization": dict(_SERIALIZATION),
            "resources": [
                {"name": f.path, "algorithm": "sha256", "digest": f.sha256} for f in self.files
            ],
        }

    @classmethod
    def from_document(cls, doc: object, *, where: str = "manifest") -> FileManifest:
        """A manifest from its document, checked and bounded.

        Raises:
            InputError: not an object of the expected shape, a path that is absolute, climbs
                out (``..``) or repeats, a digest that is not 64 lowercase hex digits, or
                another algorithm than SHA-256.
            TooLarge: more than :data:`MAX_FILES` files.
        """
        if not isinstance(doc, Mapping):
            raise InputError("a manifest is an object", where=where, expected="an object")
        unknown = sorted(set(doc) - {"name", "serialization", "resources"})
        if unknown:
            raise InputError(
                f"unknown field {unknown[0]!r}",
                where=f"{where}.{unknown[0]}",
                expected="name, serialization, resources",
            )
        name = doc.get("name", "")
        if not isinstance(name, str) or len(name) > 256:
            raise InputError(
                "name must be a string of at most 256 characters", where=f"{where}.name"
            )
        serialization = doc.get("serialization", _SERIALIZATION)
        if (
            not isinstance(serialization, Mapping)
            or serialization.get("method") != "files"
            or (serialization.get("hash_type", "sha256") != "sha256")
        ):
            raise InputError(
                "only model-signing's file serialization with SHA-256 is registered",
                where=f"{where}.serialization",
                expected='{"method": "files", "hash_type": "sha256"}',
                actual=repr(serialization)[:200],
            )
        resources = doc.get("resources")
        if not isinstance(resources, list):
            raise InputError("resources must be a list", where=f"{where}.resources")
        if len(resources) > MAX_FILES:
            raise TooLarge(
                "too many files in the manifest",
                where=f"{where}.resources",
                expected=f"at most {MAX_FILES}",
                actual=str(len(resources)),
            )
        if not resources:
            raise InputError(
                "a manifest lists at least one file", where=f"{where}.resources", actual="[]"
            )
        files: dict[str, str] = {}
        for i, item in enumerate(resources):
            at = f"{where}.resources[{i}]"
            if not isinstance(item, Mapping) or set(item) != {"name", "algorithm", "digest"}:
                raise InputError("a resource is an object of name, algorithm and digest", where=at)
            path, algorithm, digest = item["name"], item["algorithm"], item["digest"]
            _check_path(path, where=f"{at}.name")
            if algorithm != "sha256":
                raise InputError(
                    "only SHA-256 digests", where=f"{at}.algorithm", actual=repr(algorithm)[:50]
                )
            if not isinstance(digest, str) or len(digest) != 64 or set(digest) - _HEX:
                raise InputError(
                    "malformed digest",
                    where=f"{at}.digest",
                    expected="64 lowercase hex digits",
                    actual=repr(digest)[:100],
                )
            if path in files:
                raise InputError(f"{path!r} is listed twice", where=f"{at}.name")
            files[path] = digest
        return cls(name, tuple(ManifestFile(p, files[p]) for p in sorted(files)))


_HEX = frozenset("0123456789abcdef")


def _check_path(path: object, *, where: str) -> None:
    if not isinstance(path, str) or not 0 < len(path) <= _MAX_PATH or "\x00" in path:
        raise InputError(
            "a file path is a non-empty string", where=where, expected=f"at most {_MAX_PATH} chars"
        )
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise InputError(
            "a file path is relative, '/'-separated, without '.', '..' or empty parts",
            where=where,
            actual=repr(path)[:200],
        )


def _model_signing_hashing() -> Any:
    # Imported on first use: model-signing pulls in sigstore and pyOpenSSL (for certificate
    # signing, which custodes does not use), and pyOpenSSL warns at import that DSA is
    # deprecated; that warning is about a part nothing here calls.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated", category=Warning)
        from model_signing import hashing
    return hashing


def hash_path(path: pathlib.Path, *, max_files: int = MAX_FILES) -> FileManifest:
    """Hash a file or a directory with model-signing (file serialization, SHA-256).

    The git metadata model-signing ignores by default (``.git/``, ``.gitattributes``...) is
    not part of the manifest; symbolic links are refused (model-signing's default), so a link
    cannot make the manifest name a file outside the directory.

    Raises:
        InputError: the path does not exist, cannot be read, or holds a symbolic link.
        TooLarge: the directory holds more than ``max_files`` files.
    """
    hashing = _model_signing_hashing()

    if not path.exists():
        raise InputError("no such file or directory", where=str(path))
    if path.is_dir():
        count = 0
        for _root, _dirs, names in os.walk(path):
            count += len(names)
            if count > max_files:
                raise TooLarge(
                    "too many files to hash",
                    where=str(path),
                    expected=f"at most {max_files}",
                    actual=f"more than {max_files}",
                )
    config = hashing.Config()
    config.use_file_serialization(hashing_algorithm="sha256")
    try:
        manifest = config.hash(path)
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot hash {path}: {exc}", where=str(path)) from exc
    files = []
    for descriptor in manifest.resource_descriptors():
        name = str(descriptor.identifier)
        if name == "." and not path.is_dir():
            # model-signing names a lone file "." (its path relative to itself); the manifest
            # names it by its file name instead. The digest is over the file digests only, so
            # it is model-signing's either way.
            name = path.name
        files.append(ManifestFile(name, descriptor.digest.digest_hex))
    if not files:
        raise InputError("nothing to hash: the directory is empty", where=str(path))
    # Held to the bounds of a manifest read back from the store (paths, digests).
    return FileManifest.from_document(
        FileManifest(manifest.model_name, tuple(files)).to_document(), where=str(path)
    )
