"""A demo server on loopback with API keys for some principals, and small call helpers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.cli import main
from custodes.config import Settings
from custodes.gateway import KeyStore
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine
from tests.support.server import ServerProcess, running_server


@contextmanager
def demo_server_with_keys(
    data: Path, principals: Iterable[str]
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """A demo server on ``data`` and an API key for each of ``principals``."""
    signer = NoteSigner.generate("custodes.local/log")
    (data / "log.key").write_text(signer.to_key())
    with running_server(Settings(data_dir=data, demo=True)) as srv:
        engine = create_db_engine(f"sqlite:///{data / 'custodes.db'}")
        log = TransparencyLog(engine, signer)
        store = KeyStore(engine, log, log.clock)
        keys = {p: store.create(p).secret for p in principals}
        log.close()
        engine.dispose()
        yield srv, keys


def call(
    srv: ServerProcess, key: str | None, method: str, path: str, body: Any = None
) -> httpx.Response:
    """One request with ``key`` as the bearer key (none if ``key`` is None)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, srv.url(path), json=body, headers=headers, timeout=30)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the custodes CLI in process: (exit code, stdout, stderr)."""
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err
