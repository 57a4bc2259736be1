"""Slow clients hold no connection forever: headers and body must arrive in time."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from core.http.slow_clients import BoundedHeaders
from tests.conftest import HubServer, make_settings


@pytest.fixture
def server(tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    hub = HubServer(make_settings(tmp_path, INDEX_DIR=str(sample_index)))
    hub.app.body_timeout_sec = 0.5  # read when the middleware stack is built, at start
    with hub:
        yield hub


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    return conn


def _reply(conn: socket.socket) -> str:
    """One whole HTTP response (blocks until the hub gives up on the body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_body_that_does_not_arrive_in_time_is_a_408(server: HubServer) -> None:
    with _connect(server.url) as conn:
        conn.sendall(b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"question\": ")  # fmt: skip
        reply = _reply(conn)
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "application/json" in reply and '"request_timeout"' in reply


def test_a_body_that_does_not_arrive_in_time_is_a_408_on_a_framework_route(server: HubServer) -> None:
    with _connect(server.url) as conn:
        conn.sendall(b"POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")  # fmt: skip
        reply = _reply(conn)
    assert reply.startswith("HTTP/1.1 408"), reply


def test_headers_that_do_not_arrive_in_time_close_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BoundedHeaders, "header_timeout_sec", 0.3)

    async def app(scope: dict[str, object], receive: object, send: object) -> None:  # never reached
        raise AssertionError("a request without complete headers reached the app")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=BoundedHeaders, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        with socket.create_connection(sock.getsockname(), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
            assert conn.recv(4096) == b""  # the hub closed it
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
