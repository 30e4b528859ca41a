"""A real uvicorn server on loopback in a thread of the test process, over an app the test
built (so the test can hold the deployment and its clock)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["serve", "serving"]


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Start ``app`` on a free loopback port; returns the server, its thread and the port.

    Raises:
        RuntimeError: the server did not start within 20 seconds.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("custodes did not start")
        time.sleep(0.01)
    return server, thread, port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served on loopback for the block; yields its base URL."""
    server, thread, port = serve(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
