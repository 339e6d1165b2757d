"""PostgreSQL stopped and started 10 times under light load (`python -m web.server`,
default pool settings): each outage is answered 503 at once, and every time the
first 200 comes within 2 s of the database accepting connections again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from db.cluster import free_port
from tests.api.support import SECRET, auth, token
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 10


@pytest.fixture
def server(fresh_db_url, tmp_path):
    port, log = free_port(), tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "JWT_SECRET": SECRET}
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the server's logging
        process = subprocess.Popen([sys.executable, "-m", "web.server", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _status(base, "/healthz") == 200, 60), "the server did not start"
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        assert "Traceback" not in log.read_text(), log.read_text()[-6000:]


def _status(base: str, path: str) -> int | None:
    try:
        return httpx.get(f"{base}{path}", headers=auth("alice"), timeout=10).status_code
    except httpx.HTTPError:
        return None


class LightLoad:
    """Two clients, ~10 requests/s between them, and a WebSocket client reading."""

    def __init__(self, base: str):
        self.base, self.stop, self.answers = base, threading.Event(), []
        self.threads = [threading.Thread(target=self._requests, daemon=True) for _ in range(2)]
        self.threads.append(threading.Thread(target=self._socket, daemon=True))

    def _requests(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            while not self.stop.is_set():
                try:
                    self.answers.append(http.get("/api/games/weekly-data", headers=auth("loader")).status_code)
                except httpx.HTTPError:
                    self.answers.append(None)
                time.sleep(0.2)

    def _socket(self) -> None:
        while not self.stop.is_set():
            try:
                with connect(f"ws://{self.base.removeprefix('http://')}/ws?token={token('watcher')}",
                             proxy=None, open_timeout=5) as sock:
                    while not self.stop.is_set():
                        try:
                            sock.recv(timeout=0.5)
                        except TimeoutError:
                            pass
            except Exception:  # closed by a shutdown or refused while starting: connect again
                time.sleep(0.2)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def accepting(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=1).close()
        return True
    except psycopg.OperationalError:
        return False


def test_ten_restarts_each_answered_503_at_once_and_recovered_within_2_s(server, pg_cluster, fresh_db_url):
    recoveries, outage_answers = [], []
    with LightLoad(server) as load, httpx.Client(base_url=server, timeout=10) as http:
        time.sleep(1)
        for _ in range(CYCLES):
            pg_cluster.stop()
            started = time.monotonic()
            answer = http.get("/api/games/weekly-data", headers=auth("alice"))
            outage_answers.append(time.monotonic() - started)
            assert answer.status_code == 503 and answer.json()["code"] == "database_unavailable"
            health = http.get("/healthz")
            assert health.status_code == 503 and health.headers["retry-after"] == "2"

            starting = threading.Thread(target=pg_cluster.start)
            starting.start()
            while not accepting(fresh_db_url):
                time.sleep(0.005)
            back = time.monotonic()
            while http.get("/api/games/weekly-data", headers=auth("alice")).status_code != 200:
                time.sleep(0.02)
            recoveries.append(time.monotonic() - back)
            starting.join()
            time.sleep(0.5)
    print("first 200 after the database accepted connections (s):", [round(r, 3) for r in recoveries])
    print("503 during the outage (s):", [round(a, 3) for a in outage_answers])
    assert len(recoveries) == CYCLES
    assert max(recoveries) < 2.0, recoveries
    assert max(outage_answers) < 1.0, outage_answers  # not the pool's 5 s timeout
    assert set(load.answers) <= {200, 503}, set(load.answers)  # nothing but answers; never a 500 or a hang
    assert load.answers.count(200) > 0
