"""N participants x M shares of one week, written straight into the aggregate tables
as the ingest trigger would have left them (per-user-per-day and per-week bests,
rank buckets and their groups), in SQL: minutes for a million participants where
ingesting their raw events would take hours. Participants are miner1..minerN, each
day's best the largest of that day's shares (Pareto from the pool difficulty
PARTICIPANT_POOL_DIFFICULTY, as the SQL share generator draws them).

This is the one place that knows how the aggregates are laid out for generation:
when the ingest aggregates change, SCALE_SQL and AGGREGATE_TABLES change here, and
every benchmark follows.
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg

from bench.common import vacuum
from bench.shares import PARTICIPANT_POOL_DIFFICULTY

# Every table the ingest trigger keeps, in the order SCALE_SQL fills them.
AGGREGATE_TABLES = ("share_daily_best", "share_weekly_best", "share_rank_buckets", "share_rank_bucket_groups")

SCALE_SQL = [
    """INSERT INTO share_daily_best (user_id, day, best_difficulty, best_at, best_hash, share_count)
       SELECT 'miner' || u, %(week)s::date + d,
              %(pool_diff)s / (1 - power(random(), 1.0 / k)),
              lottery_week_start_ts(%(week)s) + make_interval(days => d) + random() * interval '1 day',
              md5(u || ':' || d) || md5(d || ':' || u),
              k
       FROM generate_series(1, %(users)s) AS u,
            generate_series(0, 6) AS d,
            LATERAL (SELECT %(shares)s / 7 + CASE WHEN d < %(shares)s %% 7 THEN 1 ELSE 0 END AS k) AS per_day
       WHERE k > 0""",
    """INSERT INTO share_weekly_best (week_start, user_id, best_difficulty, best_at, best_hash, share_count)
       SELECT DISTINCT ON (user_id) %(week)s::date, user_id, best_difficulty, best_at, best_hash,
              sum(share_count) OVER (PARTITION BY user_id)
       FROM share_daily_best WHERE day >= %(week)s AND day < %(week)s::date + 7
       ORDER BY user_id, best_difficulty DESC, best_at""",
    """INSERT INTO share_rank_buckets (week_start, rank_bucket, participants)
       SELECT week_start, rank_bucket, count(*) FROM share_weekly_best WHERE week_start = %(week)s GROUP BY 1, 2""",
    """INSERT INTO share_rank_bucket_groups (week_start, bucket_group, participants)
       SELECT week_start, rank_bucket_group(rank_bucket), sum(participants) FROM share_rank_buckets
       WHERE week_start = %(week)s GROUP BY 1, 2""",
    """INSERT INTO event_weeks (week_start) VALUES (%(week)s) ON CONFLICT DO NOTHING""",
]


def generate_participants(conn: psycopg.Connection, week: dt.date, users: int, shares: int) -> float:
    """Fills `week` with `users` participants of `shares` shares each, commits and
    vacuums the aggregates; returns the seconds it took."""
    started = time.perf_counter()
    for statement in SCALE_SQL:
        conn.execute(statement, {"week": week, "users": users, "shares": shares,
                                 "pool_diff": PARTICIPANT_POOL_DIFFICULTY})
    conn.commit()
    vacuum(conn, *AGGREGATE_TABLES)
    return time.perf_counter() - started


def participants(conn: psycopg.Connection, week: dt.date) -> int:
    count = conn.execute("SELECT count(*) FROM share_weekly_best WHERE week_start = %s", (week,)).fetchone()[0]
    conn.commit()
    return count


def aggregates_bytes(conn: psycopg.Connection) -> int:
    """The aggregate tables' size on disk, indexes included."""
    size = conn.execute("SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in AGGREGATE_TABLES)
                        ).fetchone()[0]
    conn.commit()
    return size
