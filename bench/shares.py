"""The benchmarks' two share generators, each the only one of its kind:

* in SQL, `pg_temp.bench_events(count, users, week)`: millions of events made by the
  server itself, for the ingest figures (COPY and INSERT batches) and the spec's
  reference query;
* in Python, `random_share()`: one share as the platform's collector stores it, for
  the collector pattern, the soak's live ingest and the JSON-lines log of ingest_1m.

Both give every share a hash that proves exactly its sdiff (ckpool's truediffone
over the hash), so no generated share is ever forged.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from dataclasses import dataclass

import psycopg

from core.rules import TRUEDIFFONE

# Share events as ckpool logs them, live: within the last 24 hours of the week
# up to now (a share more than a day ahead of the clock counts nowhere), a hash
# uniformly below the target of pool difficulty 1,000 (so sdiff, derived from
# it, is Pareto distributed from 1,000 up; the ten leading zeros and the
# 65.535 * 16^11 bound encode that 1,000), ~2% rejected, users drawn at random
# from miner1..minerN.
SQL_GENERATOR = """
CREATE FUNCTION pg_temp.bench_events(p_count bigint, p_users integer, p_week date)
RETURNS TABLE (ts timestamptz, event_type text, payload jsonb)
LANGUAGE sql VOLATILE AS $$
    SELECT greatest(lottery_week_start_ts(p_week),
                    least(now(), lottery_week_start_ts(p_week + 7)) - (1 - random()) * interval '24 hours'),
           'share_submitted',
           jsonb_build_object('user', 'miner' || (1 + floor(random() * p_users))::integer,
                              'worker', 'rig' || s % 4,
                              'sdiff', share_difficulty_from_hash(h),
                              'accepted', s % 50 <> 0,
                              'hash', h)
    FROM generate_series(1, p_count) AS s,
         LATERAL (SELECT repeat('0', 10)
                         || lpad(to_hex(1 + floor(random() * 65.535 * 16::numeric ^ 11)::bigint), 13, '0')
                         || left(md5(s::text) || md5(p_week::text || s), 41) AS h) AS hash
$$;
"""

# The pool difficulty of the generated participants (bench.scale) and of the SQL
# generator's shares; the collector pattern sends its shares at the same one.
PARTICIPANT_POOL_DIFFICULTY = 1000
# Pool difficulties of a mixed fleet, from a USB stick to a big ASIC farm.
POOL_DIFFICULTIES = (1, 256, 1024, 4096, 65536, 500_000)
REJECTED = 0.02
# ckpool's texts for the usual rejects.
REJECT_REASONS = ("Stale", "Duplicate", "Above target")


def install_sql_generator(conn: psycopg.Connection) -> None:
    """pg_temp.bench_events, for this session."""
    conn.execute(SQL_GENERATOR)


def share_events(conn: psycopg.Connection, count: int, users: int, week: dt.date, how: str) -> list:
    """`count` share events made by the SQL generator (install_sql_generator, in this
    session): COPY text lines, or (ts, type, payload) texts for INSERTs."""
    if how == "insert":
        return conn.execute("SELECT ts::text, event_type, payload::text FROM pg_temp.bench_events(%s, %s, %s)",
                            (count, users, week)).fetchall()
    data = bytearray()
    with conn.cursor().copy("COPY (SELECT * FROM pg_temp.bench_events(%s, %s, %s)) TO STDOUT",
                            (count, users, week)) as copy:
        for block in copy:
            data += block
    return bytes(data).splitlines(keepends=True)


@dataclass(frozen=True, slots=True)
class Share:
    """One share_submitted event, with every field the platform's collector stores
    (CONTRACT section 10) and the hash ckpool checked."""

    ts: dt.datetime
    user: str
    worker: str
    client_id: int
    diff: float           # the worker's pool difficulty
    sdiff: float          # what the hash proves
    accepted: bool
    reject_reason: str
    ip: str
    hash: str

    def payload(self, with_hash: bool = True) -> dict:
        """The collector's payload; without the hash it is what the collector sends today."""
        data = {"user": self.user, "worker": self.worker, "client_id": self.client_id, "diff": self.diff,
                "sdiff": self.sdiff, "accepted": self.accepted, "reject_reason": self.reject_reason,
                "ip": self.ip}
        if with_hash:
            data["hash"] = self.hash
        return data

    def row(self, with_hash: bool = True) -> tuple[dt.datetime, str, dict]:
        """(ts, event_type, payload), the columns every loader writes."""
        return self.ts, "share_submitted", self.payload(with_hash)


def random_share(rng: random.Random, user: str, pool_diff: float, ts: dt.datetime,
                 rejected: float = REJECTED, workers: int = 3) -> Share:
    """A share of `user` at `ts`: a hash uniformly below the target of pool_diff (so
    sdiff is Pareto distributed from pool_diff up), rejected with probability `rejected`."""
    value = rng.randint(1, int(TRUEDIFFONE // pool_diff))
    accepted = rng.random() >= rejected
    rig = rng.randrange(workers)
    client_id = 1 + (zlib.crc32(user.encode()) + rig) % 1_000_000   # one connection per worker
    return Share(ts=ts, user=user, worker=f"{user}.rig{rig}", client_id=client_id,
                 diff=float(pool_diff), sdiff=TRUEDIFFONE / value, accepted=accepted,
                 reject_reason="" if accepted else rng.choice(REJECT_REASONS),
                 ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{1 + rng.randrange(254)}",
                 hash=format(value, "064x"))


def random_ts(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A time in [start, end), to the microsecond."""
    return start + dt.timedelta(microseconds=rng.randrange(max(1, int((end - start).total_seconds() * 1e6))))
