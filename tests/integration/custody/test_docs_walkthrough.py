"""docs/register-a-finding.md as written: every ``sh`` block, in order, in one shell, against a
real demo server, from a folder laid out like the repository after ``make run``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.demo_api import demo_server_with_keys

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "register-a-finding.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S)


def test_every_command_of_register_a_finding_works_as_written(tmp_path: Path) -> None:
    blocks = sh_blocks(DOC.read_text())
    assert len(blocks) >= 8, "the walkthrough's command blocks"
    # The repository's layout after `make run`: examples/, .venv/bin, the demo's data folder.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    data = tmp_path / ".custodes" / "demo"
    data.mkdir(parents=True)
    with demo_server_with_keys(data, []) as (srv, _):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CUSTODES_") or k == "CUSTODES_TEST_NO_POSTGRES"
        }
        host, _, port = srv.base_url.removeprefix("http://").rstrip("/").rpartition(":")
        env["CUSTODES_HOST"], env["CUSTODES_PORT"] = host, port
        script = "set -euo pipefail\n" + "\n".join(blocks)
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "CUSTODES-2026-0001 registered" in out
    assert "rm=valid em=proposed flags=vendor-aware,fix-ready" in out
    assert "grant g-" in out
    assert (tmp_path / "poc-read.tar").read_bytes() == (tmp_path / "poc.tar").read_bytes()
    osv = json.loads((tmp_path / "osv.json").read_text())
    assert osv["affected"][0]["package"]["purl"] == "pkg:pypi/osv-imaging"
    cve = json.loads((tmp_path / "cve.json").read_text())
    assert cve["affected"][0]["versions"][0]["lessThan"] == "2.4.1"
    # The doc's last step: the revealed details open the commitment logged at registration.
    revealed = json.loads(out[out.rindex('{\n  "commitment"') :])
    details = (tmp_path / "details.bin").read_bytes()
    assert details == (tmp_path / "poc.tar").read_bytes()
    digest = hashlib.sha256(bytes.fromhex(revealed["salt"]) + details).hexdigest()
    assert digest == revealed["commitment"]
