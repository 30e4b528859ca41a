"""``wiring.all_entry_types`` knows every package's log entry types, through public names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import custodes

SRC = Path(custodes.__file__).parent


def _types_after(statement: str) -> set[str]:
    # A fresh interpreter: this one has imported every package already.
    script = f"{statement}\nfrom custodes.log import entry_types\nprint(sorted(entry_types()))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(eval(out))  # noqa: S307 - our own printed list


def test_every_package_with_entry_types_is_imported_by_the_function() -> None:
    # Read from the function itself: the wiring's other modules import most packages anyway, so
    # only the function's own import lines show that a newly added package was listed.
    tree = ast.parse((SRC / "wiring" / "_entry_types.py").read_text())
    (function,) = (
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "all_entry_types"
    )
    imported = {a.name for n in ast.walk(function) if isinstance(n, ast.Import) for a in n.names}
    with_entries = {f"custodes.{p.parent.name}" for p in SRC.glob("*/_entries.py")}
    assert with_entries == imported  # the log's own types load with custodes.log itself


def test_all_entry_types_registers_what_the_private_modules_define() -> None:
    private = [f"custodes.{p.parent.name}._entries" for p in SRC.glob("*/_entries.py")]
    private.append("custodes.log._types")
    direct = _types_after("\n".join(f"import {m}" for m in private))
    loaded = _types_after("from custodes.wiring import all_entry_types\nall_entry_types()")
    assert loaded == direct
    assert len(loaded) > 20
