"""The attack files of data/attacks/ (issue 13), and their body markers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["attack_file", "expand"]

ATTACKS = Path(__file__).resolve().parents[2] / "data" / "attacks"
_MARKER = re.compile(r"@DEEP(OBJ)?(\d+)@")


def attack_file(name: str) -> dict[str, Any]:
    """``data/attacks/<name>.json``."""
    data: dict[str, Any] = json.loads((ATTACKS / f"{name}.json").read_text())
    return data


def expand(template: str) -> bytes:
    """A body template with ``@DEEPn@`` (n nested arrays around 0) and ``@DEEPOBJn@`` (n nested
    objects) expanded."""

    def deep(m: re.Match[str]) -> str:
        n = int(m.group(2))
        if m.group(1):
            return '{"a":' * n + "0" + "}" * n
        return "[" * n + "0" + "]" * n

    return _MARKER.sub(deep, template).encode()
