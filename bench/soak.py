"""Soak test: minutes of mixed load on a real uvicorn, with a draw in the middle; pass/fail.

    python -m bench.soak [--seconds 300] [--rate 150] [--concurrency 16] [--users 5000]
                         [--ws-clients 50] [--ingest-batch 500] [--ingest-interval 0.5]

Everything runs on loopback, in scratch places, and is bounded in time:

1. a scratch PostgreSQL cluster (as bench/run.py) with the database applied, no pg_cron job;
   a closed past week seeded with --users users' shares, NOT drawn yet, and some open-week shares;
2. the app as its own process: `uvicorn web.app:app --no-access-log` on 127.0.0.1 and a free
   port, as the production login would run it (SET ROLE lottery_web), until /healthz is 200;
3. for --seconds: --concurrency HTTP/1.1 keep-alive connections paced to --rate requests/s
   over weekly-data (open and past week), the four game views, history, plays (spread over
   every user, so the 30 plays/min limit is not the point; 429 are counted apart, not as
   errors) and lottery/current; --ws-clients WebSocket clients connected throughout; a
   thread ingesting --ingest-batch shares every --ingest-interval s into the open week as
   the collector does (role lottery_ingest; COPY and multi-row INSERT in turn);
   at the midpoint the admin draw of the seeded week over HTTP;
4. the web process's RSS (VmRSS) every 5 s.

PASS needs: no 5xx, no transport error, no unexpected 4xx (only 429 on plays and 404 on
lottery/current before the draw are expected); the draw answered 200 with the seeded totals;
every WebSocket client stayed connected and got lottery_drawn (the top-10 users among them
also their notification); zero lost shares (share_weekly_best of the open week gained exactly
the accepted shares inserted, mining_events exactly the rows); the web RSS after warm-up
(--warmup, default the first 60 s or 20% of the run, whichever is shorter) within 10% of its
first value ((max - min) / first); no ERROR in the web log.

Prints one summary table (Markdown) and `soak: PASS` or `soak: FAIL (reasons)`; exit 0/1.
uvicorn and the cluster are stopped whatever happens, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg.types.json import Jsonb
from websockets.asyncio.client import connect as ws_connect

from bench.run import scratch_cluster
from db.cluster import free_port
from web.auth import issue_token
from web.config import Settings

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
from core.rules import TRUEDIFFONE
GAMES = ("hammer", "horse_race", "slots", "scratch_card")
POOL_DIFFS = (1, 256, 1024, 4096, 65536, 500_000)
REJECTED = 0.02          # share of shares with accepted=false (never counted)
RSS_EVERY = 5.0          # seconds between RSS samples
PROGRESS_EVERY = 30.0    # seconds between progress lines on stderr
MIB = 1024 * 1024

# (label, weight): label is the route template the request is reported under.
MIX = (
    ("GET /api/games/weekly-data", 25),
    ("GET /api/games/weekly-data/{game_type}", 25),
    ("GET /api/games/history", 15),
    ("POST /api/games/play", 25),
    ("GET /api/lottery/current", 10),
)
DRAW_LABEL = "POST /api/admin/lottery/draw"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def monday(at: dt.datetime) -> dt.datetime:
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - dt.timedelta(days=day.weekday())


def random_share(rng: random.Random, user: str, pool_diff: int, ts: dt.datetime) -> tuple[tuple, bool]:
    """One share_submitted event as the collector writes it; the hash proves exactly sdiff."""
    value = rng.randint(1, TRUEDIFFONE // pool_diff)
    accepted = rng.random() >= REJECTED
    payload = {"user": user, "worker": f"{user}.rig{rng.randrange(3)}", "sdiff": TRUEDIFFONE / value,
               "accepted": accepted, "hash": format(value, "064x")}
    return (ts, "share_submitted", payload), accepted


def random_ts(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(microseconds=rng.randrange(max(1, int((end - start).total_seconds() * 1e6))))


def copy_rows(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.cursor().copy("COPY mining_events (ts, event_type, payload) FROM STDIN") as copy:
        for ts, kind, payload in rows:
            copy.write_row((ts, kind, json.dumps(payload)))


def insert_rows(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """One multi-row INSERT: one statement, one trigger batch."""
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    conn.execute(f"INSERT INTO mining_events (ts, event_type, payload) VALUES {values}",
                 [p for ts, kind, payload in rows for p in (ts, kind, Jsonb(payload))])


# --- seeding ---------------------------------------------------------------------------------

@dataclass
class Seed:
    past_week: dt.datetime
    open_week: dt.datetime
    users: list[str]
    pool_diff: dict[str, int]
    participants: int          # past week: users with an accepted share
    past_shares: int           # past week: accepted shares (the draw's totalShares)
    top10: list[str]           # past week's expected top 10, by the draw's rule
    open_rows: int


def seed_database(url: str, users: int, shares_per_user: int, rng: random.Random) -> Seed:
    now = dt.datetime.now(UTC)
    open_week = monday(now)
    past_week = open_week - dt.timedelta(days=7)
    names = [f"bc1qsoak{i:05d}" for i in range(users)]
    pool_diff = {u: rng.choice(POOL_DIFFS) for u in names}

    past_rows, best = [], {}
    for u in names:
        for _ in range(shares_per_user):
            ts = random_ts(rng, past_week, past_week + dt.timedelta(days=7))
            row, accepted = random_share(rng, u, pool_diff[u], ts)
            past_rows.append(row)
            if accepted:
                key = (-row[2]["sdiff"], ts, u)
                best[u] = min(best.get(u, key), key)
    past_rows.sort(key=lambda r: r[0])
    top10 = [k[2] for k in sorted(best.values())[:10]]
    accepted_past = sum(1 for r in past_rows if r[2]["accepted"])

    open_rows = []
    for u in names[: users // 2]:
        for _ in range(5):
            open_rows.append(random_share(rng, u, pool_diff[u], random_ts(rng, open_week, now))[0])

    log(f"  seeding {len(past_rows):,} shares in the week of {past_week:%Y-%m-%d} (closed, not drawn) "
        f"and {len(open_rows):,} in the open week of {open_week:%Y-%m-%d}")
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE lottery_ingest")
        copy_rows(conn, past_rows)
        copy_rows(conn, open_rows)
        conn.commit()
        conn.execute("RESET ROLE")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return Seed(past_week, open_week, names, pool_diff, len(best), accepted_past, top10, len(open_rows))


def open_week_totals(url: str, open_week: dt.datetime) -> tuple[int, int]:
    """(sum of share_count in share_weekly_best, rows in mining_events) for the open week."""
    with psycopg.connect(url) as conn:
        aggregated = conn.execute("SELECT coalesce(sum(share_count), 0) FROM share_weekly_best "
                                  "WHERE week_start = %s", (open_week.date(),)).fetchone()[0]
        events = conn.execute("SELECT count(*) FROM mining_events WHERE ts >= %s AND ts < %s",
                              (open_week, open_week + dt.timedelta(days=7))).fetchone()[0]
    return int(aggregated), int(events)


# --- share ingest thread ---------------------------------------------------------------------

@dataclass
class IngestStats:
    batches: int = 0
    rows: int = 0
    accepted: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def ingest_loop(url: str, seed: Seed, batch: int, interval: float, stop: threading.Event,
                stats: IngestStats, rng: random.Random) -> None:
    # The seeded users plus 20% newcomers: both the update and the insert path of the upsert.
    newcomers = [f"bc1qsoaknew{i:05d}" for i in range(max(1, len(seed.users) // 5))]
    users = seed.users + newcomers
    pool_diff = {**seed.pool_diff, **{u: rng.choice(POOL_DIFFS) for u in newcomers}}
    week_end = seed.open_week + dt.timedelta(days=7) - dt.timedelta(microseconds=1)
    try:
        with psycopg.connect(url, application_name="soak-ingest") as conn:
            conn.execute("SET ROLE lottery_ingest")
            conn.commit()
            next_at = time.monotonic()
            while not stop.is_set():
                now = min(dt.datetime.now(UTC), week_end)
                start = max(seed.open_week, now - dt.timedelta(hours=1))
                rows, accepted = [], 0
                for _ in range(batch):
                    u = rng.choice(users)
                    row, ok = random_share(rng, u, pool_diff[u], random_ts(rng, start, now))
                    rows.append(row)
                    accepted += ok
                started = time.perf_counter()
                try:
                    (copy_rows if stats.batches % 2 == 0 else insert_rows)(conn, rows)
                    conn.commit()
                except psycopg.Error as exc:
                    conn.rollback()
                    stats.errors.append(f"{type(exc).__name__}: {exc}")
                    if len(stats.errors) >= 5:
                        return
                    continue
                stats.latencies.append(time.perf_counter() - started)
                stats.batches += 1
                stats.rows += len(rows)
                stats.accepted += accepted
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                else:
                    stats.late += 1
                    next_at = time.monotonic()
    except Exception as exc:  # reported as a failure, never a silent thread death
        stats.errors.append(f"{type(exc).__name__}: {exc}")


# --- the web process -------------------------------------------------------------------------

def start_web(url: str, secret: str, port: int, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "JWT_", "CORS_", "DB_", "WS_", "MAX_BODY"))}
    env.update(DATABASE_URL=url, JWT_SECRET=secret, JWT_ALGORITHM="HS256", PYTHONUNBUFFERED="1")
    with log_path.open("wb") as out:
        # A session of its own: a Ctrl-C on the terminal reaches us, and we stop it in order.
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", "--lifespan", "on"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(proc: subprocess.Popen, base: str, timeout: float = 30.0) -> None:
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


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu_seconds(datadir: Path) -> float:
    """CPU of a PostgreSQL cluster: the postmaster with its reaped children, plus live children."""
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(v) for v in fields[11:15]) / ticks   # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = (entry / "stat").read_text().rsplit(")", 1)[1].split()
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


# --- the load --------------------------------------------------------------------------------

@dataclass
class WsClientStats:
    user: str
    connects: int = 0
    events: Counter = field(default_factory=Counter)
    drawn_at: float | None = None     # perf_counter when lottery_drawn arrived
    drawn_data: dict | None = None
    closes: list[str] = field(default_factory=list)   # unexpected closes and connect failures


@dataclass
class Load:
    seed: Seed
    args: argparse.Namespace
    base: str
    tokens: dict[str, str]
    admin_token: str
    web_pid: int
    rng: random.Random
    started: float = 0.0
    stopping: bool = False
    requests: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    transport_errors: list[str] = field(default_factory=list)
    bad_bodies: list[str] = field(default_factory=list)          # 5xx and unexpected 4xx, first few
    expected_404: int = 0
    slot: int = 0
    dropped_slots: int = 0
    draw: dict = field(default_factory=dict)
    ws: list[WsClientStats] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    ingest: IngestStats = field(default_factory=IngestStats)
    db_url: str = ""
    load_seconds: float = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def total_requests(self) -> int:
        return sum(sum(c.values()) for c in self.requests.values())

    def count_class(self, cls: str) -> int:
        return sum(c[cls] for c in self.requests.values())

    # -- HTTP --------------------------------------------------------------------------------

    def next_request(self) -> tuple[str, str, str, dict | None, str]:
        """(label, method, url, json body, user) of the next request in the mix."""
        label = self.rng.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
        user = self.rng.choice(self.seed.users)
        past = self.seed.past_week.strftime("%Y-%m-%d")
        if label == "GET /api/games/weekly-data":
            url = "/api/games/weekly-data" + (f"?week={past}" if self.rng.random() < 0.2 else "")
            return label, "GET", url, None, user
        if label == "GET /api/games/weekly-data/{game_type}":
            url = f"/api/games/weekly-data/{self.rng.choice(GAMES)}" + (
                f"?week={past}" if self.rng.random() < 0.2 else "")
            return label, "GET", url, None, user
        if label == "GET /api/games/history":
            game = f"&game_type={self.rng.choice(GAMES)}" if self.rng.random() < 0.3 else ""
            return label, "GET", f"/api/games/history?limit=20&offset=0{game}", None, user
        if label == "POST /api/games/play":
            body = {"gameType": self.rng.choice(GAMES),
                    "resultData": {"score": self.rng.randrange(1000), "seed": self.rng.getrandbits(32)}}
            if self.rng.random() < 0.2:
                body["weekStart"] = past  # the week being drawn: sets gamePlayed once it is
            return label, "POST", "/api/games/play", body, user
        return label, "GET", "/api/lottery/current", None, user

    def record(self, label: str, status: int, body: str, sent_at: float) -> None:
        counts = self.requests[label]
        if 200 <= status < 300:
            counts["2xx"] += 1
        elif status == 429 and label == "POST /api/games/play":
            counts["429"] += 1
        elif 500 <= status:
            counts["5xx"] += 1
            if len(self.bad_bodies) < 10:
                self.bad_bodies.append(f"{label} {status} at {self.elapsed():.1f} s: {body[:300]}")
        else:
            counts["4xx"] += 1
            drawn = self.draw.get("answered_at")
            if (status == 404 and label == "GET /api/lottery/current" and '"draw_not_found"' in body
                    and (drawn is None or sent_at < drawn)):
                self.expected_404 += 1
            else:
                counts["unexpected"] += 1
                if len(self.bad_bodies) < 10:
                    self.bad_bodies.append(f"{label} {status} at {self.elapsed():.1f} s: {body[:300]}")

    def next_slot(self) -> float:
        """The start time of the next request: k / rate, open loop. More than 1 s behind (the
        box saturated), the backlog is dropped and counted rather than fired in a burst."""
        now, rate = self.elapsed(), self.args.rate
        if self.slot / rate < now - 1.0:
            caught_up = math.ceil(now * rate)
            self.dropped_slots += caught_up - self.slot
            self.slot = caught_up
        self.slot += 1
        return (self.slot - 1) / rate

    async def http_worker(self, client: httpx.AsyncClient) -> None:
        while True:
            slot = self.next_slot()
            if slot >= self.args.seconds:
                return
            delay = slot - self.elapsed()
            if delay > 0:
                await asyncio.sleep(delay)
            label, method, url, body, user = self.next_request()
            headers = {"Authorization": f"Bearer {self.tokens[user]}"}
            sent_at = time.perf_counter()
            try:
                r = await client.request(method, url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                self.requests[label]["error"] += 1
                if len(self.transport_errors) < 10:
                    self.transport_errors.append(f"{label} at {self.elapsed():.1f} s: {type(exc).__name__}: {exc}")
                continue
            self.latencies[label].append(time.perf_counter() - sent_at)
            self.record(label, r.status_code, r.text, sent_at)

    async def admin_draw(self, client: httpx.AsyncClient) -> None:
        await asyncio.sleep(max(0.0, self.args.seconds / 2 - self.elapsed()))
        week = self.seed.past_week.strftime("%Y-%m-%d")
        self.draw["at"] = self.elapsed()
        sent_at = self.draw["sent_at"] = time.perf_counter()
        try:
            r = await client.post(f"/api/admin/lottery/draw?week={week}",
                                  headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=300)
        except httpx.HTTPError as exc:
            self.draw["error"] = f"{type(exc).__name__}: {exc}"
            return
        self.draw.update(answered_at=time.perf_counter(), seconds=time.perf_counter() - sent_at,
                         status=r.status_code, body=r.text)
        log(f"  [{self.elapsed():5.0f} s] admin draw of {week}: {r.status_code} in "
            f"{self.draw['seconds'] * 1000:,.0f} ms")

    # -- WebSocket -----------------------------------------------------------------------------

    async def ws_client(self, stats: WsClientStats, sockets: dict) -> None:
        url = f"ws://{self.base.split('://', 1)[1]}/ws?token={self.tokens[stats.user]}"
        while not self.stopping:
            try:
                async with ws_connect(url, open_timeout=10, close_timeout=2) as ws:
                    stats.connects += 1
                    sockets[stats.user] = ws
                    async for raw in ws:
                        message = json.loads(raw)
                        event = message.get("event")
                        stats.events[event] += 1
                        if event == "lottery_drawn" and stats.drawn_at is None:
                            stats.drawn_at, stats.drawn_data = time.perf_counter(), message.get("data")
                    if not self.stopping:
                        stats.closes.append(f"closed by the server at {self.elapsed():.1f} s: "
                                            f"{ws.close_code} {ws.close_reason}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    return
                stats.closes.append(f"at {self.elapsed():.1f} s: {type(exc).__name__}: {exc}")
            if not self.stopping:
                await asyncio.sleep(1.0)

    # -- sampling ------------------------------------------------------------------------------

    async def sampler(self) -> None:
        next_rss, next_progress = 0.0, PROGRESS_EVERY
        while True:
            now = self.elapsed()
            if now >= next_rss:
                value = rss_bytes(self.web_pid)
                if value is not None:
                    self.rss.append((now, value))
                next_rss += RSS_EVERY
            if now >= next_progress:
                n = self.total_requests()
                log(f"  [{now:5.0f} s] {n:,} requests ({n / now:,.1f}/s), 5xx {self.count_class('5xx')}, "
                    f"429 {self.count_class('429')}, web RSS {self.rss[-1][1] / MIB:.1f} MiB, "
                    f"shares {self.ingest.rows:,}")
                next_progress += PROGRESS_EVERY
            await asyncio.sleep(max(0.05, min(next_rss, next_progress) - self.elapsed()))

    # -- the run -------------------------------------------------------------------------------

    async def run(self, stop_ingest: threading.Event) -> None:
        args = self.args
        limits = httpx.Limits(max_connections=args.concurrency + 1, max_keepalive_connections=args.concurrency + 1)
        ws_users = self.ws_users()
        self.ws = [WsClientStats(u) for u in ws_users]
        sockets: dict[str, object] = {}
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=30.0) as client:
            self.started = time.perf_counter()
            ws_tasks = [asyncio.create_task(self.ws_client(s, sockets)) for s in self.ws]
            # Let the sockets connect before the clock that matters starts ticking.
            for _ in range(100):
                if len(sockets) == len(self.ws):
                    break
                await asyncio.sleep(0.1)
            self.started = time.perf_counter()
            sampler = asyncio.create_task(self.sampler())
            ingest = threading.Thread(target=ingest_loop, name="soak-ingest", daemon=True,
                                      args=(self.db_url, self.seed, args.ingest_batch, args.ingest_interval,
                                            stop_ingest, self.ingest, random.Random(self.rng.getrandbits(64))))
            ingest.start()
            try:
                workers = [asyncio.create_task(self.http_worker(client)) for _ in range(args.concurrency)]
                draw = asyncio.create_task(self.admin_draw(client))
                await asyncio.gather(*workers)
                self.load_seconds = self.elapsed()
                stop_ingest.set()
                await draw
                # Give a late lottery_drawn a moment to arrive before judging.
                for _ in range(100):
                    if all(s.drawn_at for s in self.ws) or "answered_at" not in self.draw:
                        break
                    await asyncio.sleep(0.1)
                # The last sample, after the load.
                value = rss_bytes(self.web_pid)
                if value is not None:
                    self.rss.append((self.elapsed(), value))
            finally:
                stop_ingest.set()
                self.stopping = True
                sampler.cancel()
                for ws in list(sockets.values()):
                    try:
                        await asyncio.wait_for(ws.close(), timeout=3)
                    except Exception:
                        pass
                for task in ws_tasks:
                    task.cancel()
                await asyncio.gather(sampler, *ws_tasks, return_exceptions=True)
                await asyncio.to_thread(ingest.join, 30)

    def ws_users(self) -> list[str]:
        """Up to half of the expected top 10 (they must get their notification), then others."""
        k = self.args.ws_clients
        top = self.seed.top10[: min(5, k // 2)]
        others = [u for u in self.seed.users if u not in set(top)]
        return top + self.rng.sample(others, k - len(top))


# --- the report ------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]  # nearest rank


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds * 1000:,.0f} ms"


def report(load: Load, baseline: tuple[int, int], after: tuple[int, int], cpu: list[float],
           web_errors: list[str], warmup: float) -> tuple[list[tuple[str, str, str]], list[str]]:
    args, seed = load.args, load.seed
    rows: list[tuple[str, str, str]] = []
    fails: list[str] = []
    secs = load.load_seconds or args.seconds

    def check(ok: bool, reason: str) -> str:
        if not ok:
            fails.append(reason)
        return "ok" if ok else "**FAIL**"

    rows.append(("setup", f"{secs:.0f} s of load on 127.0.0.1; {len(seed.users):,} users "
                 f"({seed.participants:,} in the closed week, {args.shares_per_user} shares each); "
                 f"{args.concurrency} HTTP connections paced to {args.rate:g} req/s; "
                 f"{args.ws_clients} WebSocket clients; ingest {args.ingest_batch} shares every "
                 f"{args.ingest_interval:g} s", ""))

    n = load.total_requests()
    c5, c4, c429 = load.count_class("5xx"), load.count_class("4xx"), load.count_class("429")
    unexpected = load.count_class("unexpected")
    errors = load.count_class("error")
    late = (f"; {load.dropped_slots:,} not sent: the load fell > 1 s behind its schedule"
            if load.dropped_slots else "")
    rows.append(("HTTP requests", f"{n:,} = {n / secs:,.1f} req/s achieved (target {args.rate:g}){late}", ""))
    rows.append(("by status", f"2xx {load.count_class('2xx'):,}; 4xx {c4:,} ({load.expected_404:,} "
                 f"404 on lottery/current before the draw, {unexpected:,} unexpected); 429 {c429:,}; "
                 f"5xx {c5:,}; transport errors {errors:,}",
                 check(c5 == 0 and unexpected == 0 and errors == 0,
                       f"{c5} 5xx, {unexpected} unexpected 4xx, {errors} transport errors")))
    for label, _ in MIX:
        lat = load.latencies.get(label, [])
        counts = load.requests.get(label, Counter())
        total = sum(v for k, v in counts.items() if k != "unexpected")
        extra = (f", 429 {counts['429']:,}" if label == "POST /api/games/play" else
                 f", 404 before the draw {load.expected_404:,}" if label == "GET /api/lottery/current" else "")
        rows.append((f"`{label}`", f"{total:,} ({counts['2xx']:,} 2xx{extra}); p50 {ms(percentile(lat, 50))}, "
                     f"p99 {ms(percentile(lat, 99))}, max {ms(max(lat, default=float('nan')))}", ""))

    draw = load.draw
    if "status" in draw:
        try:
            body = json.loads(draw["body"])
        except ValueError:
            body = {}
        ok = (draw["status"] == 200 and body.get("totalParticipants") == seed.participants
              and body.get("totalShares") == seed.past_shares and body.get("status") == "completed")
        rows.append((f"`{DRAW_LABEL}` at {draw['at']:.0f} s",
                     f"{draw['status']} in {ms(draw['seconds'])}: {body.get('totalParticipants', '?'):,} "
                     f"participants, {body.get('totalShares', '?'):,} shares "
                     f"(seeded {seed.participants:,} / {seed.past_shares:,})",
                     check(ok, f"admin draw answered {draw['status']} "
                               f"{draw['body'][:200] if draw['status'] != 200 else 'with other totals'}")))
    else:
        rows.append((f"`{DRAW_LABEL}`", draw.get("error", "not sent"), check(False, "admin draw not answered")))

    ws = load.ws
    got = [s for s in ws if s.drawn_at is not None]
    right = [s for s in got if s.drawn_data and s.drawn_data.get("totalParticipants") == seed.participants]
    closes = [c for s in ws for c in s.closes]
    sent = draw.get("sent_at")
    spread = (f" {ms(min(s.drawn_at for s in got) - sent)} .. {ms(max(s.drawn_at for s in got) - sent)}"
              f" after the draw request was sent" if got and sent else "")
    top_set = set(seed.top10)
    top_clients = [s for s in ws if s.user in top_set]
    notified_ok = all(s.events["notification"] == 1 for s in top_clients) and \
        all(s.events["notification"] == 0 for s in ws if s.user not in top_set)
    pings = sum(s.events["ping"] for s in ws)
    rows.append(("WebSocket clients",
                 f"{len(ws)} connected throughout ({len(closes)} drops); {len(got)}/{len(ws)} got lottery_drawn"
                 f"{spread}; {sum(s.events['notification'] for s in top_clients)}/{len(top_clients)} "
                 f"top-10 notifications; {pings:,} pings",
                 check(len(right) == len(ws) and not closes and notified_ok,
                       f"WebSocket: {len(right)}/{len(ws)} got the right lottery_drawn, {len(closes)} drops, "
                       f"notifications {'ok' if notified_ok else 'wrong'}")))

    ing = load.ingest
    gained_agg, gained_events = after[0] - baseline[0], after[1] - baseline[1]
    rows.append(("share ingest (COPY / INSERT in turn)",
                 f"{ing.batches:,} batches, {ing.rows:,} rows ({ing.rows / secs:,.0f}/s), {ing.accepted:,} accepted; "
                 f"batch p50 {ms(percentile(ing.latencies, 50))}, p99 {ms(percentile(ing.latencies, 99))}"
                 + (f"; {ing.late} late" if ing.late else "") + (f"; errors: {ing.errors}" if ing.errors else ""),
                 check(not ing.errors and ing.batches > 0, f"ingest errors {ing.errors[:2]}")))
    lost = ing.accepted - gained_agg
    rows.append(("shares aggregated (open week)",
                 f"share_weekly_best +{gained_agg:,} of {ing.accepted:,} accepted: lost {lost:,}; "
                 f"mining_events +{gained_events:,} of {ing.rows:,} rows",
                 check(lost == 0 and gained_events == ing.rows,
                       f"lost shares: {lost} (events {gained_events} vs {ing.rows})")))

    after_warmup = [(t, v) for t, v in load.rss if t >= warmup]
    if len(after_warmup) >= 3:
        values = [v for _, v in after_warmup]
        first, lo, hi, last = values[0], min(values), max(values), values[-1]
        growth = (hi - lo) / first
        rows.append((f"web RSS after warm-up ({warmup:.0f} s, {len(values)} samples)",
                     f"first {first / MIB:.1f}, min {lo / MIB:.1f}, max {hi / MIB:.1f}, last {last / MIB:.1f} MiB: "
                     f"(max - min) / first = {growth:.1%} (at start {load.rss[0][1] / MIB:.1f} MiB)",
                     check(growth <= args.rss_tolerance,
                           f"web RSS grew {growth:.1%} after warm-up (limit {args.rss_tolerance:.0%})")))
    else:
        rows.append(("web RSS after warm-up", f"only {len(after_warmup)} samples",
                     check(False, "too few RSS samples after warm-up")))
    web_cpu, pg_cpu, own_cpu, machine = cpu
    others = max(0.0, machine * (os.cpu_count() or 1) - web_cpu - pg_cpu - own_cpu)
    rows.append(("CPU, in cores", f"web process {web_cpu:.2f}; PostgreSQL {pg_cpu:.2f}; this load generator "
                 f"(HTTP, WebSocket, ingest) {own_cpu:.2f}; anything else on the machine {others:.2f}; "
                 f"machine {machine:.0%} busy ({os.cpu_count()} cores)", ""))
    rows.append(("web log", f"{len(web_errors)} ERROR/Traceback lines",
                 check(not web_errors, f"{len(web_errors)} errors in the web log")))
    return rows, fails


def print_table(rows: list[tuple[str, str, str]]) -> None:
    print("| measure | figure | check |")
    print("|---|---|---|")
    for name, figure, verdict in rows:
        print(f"| {name} | {figure} | {verdict} |")


# --- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="load duration (default 300)")
    parser.add_argument("--rate", type=float, default=150, help="target HTTP requests/s (default 150)")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP connections (default 16)")
    parser.add_argument("--users", type=int, default=5000, help="seeded users (default 5000)")
    parser.add_argument("--shares-per-user", type=int, default=20, help="closed-week shares per user (default 20)")
    parser.add_argument("--ws-clients", type=int, default=50, help="WebSocket clients (default 50)")
    parser.add_argument("--ingest-batch", type=int, default=500, help="shares per ingest batch (default 500)")
    parser.add_argument("--ingest-interval", type=float, default=0.5, help="seconds between batches (default 0.5)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before RSS must stay flat (default: min(60, 20%% of --seconds))")
    parser.add_argument("--rss-tolerance", type=float, default=0.10, help="(max - min) / first (default 0.10)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    args = parser.parse_args(argv)
    if args.seconds < 10 or args.rate <= 0 or args.concurrency < 1 or args.users < 20 or args.ws_clients < 1:
        parser.error("need --seconds >= 10, --rate > 0, --concurrency >= 1, --users >= 20, --ws-clients >= 1")
    args.ws_clients = min(args.ws_clients, args.users)
    warmup = args.warmup if args.warmup is not None else min(60.0, 0.2 * args.seconds)

    def terminate(signum, frame):
        # As a Ctrl-C: whichever SIGINT handler is current (asyncio.run's cancels the load cleanly).
        os.kill(os.getpid(), signal.SIGINT)

    signal.signal(signal.SIGTERM, terminate)
    # A shell's background job starts with SIGINT ignored, and asyncio.run then leaves it so.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    secret = secrets.token_hex(32)
    settings = Settings(jwt_secret=secret)
    workdir = Path(tempfile.mkdtemp(prefix="lottery-soak-"))
    web_log = workdir / "uvicorn.log"
    web: subprocess.Popen | None = None
    stop_ingest = threading.Event()
    keep_log = True
    try:
        with scratch_cluster() as (url, _):
            try:
                seed = seed_database(url, args.users, args.shares_per_user, rng)
                baseline = open_week_totals(url, seed.open_week)
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                log(f"  starting uvicorn web.app:app on {base} (log {web_log})")
                web = start_web(url, secret, port, web_log)
                wait_healthy(web, base)
                ttl = int(args.seconds) + 900
                tokens = {u: issue_token(u, ttl_seconds=ttl, settings=settings) for u in seed.users}
                load = Load(seed=seed, args=args, base=base, tokens=tokens, db_url=url,
                            admin_token=issue_token("soak-admin", admin=True, ttl_seconds=ttl, settings=settings),
                            web_pid=web.pid, rng=rng)
                log(f"  {args.seconds:.0f} s of load: {args.rate:g} req/s target, {args.concurrency} connections, "
                    f"{args.ws_clients} WebSocket clients, {args.ingest_batch} shares / {args.ingest_interval:g} s; "
                    f"the draw at {args.seconds / 2:.0f} s")
                with psycopg.connect(url) as conn:
                    datadir = Path(conn.execute("SHOW data_directory").fetchone()[0])
                cpu0 = (cpu_seconds(web.pid), cluster_cpu_seconds(datadir), own_cpu_seconds())
                machine0 = machine_cpu()
                asyncio.run(load.run(stop_ingest))
                secs = load.load_seconds or args.seconds
                cpu1 = (cpu_seconds(web.pid), cluster_cpu_seconds(datadir), own_cpu_seconds())
                machine1 = machine_cpu()
                cpu = [(b - a) / secs for a, b in zip(cpu0, cpu1)]
                cpu.append((machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]))
                after = open_week_totals(url, seed.open_week)
            finally:
                # Before the cluster stops (scratch_cluster's exit), on every path, Ctrl-C included.
                stop_ingest.set()
                stop_web(web)
        text = web_log.read_text(errors="replace")
        web_errors = [line for line in text.splitlines() if re.search(r"\bERROR\b|Traceback", line)]
        log("  web RSS samples (MiB): " + " ".join(f"{t:.0f}s={v / MIB:.1f}" for t, v in load.rss))
        rows, fails = report(load, baseline, after, cpu, web_errors, warmup)
        for line in load.bad_bodies + load.transport_errors + [c for s in load.ws for c in s.closes][:10] \
                + web_errors[:20]:
            log(f"  ! {line}")
        print()
        print_table(rows)
        print()
        if fails:
            print(f"soak: FAIL ({'; '.join(fails)})")
            log(f"  web log kept: {web_log}")
            return 1
        keep_log = False
        print("soak: PASS")
        return 0
    except KeyboardInterrupt:
        keep_log = False
        log("  interrupted: uvicorn and the cluster are stopped")
        print("soak: FAIL (interrupted)")
        return 130
    except Exception as exc:
        print(f"soak: FAIL ({type(exc).__name__}: {exc})")
        if web_log.exists():
            log(f"  web log kept: {web_log}; its tail:\n"
                + "\n".join(web_log.read_text(errors="replace").splitlines()[-30:]))
        return 1
    finally:
        if not keep_log or not web_log.exists():
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
