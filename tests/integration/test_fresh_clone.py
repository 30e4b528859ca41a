"""`git clone && make test` works anywhere: a clone with nothing beside it collects every test.

The suite once collected nothing unless a `shared/` folder sat next to the repository. This test
clones the current commit into an empty temporary folder and collects the tests there, with the
clone's own sources first on the path: every file the tests need must be in the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def test_a_clone_with_nothing_beside_it_collects_every_test(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone (CI runs from a clone)")
    commit = _git("rev-parse", "HEAD", cwd=REPO)
    alone = tmp_path / "alone"
    alone.mkdir()
    _git("clone", "--quiet", "--no-checkout", str(REPO), str(alone / "custodes"), cwd=alone)
    clone = alone / "custodes"
    _git("checkout", "--quiet", commit, cwd=clone)
    assert sorted(p.name for p in alone.iterdir()) == ["custodes"]  # nothing beside it

    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env["PYTHONPATH"] = str(clone / "src")
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = collected.stdout + collected.stderr
    assert collected.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    # "N errors" would follow the count: a file that fails to import is an error, not a skip.
    found = re.fullmatch(r"(\d+)(?:/\d+)? tests collected(?: \(\d+ deselected\))? in .*", summary)
    assert found, summary
    assert int(found.group(1)) > 100, summary
    # And what was collected is the clone's code, not this checkout's.
    where = subprocess.run(
        [sys.executable, "-c", "import custodes; print(custodes.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert Path(where.stdout.strip()).is_relative_to(clone), where.stdout + where.stderr
