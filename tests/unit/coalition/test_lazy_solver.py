"""CP-SAT is imported where a model is solved, not when the server or the CLI starts: importing
``ortools.sat.python.cp_model`` costs about 1.8 s of CPU, which every server start paid."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(statements: str) -> list[str]:
    script = (
        f"import sys\n{statements}\n"
        "print(sorted(m for m in sys.modules if m == 'ortools' or m.startswith('ortools.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return [line for line in done.stdout.strip().splitlines() if line]


def test_starting_the_server_does_not_import_the_solver() -> None:
    # The server's app factory, every route module it mounts, the wiring that starts the
    # coalition component (start_coalition) and the CLI.
    statements = (
        "import pkgutil, importlib, custodes.server, custodes.server.routes, custodes.cli\n"
        "import custodes.wiring, custodes.cli.coalition\n"
        "from custodes.coalition import CoalitionService, analyze, start_coalition\n"
        "for m in pkgutil.iter_modules(custodes.server.routes.__path__):\n"
        "    importlib.import_module(f'custodes.server.routes.{m.name}')"
    )
    assert _loaded_after(statements) == ["[]"]


def test_the_probe_sees_the_solver_when_it_is_imported() -> None:
    # The counterpart: the same probe reports CP-SAT once it is imported, so the test above
    # does not pass because the probe cannot see it.
    loaded = _loaded_after("import custodes.coalition\nfrom ortools.sat.python import cp_model")
    assert loaded and "ortools.sat.python.cp_model" in loaded[0]
