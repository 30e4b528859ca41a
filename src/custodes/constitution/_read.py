"""Read and validate a constitution: every problem, with its line, reported at once.

Validation runs in two passes. The JSON Schema (``constitution.schema.json``) checks shape and
types; if the shape is right, the semantic pass checks references (roles, organisations,
capabilities, criteria, signers), duplicates (ids, keys), Cedar conditions, durations and
whether every quorum can be met at all, remembering that the requester never counts.
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

import jsonschema_rs

from custodes.constitution._check import MAX_PROBLEMS, check_document
from custodes.constitution._model import Constitution
from custodes.constitution._yaml import LocatedDocument, format_path, load_located
from custodes.errors import ConstitutionError, ConstitutionProblem

__all__ = ["constitution_schema", "read_constitution"]


@cache
def constitution_schema() -> dict[str, Any]:
    """The published JSON Schema of the constitution (draft 2020-12)."""
    text = resources.files("custodes.constitution").joinpath("constitution.schema.json")
    return cast(dict[str, Any], json.loads(text.read_text(encoding="utf-8")))


@cache
def _validator() -> Any:
    # jsonschema-rs (Rust): the pure-Python validator alone took seconds on 10,000 principals.
    return jsonschema_rs.validator_for(constitution_schema())


def read_constitution(source: Path | str, *, name: str | None = None) -> Constitution:
    """Read, validate and build a constitution.

    Args:
        source: a :class:`~pathlib.Path` to a YAML file, or the YAML text itself.
        name: how to name the source in diagnostics (defaults to the path).

    Raises:
        ConstitutionError: the document is refused; ``problems`` lists every problem found,
            each with its line.
    """
    if isinstance(source, Path):
        label = name or str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConstitutionError(f"cannot read the constitution: {exc}", source=label) from exc
    else:
        label, text = name or "<constitution>", source
    with _gc_paused():
        return _read(text, label)


_gc_lock = threading.Lock()
_gc_readers = 0
_gc_resume = False


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while constitutions are read (reference counting
    still frees everything as usual). The reader allocates hundreds of thousands of long-lived,
    acyclic objects (values, line trees, model records), and every full collection walks them
    all: a fifth of the CPU time on a 1 MB document (benchmarks/constitution_worst.py). The
    collector's state is restored when the last concurrent reader finishes, and any cyclic
    garbage the reader made is collected as usual from then on."""
    global _gc_readers, _gc_resume
    with _gc_lock:
        if _gc_readers == 0:
            _gc_resume = gc.isenabled()
            gc.disable()
        _gc_readers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_readers -= 1
            if _gc_readers == 0 and _gc_resume:
                gc.enable()


def _read(text: str, label: str) -> Constitution:
    """Read one constitution: the YAML reader, the schema pass, then the semantic pass.

    Every problem of every pass that can run is collected, so an author fixes them all in one
    round; the first :data:`MAX_PROBLEMS` are reported, with a count of the rest.

    Raises:
        ConstitutionError: the document has problems (each with its line and path).
    """
    doc = load_located(text)
    # Duplicate keys are reported but do not stop the other checks (the first value is kept);
    # a syntax error leaves nothing to check.
    if doc.data is not None:
        if not isinstance(doc.data, dict):
            doc.problems.append(
                ConstitutionProblem(
                    "the document is not a mapping", line=1, expected="a YAML mapping"
                )
            )
        else:
            _check_schema(doc)
    if isinstance(doc.data, dict) and not any(isinstance(p, _SchemaProblem) for p in doc.problems):
        constitution = check_document(doc, text)
        if not doc.problems:
            return constitution
    problems = sorted(doc.problems, key=lambda p: (p.line or 0, p.path, p.message))
    count = len(problems)
    more = ""
    if len(problems) > MAX_PROBLEMS or doc.dropped:
        # Bounded work and output, whatever the document: the first problems, and a count.
        dropped = doc.dropped + max(0, len(problems) - MAX_PROBLEMS)
        problems = problems[:MAX_PROBLEMS]
        problems.append(
            ConstitutionProblem(
                f"... and {dropped}{'+' if doc.dropped else ''} more problems (the first "
                f"{MAX_PROBLEMS} are shown: fix those and check again)"
            )
        )
        more = f" (the first {MAX_PROBLEMS} shown)"
        count = MAX_PROBLEMS + dropped
    raise ConstitutionError(
        f"the constitution is refused: {count}{'+' if doc.dropped else ''} "
        f"problem{'s' if count != 1 else ''}{more}",
        problems=problems,
        source=label,
    )


_VALUE_KINDS = frozenset(
    {"Pattern", "Minimum", "Maximum", "MinLength", "Constant", "UniqueItems", "MinItems"}
)


class _SchemaProblem(ConstitutionProblem):
    """A problem of shape: the semantic pass cannot run over a misshapen document."""


def _check_schema(doc: LocatedDocument) -> None:
    """Run the JSON Schema over the document and add its errors to ``doc.problems``.

    A value error (a bad pattern or bound) is a plain problem, so the semantic pass still runs;
    a shape error is a :class:`_SchemaProblem`, which stops it.
    """
    # A value the reader already refused (a timestamp, an integer out of range) stands in as
    # its text: one problem for it is enough.
    reported = {p.path for p in doc.problems if p.path}
    for error, where, schema_where in _schema_errors(doc.data):
        if len(doc.problems) >= MAX_PROBLEMS:
            doc.dropped += 1  # at least one more; the rest are not looked for
            return
        path = (*where, *error.instance_path)
        if format_path(path) in reported:
            continue
        kind_name = type(error.kind).__name__
        # A wrong value inside the right shape (a malformed key, a bad duration) leaves the
        # semantic pass able to run, so it can report everything else at the same time.
        kind = ConstitutionProblem if kind_name in _VALUE_KINDS else _SchemaProblem
        doc.problems.append(
            kind(
                _schema_message(kind_name, error),
                line=doc.line(path),
                path=format_path(path),
                expected=_schema_expected(kind_name, [*schema_where, *error.schema_path]),
            )
        )


def _schema_errors(data: dict[str, Any]) -> Iterator[tuple[Any, tuple[Any, ...], tuple[Any, ...]]]:
    """The schema's errors with where they are (instance and schema path prefixes), found in
    bounded work: a valid document is one Rust call; an invalid one is checked at the top level
    on a skeleton (every section an empty container), then section by section and item by item,
    so no error carries (and converts back to Python) the whole document, and the caller can
    stop after the first errors."""
    if _validator().is_valid(data):
        return
    # Large sections stand in as empty containers of their type (small ones as they are, so
    # a message about one quotes it as the full check would).
    skeleton = {k: v if _flat_and_small(v) else type(v)() for k, v in data.items()}
    misshapen = set()
    for error in _root_validator().iter_errors(skeleton):
        if error.instance_path:
            misshapen.add(error.instance_path[0])
        yield error, (), ()
    for key, value in data.items():
        validators = _section_validators().get(key)
        if validators is None or key in misshapen:
            continue
        outer, items = validators
        if not outer.is_valid(value):
            for error in outer.iter_errors(value):
                yield error, (key,), ("properties", key)
        if items is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if not items.is_valid(item):
                    for error in items.iter_errors(item):
                        yield error, (key, i), ("properties", key, "items")


def _flat_and_small(value: Any) -> bool:
    """Whether a section is small enough to keep as it is in the skeleton (no nesting, at most 20
    items).
    """
    if not isinstance(value, list | dict):
        return True
    items = value.values() if isinstance(value, dict) else value
    return len(value) <= 20 and not any(isinstance(x, list | dict) for x in items)


@cache
def _root_validator() -> Any:
    """The schema of the top level only: each section's type, none of its contents."""
    schema = constitution_schema()
    shape = {k: v for k, v in schema.items() if k != "properties"}
    shape["properties"] = {
        k: ({"type": p["type"]} if "type" in p else {}) for k, p in schema["properties"].items()
    }
    return jsonschema_rs.validator_for(shape)


@cache
def _section_validators() -> dict[str, tuple[Any, Any]]:
    """One validator per section, and one for each item of a list section (so an error names the
    item, and no validator sees the whole document).
    """
    out: dict[str, tuple[Any, Any]] = {}
    for key, prop in constitution_schema()["properties"].items():
        if "items" in prop:
            outer = {k: v for k, v in prop.items() if k != "items"}
            out[key] = (
                jsonschema_rs.validator_for(outer),
                jsonschema_rs.validator_for(prop["items"]),
            )
        else:
            out[key] = (jsonschema_rs.validator_for(prop), None)
    return out


def _schema_message(kind: str, error: Any) -> str:
    """The schema error's message in the reader's words, at most about 300 characters."""
    if kind == "AdditionalProperties":
        text = str(error.message).replace("Additional properties are not allowed", "unknown key")
    elif kind == "Pattern":
        text = f"{error.instance!r} is malformed"
    else:
        text = str(error.message)
    # A message may quote the value it is about: never a megabyte of it.
    return text if len(text) <= 300 else text[:240] + " ... " + text[-40:]


def _schema_expected(kind: str, schema_path: list[str | int]) -> str | None:
    """What the schema expected at ``schema_path``, in words (None when it says nothing useful)."""
    node: Any = constitution_schema()
    for part in schema_path[:-1]:
        if isinstance(node, dict):
            node = node.get(str(part))
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    node = node if isinstance(node, dict) else {}
    if kind == "Pattern":
        desc = node.get("description")
        return str(desc) if desc else f"a string matching {node.get('pattern')}"
    if kind == "Enum":
        return "one of " + ", ".join(map(str, node.get("enum", [])))
    if kind == "Required":
        return "the key to be present"
    return None
