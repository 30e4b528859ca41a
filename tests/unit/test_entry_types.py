"""``load_all`` knows every package's log entry types, through the packages' public names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import custodes
from custodes import entry_types

SRC = Path(custodes.__file__).parent


def _types_after(statement: str) -> set[str]:
    # A fresh interpreter: this one has imported every package already.
    script = f"{statement}\nfrom custodes.log import entry_types\nprint(sorted(entry_types()))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(eval(out))  # noqa: S307 - our own printed list


def test_every_package_with_entry_types_is_listed() -> None:
    with_entries = {"custodes." + p.parent.name for p in SRC.glob("*/_entries.py")} | {
        "custodes.log"
    }  # the log's own types live in log/_types.py
    assert with_entries == set(entry_types._PACKAGES)


def test_load_all_registers_what_the_private_modules_define() -> None:
    private = [f"custodes.{p.parent.name}._entries" for p in SRC.glob("*/_entries.py")]
    private.append("custodes.log._types")
    direct = _types_after("\n".join(f"import {m}" for m in private))
    loaded = _types_after("from custodes.entry_types import load_all\nload_all()")
    assert loaded == direct
    assert len(loaded) > 20
