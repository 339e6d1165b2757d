"""What every benchmark shares: logging and result tables, one percentile, the
scratch cluster and the small SQL steps around it (a timed statement, VACUUM,
an empty copy of mining_events), the web server's launch and wait, and the
/proc readers that tell whose CPU and memory a figure cost."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from db import apply as db_apply
from db import cluster

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024

# One 2-core, 24 GiB machine holding a million participants (README, "Scaling out").
BENCH_SETTINGS = {
    "shared_buffers": "'6GB'",
    "effective_cache_size": "'16GB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'1GB'",
    "max_wal_size": "'16GB'",
    "checkpoint_timeout": "'30min'",
    # Aggregate upkeep updates rows all over its tables; the first touch of a
    # page after a checkpoint logs the whole page, and lz4 halves those writes.
    "wal_compression": "lz4",
}

# The settings the web process takes from its environment: only ours reach it.
WEB_ENV_PREFIXES = ("DATABASE_", "JWT_", "CORS_", "DB_", "WS_", "MAX_BODY", "UVICORN_")


# --- logging and tables -------------------------------------------------------------

def log(message: str) -> None:
    """A progress line on stderr; stdout keeps only the result table."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Progress(list):
    """The result rows, each also printed to stderr as soon as it is measured."""

    def append(self, row):
        print("    " + "  ".join(row), file=sys.stderr, flush=True)
        super().append(row)


def print_table(rows: list[tuple[str, str, str]], title: str = "") -> None:
    """(measure, figure, reference) rows as one aligned table on stdout."""
    width = max(len(r[0]) for r in rows)
    fwidth = max(len(r[1]) for r in rows)
    print(f"\n{title}")
    print(f"{'measure'.ljust(width)}  {'figure'.rjust(fwidth)}  reference")
    for name, figure, ref in rows:
        print(f"{name.ljust(width)}  {figure.rjust(fwidth)}  {ref}")


def print_markdown_table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> None:
    """Rows as a Markdown table on stdout, ready to paste."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100): the smallest value that at
    least q% of the values do not exceed. NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "n/a"


# --- the database -------------------------------------------------------------------

@contextmanager
def scratch_cluster():
    """A private cluster with BENCH_SETTINGS and a database `bench` applied (no pg_cron
    job) in a temporary directory, removed afterwards; yields (url, datadir)."""
    datadir = Path(tempfile.mkdtemp(prefix="lottery-bench-pg-")) / "data"
    port = cluster.free_port()
    log(f"starting a scratch cluster in {datadir} on port {port}")
    cluster.start(datadir, port, BENCH_SETTINGS)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        url = f"postgresql://postgres@127.0.0.1:{port}/bench"
        db_apply.apply(url, schedule=False, log=lambda *_: None)
        yield url, datadir
    finally:
        cluster.stop(datadir, mode="immediate")
        shutil.rmtree(datadir.parent, ignore_errors=True)


def timed(conn: psycopg.Connection, statement, params=None) -> float:
    """Seconds to run and commit one statement."""
    started = time.perf_counter()
    conn.execute(statement, params)
    conn.commit()
    return time.perf_counter() - started


def call_ms(conn: psycopg.Connection, statement: str, params) -> float:
    """Milliseconds of one call as a client sees it: a prepared statement, one round trip."""
    started = time.perf_counter()
    conn.execute(statement, params, prepare=True).fetchone()
    return 1000 * (time.perf_counter() - started)


def vacuum(conn: psycopg.Connection, *tables: str) -> None:
    conn.commit()
    conn.autocommit = True
    try:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
    finally:
        conn.autocommit = False


def load(conn: psycopg.Connection, table: str, events: list, how: str, batch: int, fold: bool = False) -> float:
    """Seconds to load `events` into `table`, `batch` of them per COPY or per INSERT;
    with `fold`, until fold_pending_events() has folded them too."""
    chunks = [events[i:i + batch] for i in range(0, len(events), batch)]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for chunk in chunks:
            if how == "copy":
                with cur.copy(f"COPY {table} (ts, event_type, payload) FROM STDIN") as copy:
                    copy.write(b"".join(chunk))
            else:
                cur.execute(f"INSERT INTO {table} (ts, event_type, payload)"
                            " SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::jsonb[])",
                            [list(column) for column in zip(*chunk)])
    conn.commit()
    if fold:
        conn.execute("SELECT fold_pending_events()")
        conn.commit()
    return time.perf_counter() - started


def events_copy(conn: psycopg.Connection, name: str, week: dt.date) -> None:
    """An empty table with mining_events' columns, partitioning (the week's partition and
    a default one) and indexes, and no trigger: the bare reference of every ingest figure."""
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE mining_events INCLUDING ALL) PARTITION BY RANGE (ts)")
                 .format(sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})")
                 .format(sql.Identifier(f"{name}_week"), sql.Identifier(name),
                         sql.Literal(f"{week} 00:00+00"), sql.Literal(f"{week + dt.timedelta(days=7)} 00:00+00")))
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT")
                 .format(sql.Identifier(f"{name}_default"), sql.Identifier(name)))


# --- the web server -----------------------------------------------------------------

def start_web(database_url: str, secret: str, port: int, log_path: Path, *uvicorn_args: str) -> subprocess.Popen:
    """`uvicorn web.app:app --no-access-log` on 127.0.0.1:port, as production runs it,
    with only our settings in its environment and its output in log_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(WEB_ENV_PREFIXES)}
    env.update(DATABASE_URL=database_url, JWT_SECRET=secret, JWT_ALGORITHM="HS256", PYTHONUNBUFFERED="1")
    with log_path.open("wb") as out:
        # A session of its own: a Ctrl-C on the terminal reaches us, and we stop it in order.
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", *uvicorn_args],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(proc: subprocess.Popen, base: str, timeout: float = 30.0) -> None:
    """Until /healthz answers 200 with the NOTIFY relay listening."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode} before /healthz answered")
        try:
            r = httpx.get(f"{base}/healthz", timeout=2)
            last = f"{r.status_code} {r.text}"
            if r.status_code == 200 and r.json().get("relay") == "listening":
                return
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"/healthz not 200 with the relay listening after {timeout:.0f} s: {last}")


def stop_web(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def web_log_errors(log_path: Path) -> list[str]:
    """The ERROR and Traceback lines of a web log."""
    if not log_path.exists():
        return []
    return [line for line in log_path.read_text(errors="replace").splitlines()
            if re.search(r"\bERROR\b|Traceback", line)]


def log_tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:]) if log_path.exists() else ""


# --- /proc --------------------------------------------------------------------------

def status_bytes(pid: int, key: str = "VmRSS") -> int | None:
    """A memory figure of /proc/<pid>/status (VmRSS: resident now; VmHWM: its peak), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes(pid: int) -> int | None:
    return status_bytes(pid, "VmRSS")


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): field 3 onwards."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu_seconds(datadir: Path) -> float:
    """CPU of a PostgreSQL cluster: the postmaster with its reaped children, plus live children."""
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    total = sum(int(v) for v in _stat_fields(postmaster)[11:15]) / ticks   # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat_fields(entry.name)
            except OSError:
                continue
            if int(child[1]) == postmaster:
                total += (int(child[11]) + int(child[12])) / ticks
    return total


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over every CPU, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)
