"""The local model served on loopback from a thread of the current process (the demo's
``custodes serve`` runs it beside the deployment, as it runs the witnesses beside the log)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from custodes.errors import ConfigError
from custodes.localmodel._app import local_model_app
from custodes.localmodel._service import LocalModelService

__all__ = ["RunningLocalModel", "serve_local_model"]

_START_TIMEOUT = 30.0


@dataclass
class RunningLocalModel:
    """A local model server running in a thread.

    Attributes:
        url: its base URL (``http://127.0.0.1:PORT``; the OpenAI base URL is ``url + "/v1"``).
        service: the model it serves.
    """

    url: str
    service: LocalModelService
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        """Stop serving (waits for the thread)."""
        self._server.should_exit = True
        self._thread.join(_START_TIMEOUT)


def serve_local_model(
    service: LocalModelService, *, name: str, token: str, host: str = "127.0.0.1", port: int = 0
) -> RunningLocalModel:
    """Serve ``service`` as the OpenAI model ``name`` on ``host:port`` (0: a free port), with
    the operator's routes open to ``token``.

    Raises:
        ConfigError: the address cannot be bound, or the server did not start in 30 s.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"the local model cannot listen on {host}:{port}: {exc}") from None
    bound = sock.getsockname()[1]
    app = local_model_app(service, name=name, planter=service, token=token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="local-model", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConfigError(f"the local model server did not start on {host}:{bound}")
        time.sleep(0.02)
    shown = f"[{host}]" if ":" in host else host
    return RunningLocalModel(f"http://{shown}:{bound}", service, server, thread)
