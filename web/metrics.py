"""Prometheus metrics (prometheus-client): GET /metrics, or a port of its own.

Two kinds of figures:

* Process figures, kept by this process: HTTP requests by route template and
  status with a latency histogram, the connection pools (size, in use, waiting,
  acquisition time, database reachable), WebSocket clients, messages, clients
  dropped as slow, relay reconnects, connections cut by the server's deadlines.
* Database figures, the same for every process: one call of the SQL function
  lottery_operations() (db/functions/95_operations.sql), cached for
  METRICS_CACHE_SECONDS, turned into gauges at scrape time.

Several uvicorn workers: set PROMETHEUS_MULTIPROC_DIR to an empty directory
writable by every worker before they start (`python -m web.server` empties it
when it starts them). prometheus-client's multiprocess mode then keeps each
worker's figures in files there, and whichever worker answers a scrape reports
them summed (counters, histograms, and gauges in "livesum"/"livemin" mode).
Without it each process reports only itself (fine for one worker).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from datetime import date, datetime, timezone
from datetime import time as dt_time
from typing import Iterable

from prometheus_client import (CONTENT_TYPE_LATEST, GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR,
                               CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics,
                               generate_latest, start_http_server)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
disable_created_metrics()  # no *_created series: half the output, nothing any rule here reads

# One registry for what this process measures (the module's metrics below);
# a scrape reads it, or in multiprocess mode every worker's files instead.
REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "lottery_http_requests", "HTTP requests answered, by method, route template and status "
    "(499: the client went away first; 408: it did not send its body in time)",
    ["method", "route", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram(
    "lottery_http_request_duration_seconds", "Time from the request's start to its last response byte",
    ["method", "route"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
HTTP_CUT = Counter(
    "lottery_http_connections_cut", "Connections the server closed because a request's headers or "
    "body did not arrive in time, or its URL or headers were too large", ["reason"], registry=REGISTRY)

POOL_SIZE = Gauge("lottery_db_pool_size", "Connections open in the pool", ["pool"],
                  multiprocess_mode="livesum", registry=REGISTRY)
POOL_IN_USE = Gauge("lottery_db_pool_in_use", "Connections handed out to requests", ["pool"],
                    multiprocess_mode="livesum", registry=REGISTRY)
POOL_WAITING = Gauge("lottery_db_pool_waiting", "Requests waiting for a connection", ["pool"],
                     multiprocess_mode="livesum", registry=REGISTRY)
POOL_MAX = Gauge("lottery_db_pool_max_size", "The pool's maximum size", ["pool"],
                 multiprocess_mode="livesum", registry=REGISTRY)
POOL_ACQUIRE = Histogram(
    "lottery_db_pool_acquire_seconds", "Time a request waited for a pooled connection",
    ["pool"], buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0), registry=REGISTRY)
POOL_UNAVAILABLE = Counter(
    "lottery_db_unavailable_answers", "Requests answered 503 at once because the database was "
    "known to be unreachable", ["pool"], registry=REGISTRY)
DATABASE_UP = Gauge("lottery_db_up", "1 while the pool's database accepts connections, else 0",
                    ["pool"], multiprocess_mode="livemin", registry=REGISTRY)

WS_CLIENTS = Gauge("lottery_ws_clients", "WebSocket clients connected", multiprocess_mode="livesum",
                   registry=REGISTRY)
WS_SESSIONS = Counter("lottery_ws_sessions", "WebSocket handshakes, by outcome (accepted, refused)",
                      ["outcome"], registry=REGISTRY)
WS_MESSAGES = Counter("lottery_ws_messages_sent", "WebSocket messages sent to clients", registry=REGISTRY)
WS_DROPPED = Counter("lottery_ws_clients_dropped", "WebSocket clients dropped for reading too slowly "
                     "(closed 1013, or aborted when even the close could not be sent)", registry=REGISTRY)
WS_RELAY_RECONNECTS = Counter("lottery_ws_relay_reconnects", "Times the LISTEN relay reconnected to "
                              "the database", registry=REGISTRY)
WS_RELAY_UP = Gauge("lottery_ws_relay_listening", "1 while the relay LISTENs on lottery_events",
                    multiprocess_mode="livemin", registry=REGISTRY)

if not MULTIPROCESS:
    # Per-process figures that multiprocess mode cannot sum.
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        REGISTRY.register(collector)


def _epoch(value: str | None) -> float | None:
    """An ISO 8601 instant ("...Z") or date (a UTC midnight) of the report as unix seconds."""
    if value is None:
        return None
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), dt_time(), tzinfo=timezone.utc).timestamp()
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _gauge(name: str, doc: str, value, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), float(value))
    return family


class DatabaseFigures(Collector):
    """lottery_operations() as gauges, read at most once per `ttl` seconds.

    `refresh()` runs on the app's event loop; `collect()` is called by
    prometheus-client during a scrape, on the loop (after a refresh) or in the
    thread of the separate metrics port (it then asks the loop for a refresh)."""

    STATUS = {"ok": 0, "warning": 1, "critical": 2}

    def __init__(self, db, ttl: float):
        self.db, self.ttl = db, ttl
        self.report: dict | None = None
        self.read_at = -math.inf         # monotonic time of the last successful read
        self.tried_at = -math.inf
        self.ok = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        self.loop = asyncio.get_running_loop()
        async with self._lock:
            if time.monotonic() - self.tried_at < self.ttl:
                return
            self.tried_at = time.monotonic()
            try:
                self.report = await self.db.operations()
                self.read_at, self.ok = time.monotonic(), True
            except Exception:  # an outage: say so in lottery_operations_up, keep the rest of the scrape
                self.ok = False

    def collect(self) -> Iterable[Metric]:
        loop = self.loop
        if loop is not None and loop.is_running() and not _in_event_loop():
            try:
                asyncio.run_coroutine_threadsafe(self.refresh(), loop).result(timeout=10)
            except Exception:
                self.ok = False
        yield _gauge("lottery_operations_up", "1 when the last read of lottery_operations() succeeded", int(self.ok))
        if self.report is None:
            return
        yield _gauge("lottery_operations_age_seconds", "Age of the database figures below (they are cached)",
                     time.monotonic() - self.read_at)
        yield from self.families(self.report)

    @classmethod
    def families(cls, r: dict) -> Iterable[Metric]:
        weeks = r.get("weeks") or []
        open_week = next((w for w in weeks if w["open"]), None)
        yield _gauge("lottery_open_week_participants", "Participants of the open week (live, from the rank buckets)",
                     open_week["participants"] if open_week else 0)
        per_week = {
            "lottery_week_participants": ("Participants of the week (the draw's once drawn)", "participants"),
            "lottery_week_shares": ("Accepted, honest shares folded into the week", "shares"),
            "lottery_week_unverified_shares": ("Of those, shares without a usable hash (their claim is unchecked)",
                                               "unverifiedShares"),
            "lottery_week_forged_shares": ("Shares left out of the week because their sdiff exceeds their hash",
                                           "forgedShares"),
            "lottery_week_raw_events": ("Raw events in the week's mining_events partition (statistics estimate)",
                                        "rawEvents"),
        }
        for name, (doc, key) in per_week.items():
            family = GaugeMetricFamily(name, doc, labels=["week"])
            for week in weeks:
                if week.get(key) is not None:
                    family.add_metric([week["weekStart"]], float(week[key]))
            yield family
        last = r.get("lastDraw") or {}
        yield _gauge("lottery_last_draw_week_start_timestamp_seconds", "Start of the last drawn week",
                     _epoch(last.get("weekStart")))
        yield _gauge("lottery_last_draw_completed_timestamp_seconds", "When the last draw completed",
                     _epoch(last.get("drawnAt")))
        yield _gauge("lottery_last_draw_duration_seconds", "How long the last draw took", last.get("durationSeconds"))
        yield _gauge("lottery_last_draw_participants", "Participants of the last draw", last.get("participants"))
        due = r.get("due") or {}
        yield _gauge("lottery_draws_due", "Closed weeks with events and no completed draw", due.get("weeks", 0))
        yield _gauge("lottery_draw_overdue_seconds", "Seconds since the oldest undrawn closed week became "
                     "drawable (0 when none)", due.get("overdueSeconds", 0))
        fold = r.get("fold") or {}
        yield _gauge("lottery_fold_lag_seconds", "How old the oldest event the background fold has not reached "
                     "can be (0 when none is pending)", fold.get("lagSeconds", 0))
        yield _gauge("lottery_fold_lag_events", "Events numbered above the background fold's watermark",
                     fold.get("lagEvents", 0))
        job_families = {
            "lottery_cron_job_running": ("1 while the job's last run has not ended", lambda j: j["status"] == "running"),
            "lottery_cron_job_last_run_failed": ("1 when the job's last run failed", lambda j: j["status"] == "failed"),
            "lottery_cron_job_last_run_start_timestamp_seconds": ("When the job's last run started",
                                                                  lambda j: _epoch(j["startedAt"])),
            "lottery_cron_job_last_success_timestamp_seconds": ("When the job last succeeded",
                                                                lambda j: _epoch(j["lastSuccessAt"])),
            "lottery_cron_job_runs": ("Runs of the job recorded in scheduled_job_runs", lambda j: j["runs"]),
            "lottery_cron_job_failures": ("Failed runs of the job", lambda j: j["failures"]),
        }
        for name, (doc, value) in job_families.items():
            family = GaugeMetricFamily(name, doc, labels=["job"])
            for job in r.get("jobs") or []:
                if (v := value(job)) is not None:
                    family.add_metric([job["job"]], float(v))
            yield family
        partitions = r.get("partitions") or {}
        yield _gauge("lottery_partitions_covered_until_timestamp_seconds",
                     "End of the last weekly partition of mining_events", _epoch(partitions.get("coveredUntil")))
        findings = GaugeMetricFamily("lottery_finding", "1 for each finding of `lottery status --check`",
                                     labels=["code", "severity", "subject"])
        for f in r.get("findings") or []:
            findings.add_metric([f["code"], f["severity"], f["subject"] or ""], 1.0)
        yield findings
        yield _gauge("lottery_health_status", "Worst finding: 0 ok, 1 warning, 2 critical",
                     cls.STATUS.get(r.get("status"), 2))


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Metrics:
    """The metrics of one app: refreshes the sampled gauges, answers scrapes."""

    def __init__(self, settings, db, hub, relay):
        self.settings, self.db, self.hub, self.relay = settings, db, hub, relay
        self.figures = DatabaseFigures(db, settings.metrics_cache_seconds)
        self.scrape_registry = CollectorRegistry(auto_describe=False)
        if MULTIPROCESS:
            MultiProcessCollector(self.scrape_registry)
        else:
            self.scrape_registry.register(_Forward(REGISTRY))
        self.scrape_registry.register(self.figures)
        self._relay_seen = self._dropped_seen = 0
        self._task: asyncio.Task | None = None
        self._server = None

    def sample(self) -> None:
        """Gauges read from the pool, hub and relay objects of this process."""
        for name, pool in self.db.pools().items():
            stats = pool.get_stats()
            POOL_SIZE.labels(name).set(stats["pool_size"])
            POOL_IN_USE.labels(name).set(stats["pool_size"] - stats["pool_available"])
            POOL_WAITING.labels(name).set(stats["requests_waiting"])
            POOL_MAX.labels(name).set(stats["pool_max"])
            DATABASE_UP.labels(name).set(0 if pool.gate.down else 1)
        WS_RELAY_UP.set(1 if self.relay.state == "listening" else 0)
        if self.relay.reconnects > self._relay_seen:
            WS_RELAY_RECONNECTS.inc(self.relay.reconnects - self._relay_seen)
            self._relay_seen = self.relay.reconnects
        if self.hub.dropped > self._dropped_seen:
            WS_DROPPED.inc(self.hub.dropped - self._dropped_seen)
            self._dropped_seen = self.hub.dropped

    async def _sampler(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(1.0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sampler(), name="metrics-sampler")
        self.figures.loop = asyncio.get_running_loop()
        listen = self.settings.metrics_listen
        if listen and listen != "app":
            host, _, port = listen.rpartition(":")
            try:
                self._server, _thread = start_http_server(int(port), addr=host or "127.0.0.1",
                                                          registry=self.scrape_registry)
            except OSError:
                # Another worker of this server has the port: any one of them answers for all.
                self._server = None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if MULTIPROCESS:
            mark_process_dead(os.getpid())  # this worker's live gauges leave the sums

    async def scrape(self) -> bytes:
        self.sample()
        await self.figures.refresh()
        return generate_latest(self.scrape_registry)


class _Forward(Collector):
    """A registry's metrics inside another registry (the scrape one)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text format; no token (restrict it at the network, or use METRICS_LISTEN)."""
    return Response(await request.state.metrics.scrape(), media_type=CONTENT_TYPE_LATEST)
