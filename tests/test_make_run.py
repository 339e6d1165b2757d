"""`make run` end to end, non-interactively: cluster, migrations, demo week, draw,
server; the printed token then gets a populated WeeklyGameData over HTTP, and
opens a WebSocket that the server's log records without the token."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from db.cluster import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_make_run_serves_demo_data_to_the_printed_token(tmp_path):
    pgdata, pgport, http_port = tmp_path / "pgdata", free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET", "MAKEFLAGS")}
    make_vars = [f"PGDATA={pgdata}", f"PGPORT={pgport}", f"HTTP_PORT={http_port}"]
    proc = subprocess.Popen(["make", "--no-print-directory", "run", *make_vars], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Uvicorn running" in line:
                break
        text = "".join(output)
        assert "Uvicorn running" in text, text
        token = re.search(r"^token:\s+(\S+)", text, re.M).group(1)
        assert f"curl -s -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:{http_port}/api/games/weekly-data" in text

        base = f"http://127.0.0.1:{http_port}"
        headers = {"Authorization": f"Bearer {token}"}
        open_week = httpx.get(f"{base}/api/games/weekly-data", headers=headers, timeout=10)
        assert open_week.status_code == 200, open_week.text
        data = open_week.json()
        assert data["bestDifficulty"] > 0 and data["weeklyRank"] >= 1 and data["totalShares"] > 0
        assert len(data["dailyBestDiffs"]) == 7 and len(data["bestHash"]) == 64
        current = httpx.get(f"{base}/api/lottery/current", headers=headers, timeout=10).json()
        assert current["totalParticipants"] > 0 and current["myResult"]["rank"] >= 1
        with connect(f"ws://127.0.0.1:{http_port}/ws?token={token}", proxy=None, open_timeout=10):
            pass
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: uvicorn stops, make exits
        try:
            output.append(proc.communicate(timeout=20)[0])
        finally:
            subprocess.run(["make", "--no-print-directory", "stop", *make_vars], cwd=ROOT, env=env,
                           capture_output=True, timeout=60)
    assert not (pgdata / "postmaster.pid").exists()
    log = "".join(output[output.index(next(line for line in output if "Uvicorn running" in line)):])
    assert "event=\"websocket session\"" in log and "query=\"token=[redacted]\"" in log, log
    assert token not in log
