"""Witness servers as separate processes (the real ``custodes witness serve`` command)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from custodes.log import ALG_COSIGNATURE_V1, NoteSigner, NoteVerifier

_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WitnessProcess:
    """One witness: its key, its own data folder and database, and its server process."""

    name: str
    data_dir: Path
    log_keys: list[NoteVerifier]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    signer: NoteSigner | None = None
    use_cli: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = self.data_dir / "witness.key"
        if key.exists():
            self.signer = NoteSigner.from_key(key.read_text())
        else:
            self.signer = NoteSigner.generate(self.name, alg=ALG_COSIGNATURE_V1)
            key.write_text(self.signer.to_key() + "\n")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def verifier(self) -> NoteVerifier:
        assert self.signer is not None
        return self.signer.verifier

    def launch(self) -> WitnessProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
        env["PYTHONPATH"] = os.pathsep.join([str(_ROOT / "src"), env.get("PYTHONPATH", "")])
        if self.use_cli:
            args = [
                sys.executable,
                "-c",
                "import sys; from custodes.cli import main; sys.exit(main())",
                "--data-dir",
                str(self.data_dir),
                "witness",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ]
        else:  # the witness-only entry point: same server, without the whole CLI's imports
            args = [
                sys.executable,
                "-m",
                "custodes.witness",
                "--port",
                str(self.port),
                "--key",
                str(self.data_dir / "witness.key"),
                "--db",
                f"sqlite:///{self.data_dir / 'witness.db'}",
                "--workers",
                str(self.workers),
            ]
        for key in self.log_keys:
            args += ["--log", key.to_key()]
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def start(self, timeout: float = 60.0) -> WitnessProcess:
        return self.launch().wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> WitnessProcess:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"witness {self.name} exited: "
                    f"{(self.data_dir / 'server.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"witness {self.name} did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def held(self) -> dict[str, int | None]:
        doc = httpx.get(self.url + "/", timeout=5).json()
        return {log["origin"]: log["size"] for log in doc["logs"]}

    def evidence(self, origin: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(self.url + "/evidence", timeout=5).json()
        return [e for e in items if e["origin"] == origin]


def policy_text(witnesses: list[WitnessProcess], quorum: int) -> str:
    lines = [f"witness {w.name} {w.verifier.to_key()} {w.url}" for w in witnesses]
    lines.append(f"group q {quorum} {' '.join(w.name for w in witnesses)}")
    lines.append("quorum q")
    return "\n".join(lines) + "\n"
