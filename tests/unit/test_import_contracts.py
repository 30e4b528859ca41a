"""The layer contracts of pyproject.toml hold for the source tree and fail on each violation.

``lint-imports`` (import-linter) runs in ``make test``; here it runs twice over: on ``src/`` as it
is, and on throwaway ``custodes`` trees in ``tmp_path`` that have every layer of the real
configuration and one deliberate violation each, checked with the real contracts (without their
``ignore_imports``, the list of imports issue 16 is still removing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        config: dict[str, Any] = tomllib.load(f)["tool"]["importlinter"]
    return config


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    # Wide, so that no contract's name is wrapped in the report.
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "COLUMNS": "250"}
    return subprocess.run(
        [str(_LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_source_tree_keeps_every_contract() -> None:
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    names = [c["name"] for c in _config()["contracts"]]
    assert all(name.split(" (")[0] in result.stdout for name in names)


def _toml_value(value: object) -> str:
    # The contracts hold only strings and lists of strings; JSON's spelling of both is TOML's.
    return json.dumps(value)


def _throwaway_tree(tmp_path: Path) -> Path:
    """A ``custodes`` package with every module the contracts name, and the real contracts."""
    config = _config()
    modules: set[str] = set()
    for contract in config["contracts"]:
        for layer in contract.get("layers", []):
            for tail in layer.replace(":", "|").split("|"):
                tail = tail.strip()
                if not tail.startswith("("):
                    modules.add(f"{contract['containers'][0]}.{tail}")
        modules.update(contract.get("source_modules", []))
        modules.update(contract.get("forbidden_modules", []))
    src = tmp_path / "src"
    (src / "custodes").mkdir(parents=True)
    for module in sorted(modules):
        parts = module.split(".")
        if parts[-1] == "__main__":
            (src.joinpath(*parts[:-1]) / "__main__.py").write_text("")
            continue
        package = src.joinpath(*parts)
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
    (src / "custodes" / "__init__.py").write_text("")

    lines = ["[tool.importlinter]", f"root_package = {_toml_value(config['root_package'])}"]
    for contract in config["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        for key, value in contract.items():
            if key not in ("ignore_imports", "unmatched_ignore_imports_alerting"):
                lines.append(f"{key} = {_toml_value(value)}")
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return src


def _write(src: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = src / "custodes" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_the_throwaway_tree_keeps_every_contract_without_a_violation(tmp_path: Path) -> None:
    # The control for the cases below: they fail because of their violation, not the tree.
    src = _throwaway_tree(tmp_path)
    _write(
        src,
        {
            "gateway/_service.py": "import custodes.monitors\nfrom custodes.log import x\n",
            "log/_fastjson.py": "",
            "log/__init__.py": "from custodes.log._fastjson import *\nimport custodes.store\n",
            "coalition/_game.py": "from custodes import authority\n",
        },
    )
    result = _lint_imports(tmp_path, src)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


VIOLATIONS = {
    "a lower layer imports a higher one": (
        {"log/_service.py": "import custodes.constitution\n"},
        "Layers of architecture.md",
        "custodes.log._service -> custodes.constitution",
    ),
    "store imports a domain package's tables": (
        {"store/tables.py": "import custodes.witness\n"},
        "Layers of architecture.md",
        "custodes.store.tables -> custodes.witness",
    ),
    "two sibling components import each other's layer": (
        {"custody/_alarms.py": "from custodes import witness\n"},
        "Layers of architecture.md",
        "custodes.custody._alarms -> custodes.witness",
    ),
    "a component imports the server for a type only": (
        {
            "gateway/_build.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from custodes.server import Context\n"
            )
        },
        "No domain package imports custodes.server",
        "custodes.gateway._build -> custodes.server",
    ),
    "a package imports another's private module": (
        {
            "log/_fastjson.py": "",
            "constitution/_read.py": "from custodes.log._fastjson import canonical_json\n",
        },
        "No package imports another package's _private modules",
        "custodes.constitution._read -> custodes.log._fastjson",
    ),
    "a private module imported inside a function": (
        {
            "monitors/_train.py": "",
            "cli/monitors.py": "def train():\n    from custodes.monitors._train import fit\n",
        },
        "No package imports another package's _private modules",
        "custodes.cli.monitors -> custodes.monitors._train",
    ),
    "two modules of one package import each other": (
        {
            "gateway/_relay.py": "from custodes.gateway import _stream\n",
            "gateway/_stream.py": "from custodes.gateway._relay import relay\n",
        },
        "No import cycles",
        "No cycles are allowed in custodes.gateway.",
    ),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_violation_breaks_its_contract(tmp_path: Path, case: str) -> None:
    files, contract, offence = VIOLATIONS[case]
    src = _throwaway_tree(tmp_path)
    _write(src, files)
    result = _lint_imports(tmp_path, src)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    names = [c["name"] for c in _config()["contracts"] if c["name"].startswith(contract)]
    assert len(names) == 1, f"no single contract is named {contract!r}"
    assert f"{names[0]} BROKEN" in out, out
    report = out.split("Broken contracts", 1)[1]
    assert offence in report, out


def test_every_top_level_module_has_a_layer_and_no_package_may_import_the_server() -> None:
    # A package left out of the layers is constrained by none of them: adding one is a decision.
    import pkgutil

    import custodes

    config = _config()
    contracts = {c["id"]: c for c in config["contracts"]}
    layered = {
        tail.strip().strip("()")
        for layer in contracts["layers"]["layers"]
        for tail in layer.replace(":", "|").split("|")
    }
    found = {info.name for info in pkgutil.iter_modules(custodes.__path__)}
    assert sorted(found - layered) == [], "add these to [tool.importlinter] layers"
    packages = {info.name for info in pkgutil.iter_modules(custodes.__path__) if info.ispkg}
    sources = {m.removeprefix("custodes.") for m in contracts["no-server"]["source_modules"]}
    assert sorted(packages - {"cli", "server"} - sources) == [], "add these to no-server"
