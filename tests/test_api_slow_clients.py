"""serve.py against slow and greedy clients, on raw sockets to 127.0.0.1: dropped by deadlines, held to limits.

The deadlines are shortened for the test (the shipped ones are 10 s); what is checked is that the
server closes the connection by itself, long before the generous wait a test allows.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from .conftest import EXAMPLE
from .test_api_server import Server

LIMITS = ("import api.server, api.answers\napi.server.HEADER_SECONDS = {deadline}\n"
          "api.answers.BODY_SECONDS = {deadline}\napi.server.MAX_CONCURRENCY = {limit}")
SHORT = LIMITS.format(deadline=0.5, limit=256)
PATIENCE = 30.0  # the most a test waits for the server to hang up; the deadline is 0.5 s


@pytest.fixture
def server(registry, tmp_path):
    s = Server(registry, tmp_path, f"sqlite:///{tmp_path / 'decisions.db'}")
    yield s
    s.kill()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    return sock


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open for PATIENCE seconds."""
    received = b""
    deadline = time.monotonic() + PATIENCE
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def request(key: str, body: bytes, length: int | None = None) -> bytes:
    return (f"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body) if length is None else length}\r\n\r\n"
            ).encode() + body


def decide(port: int, key: str) -> int:
    with connect(port) as sock:
        sock.sendall(request(key, json.dumps(EXAMPLE).encode()))
        return int(sock.recv(65536).split(b" ", 2)[1])


def test_clients_that_never_finish_their_headers_are_dropped(server):
    key = server.new_key("slow")
    server.start(SHORT)
    idle = connect(server.port)  # sends nothing at all
    partial = connect(server.port)
    partial.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
    trickle = connect(server.port)
    trickle.sendall(b"POST /v1/decisions HTTP/1.1\r\n")
    started = time.monotonic()
    for _ in range(3):  # a byte every 0.2 s keeps no connection alive past the deadline
        time.sleep(0.2)
        try:
            trickle.sendall(b"X")
        except OSError:
            break
    for sock in (idle, partial, trickle):
        sent = closed_by_server(sock)
        assert sent is not None, "the server kept a connection whose headers never came"
        assert sent == b"" or sent.startswith(b"HTTP/1.1 408")
        sock.close()
    assert time.monotonic() - started < PATIENCE
    assert decide(server.port, key) == 200  # everyone else is still served


def test_endless_headers_are_refused_before_they_fill_memory(server):
    server.new_key("greedy")
    server.start(SHORT)
    sock = connect(server.port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        for i in range(200):  # 200 headers of 1 KiB: past the 64 KiB the server reads
            sock.sendall(f"X-Filler-{i}: {'x' * 1024}\r\n".encode())
    except OSError:
        pass  # hung up on us mid-way: as it should
    sent = closed_by_server(sock)
    assert sent is not None and (sent == b"" or sent.startswith(b"HTTP/1.1 431"))
    sock.close()


def test_half_sent_bodies_are_dropped_at_the_body_deadline(server):
    """Twenty clients each send 1 MiB of a declared 8 MiB body and stop: each is answered 408 and
    closed, so what they sent is freed instead of held."""
    key = server.new_key("half")
    server.start(SHORT)
    socks = []
    for _ in range(20):
        sock = connect(server.port)
        sock.sendall(request(key, b"[" + b" " * (2**20), length=8 * 2**20 - 1))
        socks.append(sock)
    for sock in socks:
        sent = closed_by_server(sock)
        assert sent is not None, "the server kept waiting for a body that never came"
        assert sent.startswith(b"HTTP/1.1 408"), sent[:200]
        assert b'"error":"timeout"' in sent
        sock.close()
    assert decide(server.port, key) == 200


def test_connections_past_the_concurrency_limit_get_503(server):
    key = server.new_key("many")
    server.start(LIMITS.format(deadline=PATIENCE, limit=4))
    held = [connect(server.port) for _ in range(4)]  # the limit, taken by connections that say nothing yet
    try:
        with connect(server.port) as extra:
            extra.sendall(request(key, json.dumps(EXAMPLE).encode()))
            answer = extra.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + PATIENCE
    while decide(server.port, key) != 200:  # once they are gone, requests are served again
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_two_workers_serve_with_the_same_deadlines(server):
    """Worker processes load the protocol by name: a slow client is dropped by either worker."""
    key = server.new_key("workers")
    server.start(workers=2)
    assert all(decide(server.port, key) == 200 for _ in range(4))
    sock = connect(server.port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: " + b"x" * 70_000)  # no end of headers
    sent = closed_by_server(sock)
    assert sent is not None and (sent == b"" or sent.startswith(b"HTTP/1.1 431"))
    sock.close()
    assert server.stop() == 0
