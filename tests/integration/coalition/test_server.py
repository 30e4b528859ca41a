"""``/coalition`` on a real server (uvicorn subprocess) running the demo constitution."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from custodes.config import Settings
from tests.support.server import ServerProcess, running_server

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("coalition")
    settings = Settings(
        data_dir=data, demo=True, constitution_file=ROOT / "examples" / "constitution.yaml"
    )
    with running_server(settings, log_path=data / "server.log") as s:
        yield s


def test_analysis_of_the_active_constitution(server: ServerProcess) -> None:
    r = httpx.get(server.url("/coalition"), timeout=60)
    assert r.status_code == 200
    doc = r.json()
    assert doc["constitution"]["version"] == 1
    weights = next(g for g in doc["goals"] if g["goal"] == "use:weights-export")
    assert weights["min_organisations"] == 1 and weights["below_floor"] is True
    assert weights["cheapest"]["rules"][0]["rule"] == "lab-incident-weights"
    assert any("lab-incident-weights" in f for f in doc["findings"])


def test_picture_and_bad_goal(server: ServerProcess) -> None:
    r = httpx.get(
        server.url("/coalition/picture.svg"), params={"goal": "use:cyber-frontier"}, timeout=60
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(r.text.split("\n", 1)[1])
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "minimum coalition for use cyber-frontier" in r.text
    r = httpx.get(server.url("/coalition/picture.svg"), params={"goal": "nope"}, timeout=60)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["where"] == "goal" and "use:weights-export" in error["expected"]
