"""Connection pools. Every endpoint is one SQL statement returning JSON text.

Async pool (psycopg_pool.AsyncConnectionPool) rather than a sync pool in
threads: Starlette and the WebSocket relay share one event loop, so a request
waiting on the database costs no thread.

Outages: each pool has a Gate that knows whether its database accepts
connections. While it does not, a request is answered 503 at once instead of
waiting out the pool's timeout, and a probe connects every
DB_PROBE_SECONDS; the first success reopens the gate and replaces the pool's
idle connections, so the first request after the database is back succeeds.
The pool itself never sleeps in a reconnection backoff (reconnect_timeout 0:
a failed connection attempt is given up and retried on demand); a backoff
left pending there, or a request stepping through stale connections one
backoff sleep at a time (1 s, 2 s, 4 s ...), is what made recovery take up
to 12 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import select
import time

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from web import metrics
from web.config import Settings

log = logging.getLogger("web.db")

# Errors that mean no server answered (as opposed to an error in the SQL).
_GONE_SQLSTATES = {"57P01", "57P02", "57P03"}


def server_unavailable(exc: BaseException) -> bool:
    if not isinstance(exc, psycopg.Error):
        return isinstance(exc, PoolTimeout)
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return state.startswith("08") or state in _GONE_SQLSTATES


class DatabaseDown(psycopg.OperationalError):
    """Raised at once while the gate is closed: the web layer answers it 503."""


class Gate:
    """Whether one pool's database accepts connections, told by a probe.

    A hint that it may not (a stale connection, a failed connection attempt, a
    request that found the server gone) starts the probe: one fresh connection
    attempt every `interval` seconds until one succeeds. A failed attempt
    closes the gate, and the requests already waiting for a connection are
    answered 503 too; a success opens it again."""

    def __init__(self, pool: "GatedPool", url: str, connect_timeout: int, interval: float):
        self.pool, self.url, self.connect_timeout, self.interval = pool, url, connect_timeout, interval
        self.down = False
        self.down_since = 0.0
        self.waiting: set[asyncio.Task] = set()   # requests inside pool.getconn()
        self._cut: set[asyncio.Task] = set()      # of those, the ones this gate cancelled
        self._probe: asyncio.Task | None = None

    def suspect(self) -> None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._run(), name=f"db-probe-{self.pool.name}")

    async def _run(self) -> None:
        while True:
            try:
                conn = await AsyncConnection.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout,
                                                     application_name=f"lottery-web-probe-{self.pool.name}")
            except psycopg.Error as exc:
                if not self.down:
                    self._close(exc)
                await asyncio.sleep(self.interval)
                continue
            await conn.close()
            if self.down:
                await self._open()
            return

    def _close(self, exc: psycopg.Error) -> None:
        self.down, self.down_since = True, time.monotonic()
        log.warning("database unreachable, answering 503 until it is back",
                    extra={"pool": self.pool.name, "error": str(exc).strip().splitlines()[0] if str(exc) else ""})
        for task in list(self.waiting):
            self._cut.add(task)
            task.cancel()

    async def _open(self) -> None:
        # Connections left idle across the outage may be stale: new ones for all.
        await self.pool.drain()
        self.down = False
        log.info("database reachable again", extra={"pool": self.pool.name,
                                                    "down_seconds": round(time.monotonic() - self.down_since, 3)})

    def cut_short(self, task: asyncio.Task) -> bool:
        """Whether `task` was cancelled by this gate (and so must answer 503, not stop)."""
        if task in self._cut:
            self._cut.discard(task)
            task.uncancel()
            return True
        return False


class GatedPool(AsyncConnectionPool):
    """The pool behind a Gate, with the acquisition time measured."""

    def __init__(self, url: str, settings: Settings, name: str, **kwargs):
        super().__init__(url, name=name, check=self._check_idle, reconnect_timeout=0,
                         reconnect_failed=lambda pool: pool.gate.suspect(), **kwargs)
        self.gate = Gate(self, url, settings.connect_timeout, settings.db_probe_seconds)
        self._acquire = metrics.POOL_ACQUIRE.labels(name)
        self._unavailable = metrics.POOL_UNAVAILABLE.labels(name)

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None):
        gate = self.gate
        if gate.down:
            self._unavailable.inc()
            raise DatabaseDown("the database is unreachable")
        task = asyncio.current_task()
        gate.waiting.add(task)
        started = time.perf_counter()
        try:
            conn = await self.getconn(timeout)
        except asyncio.CancelledError:
            if gate.cut_short(task):
                self._unavailable.inc()
                raise DatabaseDown("the database became unreachable") from None
            raise
        except PoolTimeout:
            gate.suspect()
            raise
        finally:
            gate.waiting.discard(task)
        self._acquire.observe(time.perf_counter() - started)
        try:
            yield conn
        except psycopg.Error as exc:
            if server_unavailable(exc):
                gate.suspect()
            raise
        finally:
            await self.putconn(conn)

    async def _check_idle(self, conn: AsyncConnection) -> None:
        """The pool's check before it hands a connection out, without a round trip.

        An idle autocommit connection has nothing to read unless the server has let
        it go: a restart or a terminated backend leaves its FATAL message and EOF on
        the socket. Only then pay for the real check, which raises and so makes the
        pool drop the stale connection and take another instead of failing a request.
        (A round trip on every checkout cost the web process 0.1-0.2 ms of CPU per
        request, and the database a wakeup; the poll costs ~1 us.) One stale
        connection means the others idle beside it most likely are too: they are
        all replaced at once, and the gate asks whether the server is there.
        """
        poller = select.poll()  # not select.select(): fds above 1024 with many WebSocket clients
        poller.register(conn.fileno(), select.POLLIN)
        if poller.poll(0):
            try:
                await AsyncConnectionPool.check_connection(conn)
            except Exception:
                await self.drain()
                self.gate.suspect()
                raise


def make_pool(url: str, settings: Settings, name: str) -> GatedPool:
    async def configure(conn: AsyncConnection) -> None:
        # A runaway request must not hold a connection forever.
        await conn.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")
        if settings.database_role:
            # Least privilege whatever the login: the role may only EXECUTE the
            # API functions, never touch a table directly.
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(settings.database_role)))

    return GatedPool(
        url,
        settings,
        name,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
        # Each request is one statement: autocommit, no idle-in-transaction.
        kwargs={"autocommit": True, "connect_timeout": settings.connect_timeout,
                "application_name": f"lottery-web-{name}"},
        configure=configure,
        open=False,
    )


class Database:
    """The write pool, and the read pool (the same one unless DATABASE_READ_URL is set)."""

    def __init__(self, settings: Settings):
        self.write = make_pool(settings.database_url, settings, "write")
        self.read = (make_pool(settings.database_read_url, settings, "read")
                     if settings.database_read_url and settings.database_read_url != settings.database_url
                     else self.write)

    async def open(self) -> None:
        # wait=False: the app starts (and answers 503) even while the database is down.
        await self.write.open(wait=False)
        if self.read is not self.write:
            await self.read.open(wait=False)

    def pools(self) -> dict[str, GatedPool]:
        return {"write": self.write} if self.read is self.write else {"write": self.write, "read": self.read}

    async def operations(self) -> dict:
        """lottery_operations(): the database figures of /metrics."""
        return json.loads((await Database.fetch(self.write, "SELECT lottery_operations()::text"))[0])

    async def close(self) -> None:
        await self.write.close(timeout=5)
        if self.read is not self.write:
            await self.read.close(timeout=5)

    @staticmethod
    async def fetch(pool: GatedPool, query: str, params: tuple = ()) -> tuple:
        """The first row of one statement (the SQL function's JSON as text)."""
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    @staticmethod
    @contextlib.asynccontextmanager
    async def long_transaction(pool: GatedPool):
        """A transaction without the request statement_timeout (a big draw may take a while)."""
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 0")
            yield conn

    @staticmethod
    async def one(conn: AsyncConnection, query: str, params: tuple = ()) -> tuple:
        cur = await conn.execute(query, params)
        return await cur.fetchone()
