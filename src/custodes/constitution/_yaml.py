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
from array import array
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

    The event reader keeps lines as a compact tree (``tree``, walked by :meth:`line`); the
    composing reader (:func:`_load_marked`, the reference the tests hold the event reader to)
    as a dict of paths (``lines``).
    """

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[ConstitutionProblem] = field(default_factory=list)
    active: set[int] = field(default_factory=set, repr=False)
    built: int = 0
    tree: Any = field(default=None, repr=False)
    root_line: int | None = None
    indexed: bool = False
    dropped: int = 0  # problems found past the most reported

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        if not self.indexed:
            p = tuple(path)
            while p:
                if p in self.lines:
                    return self.lines[p]
                p = p[:-1]
            return self.lines.get((), None)
        line, node = self.root_line, self.tree
        for part in path:
            if isinstance(node, dict) and part in node:
                line, node = node[part]
            elif isinstance(node, _SeqLines) and isinstance(part, int) and part < len(node.lines):
                line, node = node.lines[part], node.children.get(part)
            else:
                break
        return line


def format_path(path: Sequence[str | int]) -> str:
    """A document path for messages: ``access_rules[2].quorum``."""
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
    return _load_events(text)


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
    """``value`` as at most about 40 characters, for a message (a huge integer is not converted:
    that is slow, and past 4,300 digits Python refuses).
    """
    text = str(value) if not isinstance(value, int) or value.bit_length() < 1000 else "(huge)"
    return text if len(text) <= 40 else text[:20] + "..." + text[-8:]


class _SeqLines:
    """Lines of a sequence's items (compact: 4 bytes an item) and the line trees of the items
    that are containers."""

    __slots__ = ("children", "lines")

    def __init__(self) -> None:
        """An empty sequence: no item lines, no child trees."""
        self.lines = array("I")
        self.children: dict[int, Any] = {}


_MERGE_KEY: Any = object()


class _Stop(Exception):
    """The reader stops: ``problem`` says why."""

    def __init__(self, problem: ConstitutionProblem) -> None:
        """Stop with ``problem`` (its message is the exception's)."""
        super().__init__(problem.message)
        self.problem = problem


def _load_events(text: str) -> LocatedDocument:
    """One pass over libyaml's event stream: the plain value, a compact tree of the line of
    every key and item, and every problem (syntax, aliases, depth, duplicate keys, scalars with
    no JSON form). Nothing is composed, so time and memory stay linear in the text, whatever
    the document (the composer's node graph costs ~200 bytes a scalar).

    The same values and lines as :func:`_load_marked` (the same resolver and constructors;
    merge keys of inline mappings, explicit keys winning; the first of duplicate keys kept).
    """
    doc = LocatedDocument(data=None)
    loader = _Loader(text)
    get_event = loader.get_event
    resolve = loader.resolve
    values = _Loader._scalars
    # Open containers: [value, line tree, path, pending key, pending key line, merged, explicit
    # key lines].
    stack: list[list[Any]] = []
    try:
        get_event()  # stream start
        first = get_event()
        if first.__class__ is not yaml.DocumentStartEvent:
            raise _Stop(
                ConstitutionProblem("the document is empty", line=1, expected="a YAML mapping")
            )
        while True:
            event = get_event()
            cls = event.__class__
            line = event.start_mark.line + 1
            tree: Any = None
            if cls is _SCALAR:
                # The common case inline (a plain string into a list or as a mapping's value):
                # the loop runs once per scalar, ~300,000 times for a megabyte of them.
                if event.tag is None and resolve(_SCALAR_NODE, event.value, event.implicit) == _STR:
                    value = event.value
                    frame = stack[-1] if stack else None
                    if frame is not None and frame[0].__class__ is list:
                        frame[0].append(value)
                        frame[1].lines.append(line)
                        continue
                else:
                    value = _scalar_value(loader, resolve, values, event, stack, doc)
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                # Bounded here, while reading: the schema and semantic passes recurse over the
                # data, and a hostile document could otherwise nest past the interpreter's stack.
                if len(stack) >= MAX_DEPTH:
                    raise _Stop(
                        ConstitutionProblem(
                            f"YAML refused: nested more than {MAX_DEPTH} levels deep",
                            line=line,
                            expected=f"at most {MAX_DEPTH} levels of mappings and lists",
                        )
                    )
                path = _child_path(stack)
                if cls is yaml.MappingStartEvent:
                    stack.append([{}, {}, path, _NO_KEY, 0, None, None, line])
                else:
                    stack.append([[], _SeqLines(), path, _NO_KEY, 0, None, None, line])
                continue
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                frame = stack.pop()
                value, tree, line = frame[0], frame[1], frame[7]
                if frame[5] is not None:
                    # YAML merge keys: merged pairs first, explicit keys win.
                    merged = frame[5]
                    merged_lines = frame[6]
                    for key, v in value.items():
                        merged[key] = v
                        merged_lines[key] = tree[key]
                    value, tree = merged, merged_lines
            elif cls is yaml.AliasEvent:
                # Aliases are how a few lines of YAML expand into gigabytes ("billion laughs"),
                # and a constitution has no need of them: refused, never expanded.
                raise _Stop(
                    ConstitutionProblem(
                        f"YAML refused: alias *{_short(event.anchor)} (aliases are not allowed "
                        "in a constitution; write the value out)",
                        line=line,
                    )
                )
            elif cls is yaml.DocumentEndEvent:
                break
            else:  # pragma: no cover - libyaml emits nothing else inside a document
                raise _Stop(ConstitutionProblem(f"YAML: unexpected {cls.__name__}", line=line))
            if not stack:
                doc.data, doc.tree, doc.root_line = value, tree, line
                continue
            _attach(stack[-1], value, tree, line, cls is yaml.ScalarEvent, doc)
        end = get_event()
        if end.__class__ is not yaml.StreamEndEvent:
            raise _Stop(
                ConstitutionProblem(
                    "YAML syntax: but found another document", line=end.start_mark.line + 1
                )
            )
    except _Stop as stop:
        doc.data, doc.tree = None, None
        doc.problems.append(stop.problem)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        doc.data, doc.tree = None, None
        doc.problems.append(
            ConstitutionProblem(
                f"YAML syntax: {exc.problem or exc.context}",
                line=mark.line + 1 if mark else None,
            )
        )
    except yaml.YAMLError as exc:
        doc.data, doc.tree = None, None
        doc.problems.append(ConstitutionProblem(f"YAML: {exc}"))
    finally:
        loader.dispose()
    doc.indexed = True
    return doc


_NO_KEY: Any = object()
_SCALAR = yaml.ScalarEvent
_SCALAR_NODE = yaml.ScalarNode


def _child_path(stack: list[list[Any]]) -> Path:
    """The path of the next value the innermost open container receives: its item index, or the
    pending key (a merge key's values belong to the mapping itself).
    """
    if not stack:
        return ()
    frame = stack[-1]
    if frame[0].__class__ is list:
        return (*frame[2], len(frame[0]))
    key = frame[3]
    return frame[2] if key is _MERGE_KEY else (*frame[2], key)


def _scalar_value(
    loader: Any, resolve: Any, values: dict[Any, Any], event: Any, stack: Any, doc: Any
) -> Any:
    """The plain value of a scalar event, resolved and constructed as the composing reader would; a
    value with no JSON form is a problem, and its text stands in.

    Non-string values are cached by (tag, text) in ``values``: they are immutable, and a large
    document repeats the same few (``true``, ``1``) thousands of times.
    """
    tag = event.tag
    if tag is None or tag == "!":
        tag = resolve(yaml.ScalarNode, event.value, event.implicit) if tag is None else _STR
    if tag == _STR:
        return event.value
    if tag == _MERGE:
        return _MERGE_KEY
    key = (tag, event.value)
    if key in values:
        return values[key]
    value = loader.construct_object(
        yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style),
        deep=True,
    )
    why = _scalar_problem(value)
    if why is not None:
        doc.problems.append(
            ConstitutionProblem(
                why,
                line=event.start_mark.line + 1,
                path=format_path(_child_path(stack)),
                expected="a string, a boolean, a finite number or an integer within +-(2**53 - 1)",
            )
        )
        # Its text stands in, so the other checks still run and nothing downstream sees it.
        return str(event.value)
    # Bounded: a document of a million distinct numbers must not grow the cache with it.
    if len(values) < 100_000:
        values[key] = value
    return value


def _attach(frame: list[Any], value: Any, tree: Any, line: int, scalar: bool, doc: Any) -> None:
    """Add a finished value to the open container ``frame`` (the event reader's stack entry:
    container, line tree, path, pending key, the key's line, merged values, their lines, the
    container's line).

    In a mapping a value is a key or the value of the pending key; a merge key's value is kept
    aside and merged when the mapping closes (explicit keys win, as the YAML merge key says).
    A repeated explicit key is a problem and the first value is kept.

    Raises:
        _Stop: a merge key where none is allowed, or one whose value is not mappings.
    """
    container = frame[0]
    if value is _MERGE_KEY and (container.__class__ is list or frame[3] is not _NO_KEY):
        raise _Stop(
            ConstitutionProblem(
                f"YAML syntax: could not determine a constructor for the tag {_MERGE!r}",
                line=line,
            )
        )
    if container.__class__ is list:
        lines = frame[1]
        if tree is not None:
            lines.children[len(container)] = tree
        container.append(value)
        lines.lines.append(line)
        return
    if frame[3] is _NO_KEY:
        # A key. A merge key (<<) takes a mapping (or a list of them) to merge.
        if value is _MERGE_KEY:
            frame[3] = _MERGE_KEY
            return
        frame[3] = value if value.__class__ is str else str(value)
        frame[4] = line
        return
    key, key_line = frame[3], frame[4]
    frame[3] = _NO_KEY
    if key is _MERGE_KEY:
        merges = value if isinstance(value, list) else [value]
        trees = (
            [tree.children.get(i) for i in range(len(value))] if isinstance(value, list) else [tree]
        )
        if not isinstance(value, dict | list) or not all(isinstance(m, dict) for m in merges):
            found = "scalar" if scalar else "sequence" if isinstance(value, list) else "mapping"
            what = "a mapping" if isinstance(value, list) else "a mapping or list of mappings"
            if isinstance(value, list):
                found = next(
                    "sequence" if isinstance(m, list) else "scalar"
                    for m in merges
                    if not isinstance(m, dict)
                )
            raise _Stop(
                ConstitutionProblem(
                    f"YAML syntax: expected {what} for merging, but found {found}", line=line
                )
            )
        if frame[5] is None:
            frame[5], frame[6] = {}, {}
        for m, t in zip(merges, trees, strict=True):
            for k, v in m.items():
                if k not in frame[5]:
                    frame[5][k] = v
                    frame[6][k] = t[k] if t is not None and k in t else (key_line, None)
        return
    lines = frame[1]
    if key in container:
        doc.problems.append(
            ConstitutionProblem(
                f"duplicate key {key!r} (first on line {lines[key][0]})",
                line=key_line,
                path=format_path(frame[2]),
                expected="each key once",
            )
        )
        return
    container[key] = value
    lines[key] = (key_line, tree)


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
    """The composing reader: PyYAML's node graph turned into plain values and lines.

    Slower and hungrier than :func:`_load_events`, which is used; it is the reference the tests
    hold the event reader to (the same values, lines and problems).
    """
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
        """The implicit tag of a scalar, memoised by its text and style (PyYAML's resolver runs a
        list of regular expressions per scalar).
        """
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
    """The composing reader refuses the document (a recursive alias, or too many containers)."""

    def __init__(self, node: Any, why: str) -> None:
        """Refused at ``node``'s line, for ``why``."""
        super().__init__(why)
        self.line = node.start_mark.line + 1
        self.why = why


def _build(node: yaml.Node, path: Path, loader: Any, doc: LocatedDocument) -> Any:
    """The plain value of the document's root node, its line recorded."""
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
    """The plain value of a non-string scalar node; one with no JSON form is a problem, and its text
    stands in.
    """
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
    """The plain value of a mapping or sequence node, each key's and item's line recorded.

    Merge keys (``<<``) are flattened first, and explicit keys override merged ones; only a
    repeated explicit key is a duplicate (reported, first value kept).
    """
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
