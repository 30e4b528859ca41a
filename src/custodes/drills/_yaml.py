"""Scenario YAML to plain data, bounded, with the line of every node for error messages.

A scenario may come from anyone (a lab's overseers write their own), so reading one is bounded:
at most :data:`MAX_SCENARIO_BYTES` of text and :data:`MAX_DEPTH` levels of nesting; aliases are
refused (an alias bomb of a few kilobytes expands to gigabytes), and so are duplicate keys, which
``yaml.safe_load`` would silently let the last one win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from custodes.errors import DrillError

__all__ = ["MAX_DEPTH", "MAX_SCENARIO_BYTES", "Located", "load_located"]

MAX_SCENARIO_BYTES = 256 * 1024
"""The largest scenario file read (the built-in ones are a few kilobytes)."""
MAX_DEPTH = 16
"""The deepest nesting of mappings and lists (a constitution edit's value needs a few)."""

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """Parsed data and the 1-based line of each path in it."""

    data: Any
    lines: dict[_Path, int]

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())


def load_located(text: str, *, name: str) -> Located:
    """Read ``text`` (a YAML scenario called ``name`` in messages) into plain data.

    Raises:
        DrillError: the text is too large, not YAML, nested too deeply, uses an alias or a
            duplicate key, or holds a value that is not plain data (timestamps, binaries).
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_SCENARIO_BYTES:
        raise DrillError(
            f"{name}: the scenario is {size} bytes; at most {MAX_SCENARIO_BYTES} are read",
            hint="split it into several drills",
        )
    try:
        node = yaml.compose(text, Loader=_Loader)
    except _Refused as exc:
        raise DrillError(f"{name} line {exc.line}: {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DrillError(f"{name}{where}: not YAML: {problem}") from None
    if node is None:
        raise DrillError(f"{name}: the scenario is empty", hint="see docs/drills.md")
    lines: dict[_Path, int] = {}
    return Located(_build(node, (), lines, name, 0), lines)


def _build(node: yaml.Node, path: _Path, lines: dict[_Path, int], name: str, depth: int) -> Any:
    """Plain data from a composed YAML node, recording each value's line by its path: string
    keys only, each once, at most ``MAX_DEPTH`` deep, scalars as :func:`_scalar` reads them.
    Building from the node graph (not ``yaml.load``) means no tag ever constructs an object.

    Raises:
        DrillError: any of these does not hold (with the line).
    """
    line = node.start_mark.line + 1
    lines[path] = line
    if depth > MAX_DEPTH:
        raise DrillError(
            f"{name} line {line}: nested more than {MAX_DEPTH} levels deep",
            hint="a scenario needs a few levels; flatten it",
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise DrillError(
                    f"{name} line {key_node.start_mark.line + 1}: a mapping key must be a string"
                )
            key = key_node.value
            if key in out:
                raise DrillError(
                    f"{name} line {key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            out[key] = _build(value_node, (*path, key), lines, name, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), lines, name, depth + 1) for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, name, line)
    raise DrillError(f"{name} line {line}: not plain data")


class _Refused(Exception):
    """A document the loader refuses while composing (raised from inside PyYAML), with
    its line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Loader(yaml.SafeLoader):
    """Refuses anchors and aliases as the composer meets them, before any node is shared."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                "YAML anchors and aliases are not allowed in a scenario (write the value out)",
                event.start_mark.line + 1,
            )
        return super().compose_node(parent, index)


_PLAIN = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


def _scalar(node: yaml.ScalarNode, name: str, line: int) -> Any:
    if node.tag not in _PLAIN:
        raise DrillError(
            f"{name} line {line}: {node.value[:40]!r} is a {node.tag.rsplit(':', 1)[-1]}, "
            "not plain data (quote it to make it a string)"
        )
    constructor = yaml.SafeLoader.yaml_constructors[node.tag]
    value = constructor(yaml.SafeLoader(""), node)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53 - 1:
        raise DrillError(f"{name} line {line}: integer {value} is out of range")
    return value
