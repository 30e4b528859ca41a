"""Bounded parsing on a real server (issue 13, class 8), from ``data/attacks/bounded_parsing.json``.

Integers past 64 bits in paths and queries, JSON too deep or with such integers, and bodies over
the size limit (by Content-Length, or chunked) get a 4xx in the one JSON error shape, never a
500; the refusal is in the server's log; and the server answers normally afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from custodes.config import Settings
from custodes.log import NoteSigner
from tests.support.attacks import attack_file, expand
from tests.support.server import ServerProcess, running_server

VARIANTS = attack_file("bounded_parsing")["server"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("bounded")
    (data / "log.key").write_text(NoteSigner.generate("custodes.local/log").to_key())
    with running_server(Settings(data_dir=data, demo=True), log_path=data / "server.log") as p:
        yield p


def _raw(server: ServerProcess, head: bytes, chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request by hand (for bodies httpx would not send); the server's whole answer."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server may answer and close mid-body
            for chunk in chunks:
                sock.sendall(chunk)
        answer = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in answer or not _complete(answer):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _parse(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), orjson.loads(body)


def _request(server: ServerProcess, attack: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = attack["path"].encode()
    if "content_length" in attack:
        head = (
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(attack["content_length"]).encode() + b"\r\n\r\n"
        )
        return _parse(_raw(server, head))
    if "chunked_bytes" in attack:
        head = (
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"a" * (1 << 20)
        count = attack["chunked_bytes"] // len(piece) + 1
        chunks = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(count))
        return _parse(_raw(server, head, chunks))
    body = expand(attack["body"]) if "body" in attack else None
    response = httpx.request(
        attack["method"],
        server.url(attack["path"]),
        content=body,
        headers={"content-type": "application/json"} if body is not None else {},
        timeout=30,
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("attack", VARIANTS, ids=lambda a: a["name"])
def test_each_variant_is_an_exact_4xx_not_a_500(
    server: ServerProcess, attack: dict[str, Any]
) -> None:
    status, body = _request(server, attack)
    assert status == attack["status"], body
    error = body["error"]
    assert (error["code"], error.get("where")) == (attack["code"], attack["where"]), error
    assert error["message"]
    assert httpx.get(server.url("/healthz"), timeout=10).status_code == 200


def test_body_refusals_are_in_the_server_log(server: ServerProcess) -> None:
    r = httpx.post(
        server.url("/monitors/screen"),
        content=expand('{"text":"x","detectors":@DEEP300@}'),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    deadline = time.monotonic() + 5
    while "refused POST /monitors/screen" not in server.output():
        assert time.monotonic() < deadline, server.output()[-2000:]
        time.sleep(0.05)
    assert "the JSON is nested too deeply" in server.output()


def test_a_body_within_the_limits_still_reaches_its_route(server: ServerProcess) -> None:
    # Unauthenticated, so the route itself answers 401: the body got through the check.
    r = httpx.post(server.url("/monitors/screen"), json={"text": "hello", "detectors": [[1]]})
    assert r.status_code in {401, 422}, r.text
    assert r.json()["error"]["code"] != "too_large"
