"""``custodes keys create`` issues keys only to principals of the constitution in force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from custodes.log import NoteSigner

ROOT = Path(__file__).resolve().parents[3]
CUSTODES = str(Path(sys.executable).parent / "custodes")


def _keys(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CUSTODES, "keys", *args],
        env={"CUSTODES_DATA_DIR": str(data), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_a_key_for_an_unknown_principal_is_refused_and_nothing_is_issued(tmp_path: Path) -> None:
    refused = _keys(tmp_path, "create", "mallory@nowhere", CUSTODES_DEMO="true")
    assert refused.returncode != 0
    assert "unknown principal 'mallory@nowhere'" in refused.stderr
    assert "alice@lab" in refused.stderr  # says what was expected
    assert "Traceback" not in refused.stderr
    listed = _keys(tmp_path, "list", "--json", CUSTODES_DEMO="true")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []

    issued = _keys(tmp_path, "create", "alice@lab", "--json", CUSTODES_DEMO="true")
    assert issued.returncode == 0, issued.stderr
    assert json.loads(issued.stdout)["principal"] == "alice@lab"


def test_without_any_constitution_the_key_is_issued_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "log.key").write_text(NoteSigner.generate("custodes.local/log").to_key())
    done = _keys(tmp_path, "create", "anyone@lab")
    assert done.returncode == 0, done.stderr
    assert "no constitution is configured" in done.stderr
