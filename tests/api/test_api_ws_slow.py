"""Hostile WebSocket clients on a real uvicorn served as `python -m web.server` serves
(web.server's protocols): a client that never reads is dropped and its connection
aborted within the drop window while /healthz stays fast and a reading client gets
everything; invalid UTF-8 frames cost one rate-limited warning line each, no traceback."""

from __future__ import annotations

import base64
import json
import logging
import os
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
from websockets.sync.client import connect

from db.cluster import free_port
from tests.api.support import SECRET, make_settings, serve, token
from tests.api.test_api_metrics import scrape, value
from tests.api.test_api_ws import relay_listening
from tests.helpers import wait_for
from web.app import create_app
from web.server import uvicorn_options

STALL = 1.0        # seconds: the drop window of these tests (WS_STALL_SECONDS)
BURST = 14000      # notifications of ~1 KB in one transaction: more than the socket buffers hold


ROOT = Path(__file__).resolve().parents[2]


def server_options(settings) -> dict:
    return {k: v for k, v in uvicorn_options(settings).items() if k != "log_config"}


def raw_websocket(address: str, user: str, rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket handshake on a plain socket (with a small receive buffer): what
    happens after it is up to the test (here: nothing is ever read)."""
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /ws?token={token(user)} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    sock.settimeout(5)
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)   # byte by byte: not a byte of the frames after the head is read
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def masked_text_frame(payload: bytes) -> bytes:
    """One client frame (FIN, opcode text, masked), payload under 126 bytes."""
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class HealthProbe(threading.Thread):
    """GET /healthz back to back on one keep-alive connection; latencies in ms."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.address, self.latencies, self.failures = address, [], 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=f"http://{self.address}", timeout=5) as http:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.failures += not ok
                time.sleep(0.005)

    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98]


def test_a_client_that_never_reads_is_dropped_and_its_connection_aborted(fresh_db_url, shares, tmp_path):
    port, log_path = free_port(), tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "JWT_SECRET": SECRET, "WS_STALL_SECONDS": str(STALL),
           "METRICS_CACHE_SECONDS": "0"}
    with log_path.open("w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "web.server", "--port", str(port)], cwd=ROOT, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    address, base = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: relay_listening(address), 60), log_path.read_text()
        silent = raw_websocket(address, "silent")
        with connect(f"ws://{address}/ws?token={token('reader')}", proxy=None, open_timeout=5) as reader:
            assert wait_for(lambda: value(scrape(base), "lottery_ws_clients") == 2, 5)
            probe = HealthProbe(address)
            probe.start()
            time.sleep(0.3)
            # Every other notification for the reader; the rest for the client that never reads.
            flooded = time.monotonic()
            shares.scalar("INSERT INTO notifications (user_id, category, title, body) "
                          "SELECT CASE WHEN i %% 2 = 0 THEN 'reader' ELSE 'silent' END, 'lottery', 'n' || i, "
                          "repeat('x', 700) FROM generate_series(1, %s) AS i RETURNING 1", (BURST,))
            titles = []
            while len(titles) < BURST // 2:
                frame = json.loads(reader.recv(timeout=15))
                if frame.get("event") == "notification":
                    titles.append(frame["data"]["title"])
            assert titles == [f"n{i}" for i in range(2, BURST + 1, 2)]   # the reader got all of its own, in order

            # Dropped, counted and gone while it still has not read a byte.
            assert wait_for(lambda: value(scrape(base), "lottery_ws_clients") == 1, STALL + 5)
            gone_after = time.monotonic() - flooded
            assert value(scrape(base), "lottery_ws_clients_dropped", "lottery_ws_clients_dropped_total") == 1
            time.sleep(0.5)
            probe.stop.set()
            probe.join(10)
            # Its connection was aborted, not left to drain: the socket ends (reset or EOF)
            # with far less to read than the burst held for it.
            silent.settimeout(5)
            received, ended = 0, False
            try:
                while chunk := silent.recv(65536):
                    received += len(chunk)
                ended = True
            except ConnectionResetError:
                ended = True
            assert ended and received < BURST // 2 * 700, received
            assert request_pong(reader)   # the reader is still connected
        silent.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    log = log_path.read_text()
    assert log.count("dropping WebSocket client of user 'silent'") == 1, log[-3000:]
    print(f"healthz p99 {probe.p99():.1f} ms max {max(probe.latencies):.1f} ms n={len(probe.latencies)}; "
          f"dropped {gone_after:.1f} s after the burst began")
    assert probe.failures == 0 and len(probe.latencies) > 50
    assert probe.p99() < 20, (f"/healthz p99 {probe.p99():.1f} ms over {len(probe.latencies)} probes, "
                              f"max {max(probe.latencies):.1f} ms; dropped after {gone_after:.1f} s")


def request_pong(sock) -> bool:
    sock.send(json.dumps({"action": "ping"}))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if json.loads(sock.recv(timeout=5)).get("type") == "pong":
            return True
    return False


def test_invalid_utf8_frames_cost_one_rate_limited_warning_and_no_traceback(fresh_db_url, caplog):
    settings = make_settings(fresh_db_url)
    caplog.set_level(logging.INFO)
    with serve(create_app(settings), **server_options(settings)) as address:
        closes = []
        for _ in range(30):
            sock = raw_websocket(address, "mallory")
            sock.sendall(masked_text_frame(b'{"action": "\xff\xfe"}'))
            sock.settimeout(5)
            reply = b""
            try:
                while chunk := sock.recv(4096):
                    reply += chunk
            except ConnectionResetError:
                pass
            closes.append(reply[:4])
            sock.close()
        with connect(f"ws://{address}/ws?token={token('alice')}", proxy=None, open_timeout=5) as fine:
            assert request_pong(fine)   # the server is as it was
    # Each one closed with 1007 (invalid frame payload data).
    assert all(c[:1] == b"\x88" and c[2:4] == (1007).to_bytes(2, "big") for c in closes), closes[:3]
    records = [r for r in caplog.records if "UTF-8" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], \
        [(r.name, r.getMessage()) for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert 1 <= len(records) <= 2 and all(r.levelno == logging.WARNING for r in records), \
        [r.getMessage() for r in records]
    assert all("\n" not in r.getMessage() for r in records)


def test_a_request_line_websockets_refuses_is_counted_and_logged_as_refused(fresh_db_url, caplog):
    """An 8,180-byte query passes the HTTP limit (8,192 bytes of URL) but not websockets' own
    (8,192 bytes of request line): its 414 is counted and logged as any other refusal."""
    settings = make_settings(fresh_db_url)
    caplog.set_level(logging.INFO)
    with serve(create_app(settings), **server_options(settings)) as address:
        def cut() -> float:
            families = scrape(f"http://{address}")
            return sum(s.value for s in families["lottery_http_connections_cut"].samples
                       if s.name.endswith("_total") and s.labels.get("reason") == "url_too_long")
        before = cut()
        host, port = address.split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(f"GET /ws?token={'a' * 8174} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
            sock.settimeout(5)
            assert sock.recv(4096).startswith(b"HTTP/1.1 414"), "websockets' own answer"
        assert wait_for(lambda: cut() == before + 1, 5)
    refused = [r for r in caplog.records if r.name == "web.server" and r.getMessage() == "websocket refused"]
    assert [(r.status, r.reason) for r in refused] == [(414, "the request line exceeds 8192 bytes")]
