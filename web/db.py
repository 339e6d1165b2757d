"""Connection pools. Every endpoint is one SQL statement returning JSON text.

Async pool (psycopg_pool.AsyncConnectionPool) rather than a sync pool in
threads: Starlette and the WebSocket relay share one event loop, so a request
waiting on the database costs no thread, and the pool's wait timeout turns an
outage into a quick 503 instead of a pile of blocked worker threads.
"""

from __future__ import annotations

import contextlib
import select

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from web.config import Settings


async def check_idle(conn: AsyncConnection) -> None:
    """The pool's check before it hands a connection out, without a round trip.

    An idle autocommit connection has nothing to read unless the server has let
    it go: a restart or a terminated backend leaves its FATAL message and EOF on
    the socket. Only then pay for the real check, which raises and so makes the
    pool drop the stale connection and take another instead of failing a request.
    (A round trip on every checkout cost the web process 0.1-0.2 ms of CPU per
    request, and the database a wakeup; the poll costs ~1 us.)
    """
    poller = select.poll()  # not select.select(): fds above 1024 with many WebSocket clients
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(conn)


def make_pool(url: str, settings: Settings, name: str) -> AsyncConnectionPool:
    async def configure(conn: AsyncConnection) -> None:
        # A runaway request must not hold a connection forever.
        await conn.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")
        if settings.database_role:
            # Least privilege whatever the login: the role may only EXECUTE the
            # API functions, never touch a table directly.
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(settings.database_role)))

    return AsyncConnectionPool(
        url,
        name=name,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
        # Short so that after an outage the pool retries on the next request
        # instead of sleeping through a long exponential backoff.
        reconnect_timeout=settings.reconnect_timeout,
        # Each request is one statement: autocommit, no idle-in-transaction.
        kwargs={"autocommit": True, "connect_timeout": settings.connect_timeout,
                "application_name": f"lottery-web-{name}"},
        configure=configure,
        # Test a connection before handing it out: after a database restart the
        # stale ones are dropped here rather than failing a request.
        check=check_idle,
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

    async def close(self) -> None:
        await self.write.close(timeout=5)
        if self.read is not self.write:
            await self.read.close(timeout=5)

    @staticmethod
    async def fetch(pool: AsyncConnectionPool, query: str, params: tuple = ()) -> tuple:
        """The first row of one statement (the SQL function's JSON as text)."""
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    @staticmethod
    @contextlib.asynccontextmanager
    async def long_transaction(pool: AsyncConnectionPool):
        """A transaction without the request statement_timeout (a big draw may take a while)."""
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 0")
            yield conn

    @staticmethod
    async def one(conn: AsyncConnection, query: str, params: tuple = ()) -> tuple:
        cur = await conn.execute(query, params)
        return await cur.fetchone()
