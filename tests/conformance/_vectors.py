"""Where the carried test vectors (data/testvectors) are, for parametrizing at collection time."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.conftest import DATA

MERKLE = DATA / "testvectors" / "merkle" / "testdata"
NOTE = DATA / "testvectors" / "note"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def b64(text: str | None) -> bytes:
    return base64.b64decode(text) if text is not None else b""


def files(folder: Path) -> list[Path]:
    """Every JSON vector under ``folder``; empty (so the test fails loudly) when it is missing."""
    return sorted(folder.rglob("*.json")) if folder.exists() else []
