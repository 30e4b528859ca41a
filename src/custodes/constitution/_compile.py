"""The compiled Cedar policies of a constitution version, built once per version and cached."""

from __future__ import annotations

from custodes.constitution._cedar import CompiledPolicies
from custodes.constitution._model import Constitution

__all__ = ["compile_policies"]


def compile_policies(constitution: Constitution) -> CompiledPolicies:
    """The Cedar policy set and entities of a constitution version (built once, cached)."""
    return _compiled(constitution)


_compiled_cache: dict[str, CompiledPolicies] = {}


def _compiled(constitution: Constitution) -> CompiledPolicies:
    """The compiled policies of ``constitution``, by digest; the cache is bounded (cleared past
    16 versions) and an equal-digest but different object is compiled again, so a cached
    entry always belongs to the very object asked about."""
    key = constitution.digest
    compiled = _compiled_cache.get(key)
    if compiled is None or compiled.constitution is not constitution:
        compiled = CompiledPolicies(constitution)
        if len(_compiled_cache) > 16:
            _compiled_cache.clear()
        _compiled_cache[key] = compiled
    return compiled
