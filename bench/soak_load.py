"""The soak's load (bench/soak.py): paced HTTP requests over the API's mix, WebSocket
clients connected throughout, the admin draw at the midpoint, a thread ingesting
shares as the collector does, and the web process's RSS sampled meanwhile.
Everything it counts lands in a Load, which bench/soak.py judges."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
import psycopg
from psycopg.types.json import Jsonb
from websockets.asyncio.client import connect as ws_connect

from bench.common import MIB, log, rss_bytes
from bench.shares import POOL_DIFFICULTIES, random_share, random_ts
from core.rules import GAME_TYPES

RSS_EVERY = 5.0          # seconds between RSS samples
PROGRESS_EVERY = 30.0    # seconds between progress lines on stderr

# (label, weight): label is the route template the request is reported under.
MIX = (
    ("GET /api/games/weekly-data", 25),
    ("GET /api/games/weekly-data/{game_type}", 25),
    ("GET /api/games/history", 15),
    ("POST /api/games/play", 25),
    ("GET /api/lottery/current", 10),
)
DRAW_LABEL = "POST /api/admin/lottery/draw"


def copy_rows(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.cursor().copy("COPY mining_events (ts, event_type, payload) FROM STDIN") as copy:
        for ts, kind, payload in rows:
            copy.write_row((ts, kind, json.dumps(payload)))


def insert_rows(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """One multi-row INSERT: one statement, one trigger batch."""
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    conn.execute(f"INSERT INTO mining_events (ts, event_type, payload) VALUES {values}",
                 [p for ts, kind, payload in rows for p in (ts, kind, Jsonb(payload))])


@dataclass
class Seed:
    """What bench/soak.py seeded, and what the draw of the closed week must find."""
    past_week: dt.datetime
    open_week: dt.datetime
    users: list[str]
    pool_diff: dict[str, int]
    participants: int          # past week: users with an accepted share
    past_shares: int           # past week: accepted shares (the draw's totalShares)
    top10: list[str]           # past week's top 10, by ranked_week()
    open_rows: int


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
    """`batch` shares every `interval` s into the open week as role lottery_ingest, COPY and
    multi-row INSERT in turn, until `stop`; what happened lands in `stats`."""
    # The seeded users plus 20% newcomers: both the update and the insert path of the upsert.
    newcomers = [f"bc1qsoaknew{i:05d}" for i in range(max(1, len(seed.users) // 5))]
    users = seed.users + newcomers
    pool_diff = {**seed.pool_diff, **{u: rng.choice(POOL_DIFFICULTIES) for u in newcomers}}
    week_end = seed.open_week + dt.timedelta(days=7) - dt.timedelta(microseconds=1)
    try:
        with psycopg.connect(url, application_name="soak-ingest") as conn:
            conn.execute("SET ROLE lottery_ingest")
            conn.commit()
            next_at = time.monotonic()
            while not stop.is_set():
                now = min(dt.datetime.now(dt.timezone.utc), week_end)
                start = max(seed.open_week, now - dt.timedelta(hours=1))
                rows, accepted = [], 0
                for _ in range(batch):
                    u = rng.choice(users)
                    share = random_share(rng, u, pool_diff[u], random_ts(rng, start, now))
                    rows.append(share.row())
                    accepted += share.accepted
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
            url = f"/api/games/weekly-data/{self.rng.choice(GAME_TYPES)}" + (
                f"?week={past}" if self.rng.random() < 0.2 else "")
            return label, "GET", url, None, user
        if label == "GET /api/games/history":
            game = f"&game_type={self.rng.choice(GAME_TYPES)}" if self.rng.random() < 0.3 else ""
            return label, "GET", f"/api/games/history?limit=20&offset=0{game}", None, user
        if label == "POST /api/games/play":
            body = {"gameType": self.rng.choice(GAME_TYPES),
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
        log(f"[{self.elapsed():5.0f} s] admin draw of {week}: {r.status_code} in "
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
                        if event == "notification":  # counted by kind: lottery_result, personal_best
                            event += ":" + str((message.get("data") or {}).get("subtype"))
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
                log(f"[{now:5.0f} s] {n:,} requests ({n / now:,.1f}/s), 5xx {self.count_class('5xx')}, "
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
