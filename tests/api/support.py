"""Helpers of the API tests: tokens, app settings, shares placed relative to the
real current week, and a real uvicorn server in a thread."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time

import uvicorn

from tests.helpers import TRUEDIFFONE
from web.auth import issue_token
from web.config import Settings

SECRET = "api-tests-" + secrets.token_hex(24)
OTHER_SECRET = "not-the-key-" + secrets.token_hex(24)


def make_settings(database_url: str, **overrides) -> Settings:
    values = dict(database_url=database_url, jwt_secret=SECRET,
                  # Short waits so that outage tests stay quick.
                  pool_timeout=1.5, connect_timeout=2,
                  relay_probe_seconds=2.0, relay_max_backoff=1.0)
    values.update(overrides)
    return Settings(**values)


def token(user: str, admin: bool = False, ttl: int = 3600, secret: str = SECRET) -> str:
    return issue_token(user, admin=admin, ttl_seconds=ttl,
                       settings=Settings(jwt_secret=secret, jwt_algorithm="HS256"))


def auth(user: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, admin)}"}


class Shares:
    """Inserts shares exactly as upstream does (plain INSERT into mining_events)
    and commits; weeks are computed in SQL from the real now()."""

    def __init__(self, conn):
        self.conn = conn
        self.current_week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
        conn.commit()

    def week(self, weeks_ago: int = 0):
        """Monday (a date) of the current week, or of `weeks_ago` weeks back."""
        return self.conn.execute("SELECT %s::date - 7 * %s", (self.current_week, weeks_ago)).fetchone()[0]

    def add(self, user: str, sdiff: float, weeks_ago: int = 0, day: int = 0, second: int = 0,
            hash_hex: str | None = None) -> str:
        # A hash that proves (a hair more than) sdiff: random low bits, as real hashes have.
        hash_hex = hash_hex or format(max(1, int(TRUEDIFFONE / sdiff) - secrets.randbelow(2**32)), "064x")
        payload = {"user": user, "worker": "rig1", "sdiff": sdiff, "accepted": True, "hash": hash_hex}
        self.conn.execute(
            "INSERT INTO mining_events (ts, event_type, payload) "
            "VALUES (lottery_week_start_ts(%s) + make_interval(days => %s, secs => %s), 'share_submitted', %s)",
            (self.week(weeks_ago), day, second, json.dumps(payload)))
        self.conn.commit()
        self.conn.execute("SELECT fold_pending_events()")  # as the background fold would, a moment later
        self.conn.commit()
        return hash_hex

    def draw(self, weeks_ago: int = 1) -> None:
        self.conn.execute("SELECT run_lottery_draw(%s)", (self.week(weeks_ago),))
        self.conn.commit()

    def scalar(self, sql: str, params: tuple = ()):
        value = self.conn.execute(sql, params).fetchone()[0]
        self.conn.commit()
        return value


@contextlib.contextmanager
def serve(app, timeout: float = 15.0, **options):
    """Real uvicorn on 127.0.0.1 and a free port, in a thread; yields host:port.
    `options` go to uvicorn.Config (e.g. web.server's protocols)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, **{"log_level": "warning", "lifespan": "on",
                                                   "timeout_graceful_shutdown": 5, **options}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"
