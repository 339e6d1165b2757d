"""Test data helpers: shares go in exactly as upstream writes them, by INSERT or COPY."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb
from yoyo import get_backend, read_migrations

from db import apply as db_apply

from core.rules import TRUEDIFFONE  # noqa: F401  (tests import it from here)


BI_PAGE = Path(__file__).resolve().parent.parent / "docs" / "bi.md"


def readme_bi_views() -> dict[str, set[str]]:
    """The BI page of the manual (docs/bi.md): each bullet's view, and the names it puts in backticks."""
    section = BI_PAGE.read_text().split("\n## ", 1)[0]
    bullets = re.findall(r"^- `(\w+)`(.*?)(?=^- |^\S|\Z)", section, re.M | re.S)
    return {view: set(re.findall(r"`(\w+)`", text)) for view, text in bullets}


def utc(text: str) -> datetime:
    """'2026-11-16 01:00' or '2026-11-16 01:00:00.5' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def hash_for(difficulty: float) -> str:
    """A 64-hex hash whose difficulty under ckpool's formula is `difficulty`."""
    return format(int(TRUEDIFFONE / difficulty), "064x")


def share(user, sdiff, ts, *, accepted=True, worker="rig1", hash=None):
    payload = {"user": user, "worker": worker, "sdiff": sdiff, "accepted": accepted,
               "hash": hash if hash is not None else hash_for(sdiff)}
    return (ts if isinstance(ts, datetime) else utc(ts), "share_submitted", payload)


def fold(conn) -> int:
    """Folds every pending event (fold_pending_events), as the background fold would
    within a second or two; returns how many it folded."""
    return conn.execute("SELECT fold_pending_events()").fetchone()[0]


def insert_events(conn, events, fold_now: bool = True) -> None:
    """One multi-row INSERT, as upstream writes them (then folded, unless fold_now=False)."""
    events = list(events)
    if not events:
        return
    values = ", ".join(["(%s, %s, %s)"] * len(events))
    params = [p for ts, kind, payload in events for p in (ts, kind, Jsonb(payload))]
    conn.execute(f"INSERT INTO mining_events (ts, event_type, payload) VALUES {values}", params)
    if fold_now:
        fold(conn)


def copy_events(conn, events, fold_now: bool = True) -> None:
    """COPY, as a bulk collector would load them (then folded, unless fold_now=False)."""
    with conn.cursor().copy("COPY mining_events (ts, event_type, payload) FROM STDIN") as copy:
        for ts, kind, payload in events:
            copy.write_row((ts, kind, json.dumps(payload)))
    if fold_now:
        fold(conn)


def add_shares(conn, *shares) -> None:
    insert_events(conn, [share(*s) if isinstance(s, tuple) else s for s in shares])


def week_days(monday: str):
    """The seven UTC midnights of the ISO week starting at `monday`."""
    start = utc(monday)
    return [start + timedelta(days=i) for i in range(7)]


def rank_bucket_counts(conn):
    """share_rank_buckets and share_rank_bucket_groups as kept (non-zero rows), and the same
    counted from share_weekly_best: ("bucket" or "group", week_start, key, participants) rows, sorted."""
    kept = conn.execute("SELECT 'bucket', week_start, rank_bucket, participants FROM share_rank_buckets"
                        " WHERE participants <> 0 UNION ALL"
                        " SELECT 'group', week_start, bucket_group, participants FROM share_rank_bucket_groups"
                        " WHERE participants <> 0 ORDER BY 1, 2, 3").fetchall()
    counted = conn.execute("SELECT 'bucket', week_start, rank_bucket, count(*) FROM share_weekly_best"
                           " GROUP BY 2, 3 UNION ALL"
                           " SELECT 'group', week_start, rank_bucket >> 7, count(*) FROM share_weekly_best"
                           " GROUP BY 2, 3 ORDER BY 1, 2, 3").fetchall()
    return kept, counted


@contextmanager
def database_without(pg_cluster, migration_id: str, *, later_too: bool = True):
    """A new database with every migration but `migration_id` (and, with later_too=False,
    none after it either) and no function files: a deployment that predates that
    migration. Yields (url, connection); drops it after."""
    name = f"pre_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    backend = get_backend(db_apply.yoyo_url(url))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(
            read_migrations(str(db_apply.MIGRATIONS_DIR)).filter(
                lambda m: m.id != migration_id and (later_too or m.id < migration_id))))
    try:
        with psycopg.connect(url) as conn:
            yield url, conn
    finally:
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def wait_for(predicate, timeout: float, interval: float = 0.1):
    """predicate()'s first truthy value, polled every `interval` seconds for up to
    `timeout` seconds; its last (falsy) value when none came."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def wait_until(predicate, what: str, timeout: float, interval: float = 0.05):
    """wait_for, failing the test, with `what` it waited for, when no truthy value came."""
    value = wait_for(predicate, timeout, interval)
    if not value:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
    return value


def run_at_once(url: str, sessions: int, statement: str, params: tuple = (), timeout: float = 60) -> list:
    """The first column of `statement` run by `sessions` connections of their own, released
    together by a barrier, in the order they finished (one entry per session that did)."""
    barrier = threading.Barrier(sessions)
    results = []

    def run():
        with psycopg.connect(url) as conn:
            barrier.wait()
            results.append(conn.execute(statement, params).fetchone()[0])

    threads = [threading.Thread(target=run) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results
