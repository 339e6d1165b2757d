"""The log of `python -m web.server` (LOG_FORMAT=json) after a refused handshake,
a mid-body disconnect and a WebSocket session: one JSON line per request, no
traceback, no token."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from db.cluster import free_port
from tests.api.support import SECRET, token
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_log_has_one_line_per_request_no_traceback_and_no_token(fresh_db_url, tmp_path):
    port, log_path = free_port(), tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "JWT_SECRET": SECRET, "LOG_FORMAT": "json"}
    with log_path.open("w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "web.server", "--port", str(port)], cwd=ROOT, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    base, good, bad = f"http://127.0.0.1:{port}", token("alice"), "forged." + secrets.token_hex(16)
    try:
        assert wait_for(lambda: b"Application startup complete" in log_path.read_bytes(), 60)
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/api/games/weekly-data", headers={"Authorization": f"Bearer {good}"}).status_code == 200
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/ws?token={bad}", proxy=None, open_timeout=5)
        assert refused.value.response.status_code == 401
        with connect(f"ws://127.0.0.1:{port}/ws?token={good}", proxy=None, open_timeout=5) as sock:
            sock.send("hello")  # ignored by the server
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(b"POST /api/games/play HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        + f"Authorization: Bearer {good}\r\n".encode()
                        + b"Content-Length: 100\r\n\r\n{\"gameType\": \"sl")
            time.sleep(0.3)
        assert httpx.get(f"{base}/no/such/page").status_code == 404
        assert wait_for(lambda: log_path.read_text().count('"web.access"') >= 6, 10)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)

    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert "Traceback" not in text and not any("exception" in line for line in lines)
    assert good not in text and bad not in text and SECRET not in text
    assert not [line for line in lines if line["level"] in ("error", "critical")]

    access = [line for line in lines if line["logger"] == "web.access"]
    assert [(a["event"], a.get("route"), a["status"], a["level"]) for a in access] == [
        ("request", "/healthz", 200, "info"),
        ("request", "/api/games/weekly-data", 200, "info"),
        ("websocket refused", "/ws", 401, "info"),
        ("websocket session", "/ws", 101, "info"),
        ("request", "/api/games/play", 499, "info"),
        ("request", "unmatched", 404, "info"),
    ]
    refusal, session, gone = access[2], access[3], access[4]
    assert refusal["reason"].startswith("invalid token") and refusal["query"] == "token=[redacted]"
    assert session["closed_by"] == "client" and session["query"] == "token=[redacted]"
    assert gone["note"] == "client disconnected before the request was read"
    assert all({"timestamp", "duration_ms", "client", "path"} <= a.keys() for a in access)


HOSTILE_PATHS = ["/play/%00", "/play/%1B[31mred", "/play/a%0D%0Afake=line", "/api/lottery/week/%E2%80%A8",
                 "/healthz?x=%1B]0;title%07&y=%00"]


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_control_characters_of_a_request_are_escaped_in_every_field(fresh_db_url, tmp_path, fmt):
    """GET /play/%00 must not make the log binary, nor %1B[31m reach a terminal, nor %0D%0A
    start a line of its own: one printable line per request, each field escaped."""
    port, log_path = free_port(), tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "JWT_SECRET": SECRET, "LOG_FORMAT": fmt}
    with log_path.open("w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "web.server", "--port", str(port)], cwd=ROOT, env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: b"Application startup complete" in log_path.read_bytes(), 60)
        for path in HOSTILE_PATHS:
            with socket.create_connection(("127.0.0.1", port)) as raw:  # sent as written, not re-encoded
                raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                raw.settimeout(5)
                while raw.recv(65536):
                    pass
        assert wait_for(lambda: log_path.read_bytes().count(b"web.access") >= len(HOSTILE_PATHS), 10)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    data = log_path.read_bytes()
    assert not [b for b in data if b < 0x20 and b != 0x0A or b == 0x7F], "a raw control byte in the log"
    text = data.decode()
    assert "\u2028" not in text and "\x85" not in text
    access = [line for line in text.splitlines() if "web.access" in line]
    assert len(access) == len(HOSTILE_PATHS)   # no request made a line of its own
    if fmt == "json":
        paths = [json.loads(line)["path"] for line in access]
        assert paths == ["/play/\x00", "/play/\x1b[31mred", "/play/a\r\nfake=line", "/api/lottery/week/\u2028",
                         "/healthz"]   # the JSON escapes, and reads back as what was sent
    else:
        assert "path=/play/\\x00 " in access[0] and "path=/play/\\x1b[31mred " in access[1]
        # Quoted (it holds "="): logfmt doubles the backslash of each escape within quotes.
        assert 'path="/play/a\\\\r\\\\nfake=line" ' in access[2]
        assert "path=/api/lottery/week/\\u2028 " in access[3]
        assert 'query="x=%1B]0;title%07&y=%00"' in access[4]   # the query as it came: percent-encoded
