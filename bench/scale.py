"""N participants x M shares of one week, written straight into the aggregate tables
as the commit-time fold would have left them (each participant-week's best, share
count and seven daily bests and counts, the rank buckets and their groups, the
all-time bests, the week's tallies), in SQL: minutes for a million participants
where ingesting their raw events would take hours. Participants are
miner1..minerN, each day's best the largest of that day's shares (Pareto from the
pool difficulty PARTICIPANT_POOL_DIFFICULTY, as the SQL share generator draws them).

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

# Every table the fold keeps per participant, in the order SCALE_SQL fills them.
AGGREGATE_TABLES = ("share_weekly_best", "share_rank_buckets", "share_rank_bucket_groups", "share_user_best")

SCALE_SQL = [
    # Each day of k shares: its best is the largest of k Pareto draws, reached at a
    # random time of that day; the week's best is the best day's.
    """INSERT INTO share_weekly_best (week_start, user_id, best_difficulty, best_at, best_hash, share_count,
                                      day_best, day_shares)
       SELECT %(week)s::date, 'miner' || u, max(best), (array_agg(best_at ORDER BY best DESC))[1],
              md5(u || ':w') || md5('w:' || u), sum(k), array_agg(best ORDER BY d), array_agg(k ORDER BY d)
       FROM (SELECT u, d, k,
                    CASE WHEN k > 0 THEN %(pool_diff)s / (1 - power(random(), 1.0 / k)) ELSE 0 END AS best,
                    lottery_week_start_ts(%(week)s::date + d) + random() * interval '24 hours' AS best_at
             FROM generate_series(1, %(users)s) AS u,
                  generate_series(0, 6) AS d,
                  LATERAL (SELECT %(shares)s / 7 + CASE WHEN d < %(shares)s %% 7 THEN 1 ELSE 0 END AS k) AS per_day
            ) AS days
       GROUP BY u""",
    """INSERT INTO share_rank_buckets (week_start, rank_bucket, participants)
       SELECT week_start, rank_bucket, count(*) FROM share_weekly_best WHERE week_start = %(week)s GROUP BY 1, 2""",
    """INSERT INTO share_rank_bucket_groups (week_start, bucket_group, participants)
       SELECT week_start, rank_bucket_group(rank_bucket), sum(participants) FROM share_rank_buckets
       WHERE week_start = %(week)s GROUP BY 1, 2""",
    """INSERT INTO share_user_best AS a (user_id, best_difficulty, best_at, best_hash, week_start)
       SELECT user_id, best_difficulty, best_at, best_hash, week_start FROM share_weekly_best
       WHERE week_start = %(week)s
       ON CONFLICT (user_id) DO UPDATE SET
           best_difficulty = excluded.best_difficulty, best_at = excluded.best_at,
           best_hash = excluded.best_hash, week_start = excluded.week_start
       WHERE share_beats(excluded.best_difficulty, excluded.best_at, a.best_difficulty, a.best_at)""",
    """INSERT INTO event_weeks AS e (week_start, accepted_shares) VALUES (%(week)s, %(users)s::bigint * %(shares)s)
       ON CONFLICT (week_start) DO UPDATE SET accepted_shares = e.accepted_shares + excluded.accepted_shares""",
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
