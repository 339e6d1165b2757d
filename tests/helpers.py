"""Test data helpers: shares go in exactly as upstream writes them, by INSERT or COPY."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from psycopg.types.json import Jsonb

TRUEDIFFONE = 0xFFFF * 2**208


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


def insert_events(conn, events) -> None:
    """One multi-row INSERT: one batch for the aggregate trigger."""
    events = list(events)
    if not events:
        return
    values = ", ".join(["(%s, %s, %s)"] * len(events))
    params = [p for ts, kind, payload in events for p in (ts, kind, Jsonb(payload))]
    conn.execute(f"INSERT INTO mining_events (ts, event_type, payload) VALUES {values}", params)


def copy_events(conn, events) -> None:
    """COPY, as a bulk collector would load them."""
    with conn.cursor().copy("COPY mining_events (ts, event_type, payload) FROM STDIN") as copy:
        for ts, kind, payload in events:
            copy.write_row((ts, kind, json.dumps(payload)))


def add_shares(conn, *shares) -> None:
    insert_events(conn, [share(*s) if isinstance(s, tuple) else s for s in shares])


def week_days(monday: str):
    """The seven UTC midnights of the ISO week starting at `monday`."""
    start = utc(monday)
    return [start + timedelta(days=i) for i in range(7)]


def rank_bucket_counts(conn):
    """share_rank_buckets as kept (non-zero rows), and the same counted from share_weekly_best:
    (week_start, rank_bucket, participants) rows, sorted."""
    kept = conn.execute("SELECT week_start, rank_bucket, participants FROM share_rank_buckets"
                        " WHERE participants <> 0 ORDER BY 1, 2").fetchall()
    counted = conn.execute("SELECT week_start, rank_bucket, count(*) FROM share_weekly_best"
                           " GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    return kept, counted
