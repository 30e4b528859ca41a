"""``custodes provenance`` on a deployment's data folder: hash, register, lineage, verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from custodes.authority import SigningKey
from custodes.clock import SystemClock
from custodes.config import Settings
from custodes.wiring import Records, build_records, open_core
from tests.support.demo_api import run_cli
from tests.unit.provenance.conftest import Pipeline, write_weights

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Path, Records]]:
    data = tmp_path / "data"
    core = open_core(Settings(data_dir=data, demo=True))
    records = build_records(core)
    yield data, records
    records.custody.close()
    core.close()


def test_hash_prints_the_model_signing_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_weights(tmp_path / "w", b"q")
    code, out, _ = run_cli(["provenance", "hash", str(folder)], capsys)
    assert code == 0 and out.startswith("sha256:") and "(4 files)" in out
    code, out, _ = run_cli(["provenance", "hash", "--manifest", str(folder)], capsys)
    assert code == 0 and len(json.loads(out)["resources"]) == 4


def test_lineage_and_verify_of_a_trained_model(
    deployment: tuple[Path, Records], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, records = deployment
    keys = {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}
    pipeline = Pipeline(records.provenance, records.authority, keys, SystemClock(), tmp_path)  # type: ignore[arg-type]
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    produced = pipeline.produce("cli")
    records.provenance.register_run(
        "pipeline@lab", pipeline.sign(pipeline.statement(plan, produced)), grant_id=grant
    )
    args = ["--data-dir", str(data)]
    code, out, err = run_cli(
        [*args, "provenance", "lineage", produced.digest, "--svg", str(tmp_path / "l.svg")], capsys
    )
    assert code == 0, err
    assert "requested by dave@lab" in out and "(root)" in out
    assert (tmp_path / "l.svg").read_text().startswith("<svg")
    code, out, err = run_cli([*args, "provenance", "verify", produced.digest], capsys)
    assert code == 0, err
    assert "ok: 5 artifacts and 1 runs verified" in out
    # A stored envelope changed by one byte: verify says so and fails.
    engine = sa.create_engine(f"sqlite:///{data / 'custodes.db'}")
    with engine.begin() as conn:
        env = bytearray(conn.execute(sa.text("SELECT envelope FROM provenance_runs")).scalar_one())
        env[len(env) // 2] ^= 0x01
        conn.execute(sa.text("UPDATE provenance_runs SET envelope = :e"), {"e": bytes(env)})
    engine.dispose()
    code, out, err = run_cli([*args, "provenance", "verify", produced.digest], capsys)
    assert code != 0
    assert "envelope" in out + err
    code, _, err = run_cli(
        [
            *args,
            "provenance",
            "register",
            "dataset",
            "--as",
            "dave@lab",
            "--name",
            "x",
            "--digest",
            "sha256:" + "1" * 64,
        ],
        capsys,
    )
    assert code != 0 and "by its file manifest" in err
