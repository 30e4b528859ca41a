"""YAML to plain data, remembering the line of every node so each problem can name its line.

PyYAML's compose API gives nodes with start marks; building the plain values ourselves also lets
us refuse duplicate mapping keys, which ``yaml.safe_load`` silently lets the last one win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from custodes.errors import ConstitutionProblem

__all__ = ["LocatedDocument", "Path", "load_located"]

Path = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """A parsed document and the 1-based line of each path in it."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[ConstitutionProblem] = field(default_factory=list)

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
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
    """Parse one YAML document. Syntax errors and duplicate keys become problems."""
    loader = _Loader(text)
    doc = LocatedDocument(data=None)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(ConstitutionProblem("the document is empty", line=1,
                                                    expected="a YAML mapping"))
            return doc
        doc.data = _build(node, (), loader, doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        doc.problems.append(ConstitutionProblem(
            f"YAML syntax: {exc.problem or exc.context}",
            line=mark.line + 1 if mark else None,
        ))
    except yaml.YAMLError as exc:
        doc.problems.append(ConstitutionProblem(f"YAML: {exc}"))
    finally:
        loader.dispose()
    return doc


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it (same nodes and marks, several times faster), with
    implicit tag resolution memoised: a pure function of the scalar's text and style, and the
    largest remaining cost on a document of 10,000 principals."""

    _memo: dict[tuple[str, bool, bool], str] = {}

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


def _build(node: yaml.Node, path: Path, loader: Any, doc: LocatedDocument) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = (key_node.value if key_node.tag == _STR
                   else loader.construct_object(key_node, deep=True))
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                doc.problems.append(ConstitutionProblem(
                    f"duplicate key {key!r} (first on line {doc.lines.get((*path, key))})",
                    line=key_node.start_mark.line + 1, path=format_path(path),
                    expected="each key once",
                ))
                continue
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), loader, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), loader, doc) for i, item in enumerate(node.value)]
    if node.tag == _STR:
        return node.value  # the common case, without the constructor's bookkeeping
    return loader.construct_object(node, deep=True)
