"""YAML to plain data, remembering the line of every node so each problem can name its line.

PyYAML's compose API gives nodes with start marks; building the plain values ourselves also lets
us refuse duplicate mapping keys, which ``yaml.safe_load`` silently lets the last one win.

Parsing is bounded (a constitution reaches the server from anyone holding a key): at most
:data:`MAX_DOCUMENT_BYTES` of text and :data:`MAX_DEPTH` levels of nesting; aliases (``*name``)
are refused outright, since an alias bomb of a few kilobytes expands to gigabytes and, bomb or
not, an alias lets a reviewer read one value where the signers sign another; and every scalar
must be a JSON value (I-JSON integers, RFC 7493 §2.2; finite numbers; no timestamps or
binaries), because the document's digest is its RFC 8785 canonical JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from custodes.errors import ConstitutionProblem

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "LocatedDocument", "Path", "load_located"]

MAX_DOCUMENT_BYTES = 4 << 20
"""The largest constitution read: four times a document of 10,000 principals."""
MAX_DEPTH = 32
"""The deepest nesting of mappings and lists (the schema needs six; attributes may nest)."""
# RFC 7493 §2.2 (I-JSON): integers beyond +-(2**53 - 1) are not interoperable, and RFC 8785
# refuses them.
_MAX_SAFE_INTEGER = (1 << 53) - 1

Path = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """A parsed document and the 1-based line of each path in it.

    A document read by the fast path has no lines yet (``unmarked`` holds its text): a valid
    document never needs them, so they are composed on the first call of :meth:`line`.
    """

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[ConstitutionProblem] = field(default_factory=list)
    active: set[int] = field(default_factory=set, repr=False)
    built: int = 0
    unmarked: str | None = field(default=None, repr=False)

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        if self.unmarked is not None:
            # The fast path took only documents the located reader builds to the same data
            # without a problem, so its lines are this document's lines.
            self.lines = _load_marked(self.unmarked).lines
            self.unmarked = None
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_located(text: str) -> LocatedDocument:
    """Parse one YAML document. Syntax errors and duplicate keys become problems.

    Plain documents (no anchors, aliases, merge keys, explicit tags or duplicate keys: every
    constitution we write) are built straight from libyaml's events, with their lines left for
    later; anything else, and any error, goes through the located reader, which composes nodes
    with marks and reports each problem with its line.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        doc = LocatedDocument(data=None)
        doc.problems.append(
            ConstitutionProblem(
                f"the document is {size} bytes",
                expected=f"at most {MAX_DOCUMENT_BYTES} bytes",
            )
        )
        return doc
    data = _load_plain(text)
    if data is _NOT_PLAIN:
        return _load_marked(text)
    return LocatedDocument(data=data, unmarked=text)


def _scalar_problem(value: Any) -> str | None:
    """Why a constructed scalar has no JSON form (None if it has one)."""
    cls = value.__class__
    if cls is str or cls is bool or value is None:
        return None
    if cls is int:
        if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            return None
        return f"integer {_short(value)} is out of range"
    if cls is float:
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    what = _YAML_KINDS.get(cls.__name__, cls.__name__)
    return f"a YAML {what} is not a JSON value (quote it to make it a string)"


_YAML_KINDS = {"date": "timestamp", "datetime": "timestamp", "bytes": "binary value"}


def _short(value: Any) -> str:
    text = str(value) if not isinstance(value, int) or value.bit_length() < 1000 else "(huge)"
    return text if len(text) <= 40 else text[:20] + "..." + text[-8:]


class _NotPlain:
    """Marker: the fast path declined the document."""


_NOT_PLAIN: Any = _NotPlain()
_MAX_PLAIN_DEPTH = MAX_DEPTH


def _load_plain(text: str) -> Any:
    """The document's plain value from libyaml's event stream, or ``_NOT_PLAIN``.

    The same values as :func:`_load_marked` (the same resolver and constructors) for the
    documents it takes; it declines, rather than decides, everything else.
    """
    loader = _Loader(text)
    get_event = loader.get_event
    resolve = loader.resolve
    values = _Loader._scalars
    stack: list[Any] = []  # open containers; a mapping's pending key follows it
    root: Any = _NOT_PLAIN
    try:
        get_event()  # stream start
        if get_event().__class__ is not yaml.DocumentStartEvent:
            return _NOT_PLAIN  # empty stream
        while True:
            event = get_event()
            cls = event.__class__
            if cls is yaml.ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    return _NOT_PLAIN
                tag = resolve(yaml.ScalarNode, event.value, event.implicit)
                if tag == _STR:
                    value: Any = event.value
                else:
                    key = (tag, event.value)
                    if key in values:
                        value = values[key]
                    else:
                        value = loader.construct_object(
                            yaml.ScalarNode(
                                tag, event.value, event.start_mark, event.end_mark, event.style
                            ),
                            deep=True,
                        )
                        if _scalar_problem(value) is not None:
                            return _NOT_PLAIN
                        if len(values) < 100_000:
                            values[key] = value
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag is not None:
                    return _NOT_PLAIN
                if len(stack) >= _MAX_PLAIN_DEPTH:
                    return _NOT_PLAIN
                stack.append({} if cls is yaml.MappingStartEvent else [])
                stack.append(_NOT_PLAIN)  # a mapping's pending key
                continue
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                stack.pop()
                value = stack.pop()
            elif cls is yaml.DocumentEndEvent:
                break
            else:
                return _NOT_PLAIN  # an alias
            if not stack:
                root = value
                continue
            container = stack[-2]
            if container.__class__ is list:
                container.append(value)
            elif stack[-1] is _NOT_PLAIN:
                # A key: only scalars, and never a merge key or a repeated key.
                if cls is not yaml.ScalarEvent or tag == _MERGE:
                    return _NOT_PLAIN
                key_text = value if value.__class__ is str else str(value)
                if key_text in container:
                    return _NOT_PLAIN
                stack[-1] = key_text
            else:
                container[stack[-1]] = value
                stack[-1] = _NOT_PLAIN
        if get_event().__class__ is not yaml.StreamEndEvent:
            return _NOT_PLAIN  # more than one document
    except Exception:  # noqa: BLE001 - any error is the located reader's to report
        return _NOT_PLAIN
    finally:
        loader.dispose()
    return root


def _refused_shape(text: str) -> ConstitutionProblem | None:
    """The first alias or too-deep nesting, from the event stream (linear in the text, so
    nothing is expanded or composed first); None if neither (or a syntax error, which the
    composer then reports with its line)."""
    loader = _Loader(text)
    depth = 0
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return None
            cls = event.__class__
            if cls is yaml.AliasEvent:
                return ConstitutionProblem(
                    f"YAML refused: alias *{_short(event.anchor)} (aliases are not allowed in "
                    "a constitution; write the value out)",
                    line=event.start_mark.line + 1,
                )
            if cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                depth += 1
                if depth > MAX_DEPTH:
                    return ConstitutionProblem(
                        f"YAML refused: nested more than {MAX_DEPTH} levels deep",
                        line=event.start_mark.line + 1,
                        expected=f"at most {MAX_DEPTH} levels of mappings and lists",
                    )
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _load_marked(text: str) -> LocatedDocument:
    doc = LocatedDocument(data=None)
    refused = _refused_shape(text)
    if refused is not None:
        doc.problems.append(refused)
        return doc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(
                ConstitutionProblem("the document is empty", line=1, expected="a YAML mapping")
            )
            return doc
        doc.data = _build(node, (), loader, doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        doc.problems.append(
            ConstitutionProblem(
                f"YAML syntax: {exc.problem or exc.context}",
                line=mark.line + 1 if mark else None,
            )
        )
    except yaml.YAMLError as exc:
        doc.problems.append(ConstitutionProblem(f"YAML: {exc}"))
    except _Refused as exc:
        doc.data = None
        doc.problems.append(ConstitutionProblem(f"YAML refused: {exc.why}", line=exc.line))
    except RecursionError:
        doc.data = None
        doc.problems.append(ConstitutionProblem("YAML refused: nested too deeply"))
    finally:
        loader.dispose()
    return doc


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it (same nodes and marks, several times faster), with
    implicit tag resolution memoised: a pure function of the scalar's text and style, and the
    largest remaining cost on a document of 10,000 principals."""

    _memo: dict[tuple[str, bool, bool], str] = {}
    # Constructed values of non-string scalars by (tag, text): ints, booleans, nulls, floats
    # and timestamps are immutable, so one value serves every occurrence.
    _scalars: dict[tuple[str, str], Any] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and isinstance(value, str) and implicit is not None:
            key = (value, bool(implicit[0]), bool(implicit[1]))
            tag = self._memo.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._memo) < 100_000:
                    self._memo[key] = tag
            return tag
        return super().resolve(kind, value, implicit)


_STR = "tag:yaml.org,2002:str"


_MERGE = "tag:yaml.org,2002:merge"
_MAX_CONTAINERS = 2_000_000


class _Refused(Exception):
    def __init__(self, node: Any, why: str) -> None:
        super().__init__(why)
        self.line = node.start_mark.line + 1
        self.why = why


def _build(node: yaml.Node, path: Path, loader: Any, doc: LocatedDocument) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    return _value(node, path, loader, doc)


def _value(node: yaml.Node, path: Path, loader: Any, doc: LocatedDocument) -> Any:
    """Plain value of ``node``; the lines of its keys and items go into ``doc.lines``.

    Written for speed (a document of 10,000 principals has ~100,000 nodes): string scalars,
    the common case, are taken as they are, without the constructor's bookkeeping.
    """
    cls = node.__class__
    if cls is yaml.ScalarNode:
        return node.value if node.tag == _STR else _scalar(node, path, loader, doc)
    lines = doc.lines
    # Aliases share nodes: refuse a node inside itself (a recursive alias) and bound the total
    # (an alias bomb expands exponentially).
    if id(node) in doc.active:
        raise _Refused(node, "a recursive alias (a node that contains itself)")
    doc.built += 1
    if doc.built > _MAX_CONTAINERS:
        raise _Refused(node, f"more than {_MAX_CONTAINERS} mappings and lists (alias expansion?)")
    doc.active.add(id(node))
    try:
        return _container(node, cls, path, loader, doc, lines)
    finally:
        doc.active.discard(id(node))


def _scalar(node: Any, path: Path, loader: Any, doc: LocatedDocument) -> Any:
    value = loader.construct_object(node, deep=True)
    why = _scalar_problem(value)
    if why is None:
        return value
    doc.problems.append(
        ConstitutionProblem(
            why,
            line=node.start_mark.line + 1,
            path=format_path(path),
            expected="a string, a boolean, a finite number or an integer within +-(2**53 - 1)",
        )
    )
    # Its text stands in, so the other checks still run and nothing downstream sees the value.
    return str(node.value)


def _container(
    node: Any, cls: type, path: Path, loader: Any, doc: LocatedDocument, lines: dict[Path, int]
) -> Any:
    if cls is yaml.MappingNode:
        merged = 0
        if any(k.tag == _MERGE for k, _ in node.value):
            explicit = sum(1 for k, _ in node.value if k.tag != _MERGE)
            loader.flatten_mapping(node)  # merged pairs first, then the explicit ones
            merged = len(node.value) - explicit
        out: dict[str, Any] = {}
        explicit_keys: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = (
                key_node.value
                if key_node.tag == _STR
                else loader.construct_object(key_node, deep=True)
            )
            if not isinstance(key, str):
                key = str(key)
            key_path = (*path, key)
            # Explicit keys override merged ones (YAML merge key); only explicit repeats are
            # duplicates.
            is_explicit = index >= merged
            if key in out and is_explicit and key in explicit_keys:
                doc.problems.append(
                    ConstitutionProblem(
                        f"duplicate key {key!r} (first on line {lines.get(key_path)})",
                        line=key_node.start_mark.line + 1,
                        path=format_path(path),
                        expected="each key once",
                    )
                )
                continue
            if is_explicit:
                explicit_keys.add(key)
            lines[key_path] = key_node.start_mark.line + 1
            if value_node.__class__ is yaml.ScalarNode and value_node.tag == _STR:
                out[key] = value_node.value
            else:
                out[key] = _value(value_node, key_path, loader, doc)
        return out
    if cls is yaml.SequenceNode:
        items = []
        for i, item in enumerate(node.value):
            item_path = (*path, i)
            lines[item_path] = item.start_mark.line + 1
            if item.__class__ is yaml.ScalarNode and item.tag == _STR:
                items.append(item.value)
            else:
                items.append(_value(item, item_path, loader, doc))
        return items
    return loader.construct_object(node, deep=True)
