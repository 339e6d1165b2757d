"""web.server's deadlines and limits on a real uvicorn: slow headers and short
bodies are cut off within their limit while /healthz stays fast; oversized
request lines and heads are refused at once, WebSocket upgrades included."""

from __future__ import annotations

import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from db.cluster import free_port
from tests.api.support import SECRET, auth, make_settings, serve
from tests.helpers import wait_for
from web.app import create_app
from web.server import GuardedHttpToolsProtocol, GuardedWebSockets, Limits, uvicorn_options

ROOT = Path(__file__).resolve().parents[2]

LIMIT = 1.5            # seconds, both deadlines in these tests
UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n")


@pytest.fixture
def server_process(fresh_db_url):
    """`python -m web.server` in a process of its own (the test's sockets and clocks stay out of its way)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "JWT_SECRET": SECRET,
           "HTTP_HEADER_TIMEOUT": str(LIMIT), "HTTP_BODY_TIMEOUT": str(LIMIT)}
    server = subprocess.Popen([sys.executable, "-m", "web.server", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _healthy(address), 60), "the server did not start"
        yield address
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def _healthy(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def guarded_server(fresh_db_url):
    settings = make_settings(fresh_db_url, header_timeout=LIMIT, body_timeout=LIMIT)
    options = {k: v for k, v in uvicorn_options(settings).items() if k != "log_config"}  # keep pytest's logging
    with serve(create_app(settings), **options) as address:
        yield address


def open_socket(address: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setblocking(False)
    return sock


def healthz_latencies(http: httpx.Client, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        assert http.get("/healthz").status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    return latencies


def p(values: list[float], percent: int) -> float:
    """A percentile, in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] * 1000 if len(values) > 1 \
        else values[0] * 1000


def read_until_closed(socks: dict[socket.socket, float], deadline: float) -> dict[socket.socket, tuple[float, bytes]]:
    """For each socket: (seconds from its last write to EOF, what it received)."""
    got = {s: b"" for s in socks}
    closed: dict[socket.socket, tuple[float, bytes]] = {}
    while len(closed) < len(socks) and time.monotonic() < deadline:
        readable, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.05)
        for sock in readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[sock] += chunk
            else:
                closed[sock] = (time.monotonic() - socks[sock], got[sock])
    return closed


def test_slow_headers_and_short_bodies_are_cut_off_while_healthz_stays_fast(server_process):
    address = server_process
    with httpx.Client(base_url=f"http://{address}", timeout=5) as http:
        assert http.get("/healthz").status_code == 200  # warm: one pooled connection
        baseline = healthz_latencies(http, 40)
        written: dict[socket.socket, float] = {}
        slow_heads, short_bodies = [], []
        for i in range(100):
            sock = open_socket(address)
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            written[sock] = time.monotonic()
            slow_heads.append(sock)
        for i in range(100):
            sock = open_socket(address)
            sock.send(b"POST /api/games/play HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Authorization: {auth('slow')['Authorization']}\r\n".encode()
                      + b"Content-Length: 100\r\n\r\n{\"gameType\":")  # 13 of the 100 bytes promised
            written[sock] = time.monotonic()
            short_bodies.append(sock)

        # While the 200 connections hang, /healthz answers as usual.
        latencies, results = [], {}
        reader = threading.Thread(target=lambda: results.update(read_until_closed(written, time.monotonic() + 15)))
        reader.start()
        while reader.is_alive():
            latencies += healthz_latencies(http, 1)
        reader.join()

    assert len(results) == 200, "some connections were never closed"
    for sock in slow_heads:
        seconds, received = results[sock]
        assert LIMIT - 0.2 <= seconds <= LIMIT + 1.0, seconds
        assert received.startswith(b"HTTP/1.1 408 Request Timeout"), received[:80]
        assert b'"request_timeout"' in received
    for sock in short_bodies:
        seconds, received = results[sock]
        assert LIMIT - 0.2 <= seconds <= LIMIT + 1.0, seconds
        assert received.startswith(b"HTTP/1.1 408 Request Timeout"), received[:80]
    # Under 50 ms beside the 200 hanging connections: measured against the same server just
    # before, so that a machine busy with other work does not count against it.
    print(f"/healthz p50/p90/max: alone {p(baseline, 50):.1f}/{p(baseline, 90):.1f}/{max(baseline) * 1000:.1f} ms, "
          f"with 200 hanging connections {p(latencies, 50):.1f}/{p(latencies, 90):.1f}/{max(latencies) * 1000:.1f} ms")
    assert p(latencies, 90) < 50 + p(baseline, 90), (p(latencies, 90), p(baseline, 90))
    for sock in written:
        sock.close()


def test_a_kept_alive_connection_gets_a_fresh_header_deadline(guarded_server):
    """Each request on a kept-alive connection has its own deadline, from its first byte."""
    sock = open_socket(guarded_server)
    for _ in range(2):
        sock.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(LIMIT * 0.7)  # together longer than one deadline
        sock.setblocking(True)
        sock.settimeout(2)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
        sock.setblocking(False)
    sock.close()


def test_an_idle_connection_is_closed_without_an_answer(guarded_server):
    sock = open_socket(guarded_server)
    started = time.monotonic()
    seconds, received = read_until_closed({sock: started}, started + 10)[sock]
    assert received == b"" and seconds <= LIMIT + 1.0
    sock.close()


@pytest.mark.parametrize("upgrade", [False, True], ids=["http", "websocket"])
def test_an_oversized_request_line_is_refused_at_once(guarded_server, upgrade):
    sock = open_socket(guarded_server)
    started = time.monotonic()
    sock.send(f"GET /ws?token={'a' * 9000} HTTP/1.1\r\nHost: x\r\n{UPGRADE if upgrade else ''}\r\n".encode())
    seconds, received = read_until_closed({sock: started}, started + 5)[sock]
    assert seconds < 1.0
    assert received.startswith(b"HTTP/1.1 414 URI Too Long"), received[:80]
    sock.close()


def test_oversized_headers_are_refused_at_once(guarded_server):
    sock = open_socket(guarded_server)
    started = time.monotonic()
    sock.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000)
                                                              for i in range(40)) + b"\r\n")
    seconds, received = read_until_closed({sock: started}, started + 5)[sock]
    assert seconds < 1.0 and received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), received[:80]
    sock.close()


def test_websockets_own_refusal_is_sent(fresh_db_url):
    """A request line the websockets library itself refuses (over its 8 KB), with the HTTP
    limit set above that: its answer reaches the client at once instead of never."""
    settings = make_settings(fresh_db_url, max_url_bytes=20000)
    options = {k: v for k, v in uvicorn_options(settings).items() if k != "log_config"}
    with serve(create_app(settings), **options) as address:
        sock = open_socket(address)
        started = time.monotonic()
        sock.send(f"GET /ws?token={'a' * 9000} HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n".encode())
        seconds, received = read_until_closed({sock: started}, started + 5)[sock]
        assert seconds < 1.0 and received.startswith(b"HTTP/1.1 414"), received[:80]
        sock.close()


def test_limits_come_from_the_settings():
    settings = make_settings("postgresql://x@127.0.0.1/none", header_timeout=3, body_timeout=4,
                             max_url_bytes=100, max_header_bytes=200)
    options = uvicorn_options(settings)
    assert options["http"].func is GuardedHttpToolsProtocol and options["ws"] is GuardedWebSockets
    assert options["http"].keywords["limits"] == Limits(3, 4, 100, 200)
    assert options["access_log"] is False
