"""Leaderboards, around-me, lottery history and personal bests at scale, and what the
personal-best upkeep costs ingest: figures, not pass/fail.

    python -m bench.leaderboard [--participants 1000000] [--drawn-weeks 2] [--samples 2000]
                                [--ingest-events 1000000]

Starts a scratch cluster (bench.run's settings), generates --participants miners in
each of --drawn-weeks closed weeks, draws them, and the same miners in the open week so
far (in SQL, as the fold leaves the aggregates; one miner in ten has a display name,
one in twenty opted out of public lists), then times, each call one prepared statement
and one round trip as a client sees it:

1. a leaderboard page of 100 at random offsets, live (the open week) and final (the
   last drawn week);
2. around-me (5 rows above and below) of random miners, live and final, and live again
   right after ingest (before VACUUM: the pages ingest touched are not all-visible);
3. the lottery history and the personal bests of random miners;
4. ingest with and without the personal-best upkeep (share_user_best and its notice):
   the same share events, in 10,000-row COPYs and 1,000-row INSERTs into the open week
   (every miner has a best there already) and in 10,000-row COPYs into an empty week
   (every miner's first share there is that week's best, checked against their best of
   all time), into two copies of the database that differ only in that upkeep
   (bench_no_pb: fold_pending_shares with its all_time step cut out), loaded in turns
   (A B B A ...) so that both meet the same machine.

`measure(url, participants, week, drawn_week, samples)` is the reads' part for a caller
that already has the data (bench/run.py's scale week, drawn or not).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import time
from contextlib import contextmanager

import psycopg
from psycopg import sql

from bench.run import Progress, load, print_table, ratio, say, scratch_cluster, vacuum

AGGREGATES = ("share_weekly_best", "share_rank_buckets", "share_rank_bucket_groups", "share_user_best",
              "lottery_results", "users", "lottery_privacy")

# One week of N participants as the fold leaves it: each miner's best is the largest
# of M shares Pareto-distributed from pool difficulty 1,000, first reached at a random
# instant of the week (of its elapsed part, for the open week), on that day.
WEEK_SQL = [
    """INSERT INTO share_weekly_best (week_start, user_id, best_difficulty, best_at, best_hash, share_count,
                                      day_best, day_shares)
       SELECT %(week)s, 'miner' || b0.u, b.best, b.at, md5(b0.u || ':' || %(week)s) || md5(%(week)s || ':' || b0.u),
              %(shares)s::integer,
              array_fill(0::float8, ARRAY[b.dow - 1]) || b.best || array_fill(0::float8, ARRAY[7 - b.dow]),
              array_fill(0, ARRAY[b.dow - 1]) || %(shares)s::integer || array_fill(0, ARRAY[7 - b.dow])
       FROM (SELECT u, 1000 / (1 - power(random(), 1.0 / %(shares)s::integer)) AS best,  -- volatile: once per row
                    lottery_week_start_ts(%(week)s)
                    + random() * least(interval '7 days', now() - lottery_week_start_ts(%(week)s)) AS at
             FROM generate_series(1, %(users)s) AS u) AS b0,
            LATERAL (SELECT b0.best, b0.at, extract(isodow FROM b0.at AT TIME ZONE 'UTC')::integer AS dow) AS b""",
    """INSERT INTO share_rank_buckets (week_start, rank_bucket, participants)
       SELECT week_start, rank_bucket, count(*) FROM share_weekly_best WHERE week_start = %(week)s GROUP BY 1, 2""",
    """INSERT INTO share_rank_bucket_groups (week_start, bucket_group, participants)
       SELECT week_start, rank_bucket_group(rank_bucket), sum(participants) FROM share_rank_buckets
       WHERE week_start = %(week)s GROUP BY 1, 2""",
    """INSERT INTO event_weeks (week_start, accepted_shares) VALUES (%(week)s, %(users)s::bigint * %(shares)s)
       ON CONFLICT DO NOTHING""",
]
MINERS_SQL = [
    # Each miner's best of all time, as the fold keeps it.
    """INSERT INTO share_user_best (user_id, best_difficulty, best_at, best_hash, week_start)
       SELECT DISTINCT ON (user_id) user_id, best_difficulty, best_at, best_hash, week_start
       FROM share_weekly_best ORDER BY user_id, best_difficulty DESC, best_at""",
    """INSERT INTO users (id, display_name) SELECT 'miner' || u, 'Miner ' || u
       FROM generate_series(10, %(users)s, 10) AS u""",
    """INSERT INTO lottery_privacy (user_id, public) SELECT 'miner' || u, false
       FROM generate_series(20, %(users)s, 20) AS u""",
]

# Share events as ckpool logs them: the last 24 hours of the week up to now (a share
# more than a day ahead of the clock counts nowhere), a hash that proves its sdiff
# (Pareto from pool difficulty 1,000), ~2% rejected, miners drawn from miner1..N.
EVENTS_SQL = """
CREATE FUNCTION pg_temp.leaderboard_events(p_count bigint, p_users integer, p_week date)
RETURNS TABLE (ts timestamptz, event_type text, payload jsonb)
LANGUAGE sql VOLATILE AS $$
    SELECT greatest(lottery_week_start_ts(p_week),
                    least(now(), lottery_week_start_ts(p_week + 7)) - random() * interval '24 hours'),
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
$$"""


def generate(conn: psycopg.Connection, users: int, shares: int, weeks: list[dt.date]) -> list[float]:
    """Fills `weeks` (the last one open) with `users` participants each and draws every
    week but the last; returns the seconds of each draw."""
    for week in weeks:
        say(f"scale: {users:,} participants in the week of {week}")
        for statement in WEEK_SQL:
            conn.execute(statement, {"week": week, "users": users, "shares": shares})
        conn.commit()
    for statement in MINERS_SQL:
        conn.execute(statement, {"users": users})
    conn.commit()
    vacuum(conn, *AGGREGATES)
    draws = []
    for week in weeks[:-1]:
        say(f"scale: the draw of the week of {week}")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        conn.execute("SELECT run_lottery_draw(%s, %s)", (week, f"{week + dt.timedelta(days=7)} 00:01+00"))
        conn.commit()
        draws.append(time.perf_counter() - started)
    vacuum(conn, *AGGREGATES)
    return draws


def timings(conn: psycopg.Connection, statement: str, arguments: list[tuple]) -> list[float]:
    """Milliseconds of each call, as a client sees it: a prepared statement, one round trip."""
    conn.execute(statement, arguments[0], prepare=True).fetchone()  # planned once
    spent = []
    for args in arguments:
        started = time.perf_counter()
        conn.execute(statement, args, prepare=True).fetchone()
        spent.append(1000 * (time.perf_counter() - started))
    conn.commit()
    return spent


def figure(name: str, spent: list[float]) -> tuple[str, str, str]:
    p99 = statistics.quantiles(spent, n=100, method="inclusive")[98]
    return (name, f"p99 {p99:.2f} ms",
            f"p50 {statistics.median(spent):.2f} ms, max {max(spent):.2f} ms over {len(spent):,} calls, round trip included")


def measure(url: str, participants: int, week: dt.date, drawn_week: dt.date | None, samples: int,
            state: str = "vacuumed") -> list[tuple[str, str, str]]:
    """Reads of the open `week` (live) and of `drawn_week` (final), `samples` calls each."""
    rng = random.Random(15)
    rows = []
    miners = [f"miner{rng.randint(1, participants)}" for _ in range(samples)]
    offsets = [rng.randint(0, max(0, participants - 100)) for _ in range(samples)]
    with psycopg.connect(url) as conn:
        weeks = [(week, "live")] + ([(drawn_week, "final")] if drawn_week else [])
        for day, kind in weeks:
            say(f"reads: leaderboard pages of 100 and around-me, {kind} ({state})")
            rows.append(figure(f"leaderboard page of 100, {participants:,} participants, {kind}, {state}",
                               timings(conn, "SELECT get_leaderboard(%s, %s, 100, %s)::text",
                                       [(m, day, o) for m, o in zip(miners, offsets)])))
            rows.append(figure(f"around-me (5 above and below), {kind}, {state}",
                               timings(conn, "SELECT get_leaderboard_around(%s, %s, 5)::text",
                                       [(m, day) for m in miners])))
        say(f"reads: lottery history and personal bests ({state})")
        rows.append(figure(f"lottery history, {state}",
                           timings(conn, "SELECT get_lottery_history(%s)::text", [(m,) for m in miners])))
        rows.append(figure(f"personal bests, {state}",
                           timings(conn, "SELECT get_personal_bests(%s)::text", [(m,) for m in miners])))
    return rows


def around_me_after_ingest(url: str, participants: int, week: dt.date, samples: int) -> tuple[str, str, str]:
    rng = random.Random(16)
    with psycopg.connect(url) as conn:
        spent = timings(conn, "SELECT get_leaderboard_around(%s, %s, 5)::text",
                        [(f"miner{rng.randint(1, participants)}", week) for _ in range(samples)])
    return figure("around-me, live, right after ingest (before VACUUM)", spent)


# --- 4. what the personal-best upkeep costs ingest ---------------------------------------

ALL_TIME_STEP = re.compile(r"\), all_time AS \(.*?\n    \), moves AS \(", re.S)
NOTICE_ARRAY = re.compile(r"\(SELECT array_agg\(\w+ ORDER BY user_id\) FROM all_time WHERE beaten AND notified_at = now\(\)\)")


def cut_personal_bests(conn: psycopg.Connection) -> None:
    """fold_pending_shares exactly as it is, minus its upkeep of share_user_best (the
    all_time step and the notices it feeds): the reference the upkeep is measured against."""
    definition = conn.execute("SELECT pg_get_functiondef('fold_pending_shares()'::regprocedure)").fetchone()[0]
    definition, steps = ALL_TIME_STEP.subn("), moves AS (", definition)
    definition, arrays = NOTICE_ARRAY.subn("NULL", definition)
    if (steps, arrays) != (1, 3):
        raise SystemExit(f"fold_pending_shares changed shape ({steps} all_time steps, {arrays} notice arrays cut):"
                         " update bench/leaderboard.py's cut")
    conn.execute(definition)
    conn.commit()


@contextmanager
def twin(url: str, name: str):
    """A copy of the database at `url` (no session may be open on it), dropped afterwards."""
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    source = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY = FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(source)))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def share_events(conn: psycopg.Connection, count: int, users: int, week: dt.date, how: str) -> list:
    """`count` share events generated by the server: COPY text lines, or (ts, type, payload) texts."""
    if conn.execute("SELECT to_regproc('pg_temp.leaderboard_events')").fetchone()[0] is None:
        conn.execute(EVENTS_SQL)
    if how == "insert":
        events = conn.execute("SELECT ts::text, event_type, payload::text FROM pg_temp.leaderboard_events(%s, %s, %s)",
                              (count, users, week)).fetchall()
        conn.commit()
        return events
    data = bytearray()
    with conn.cursor().copy("COPY (SELECT * FROM pg_temp.leaderboard_events(%s, %s, %s)) TO STDOUT",
                            (count, users, week)) as copy:
        for block in copy:
            data += block
    conn.commit()
    return bytes(data).splitlines(keepends=True)


def measure_upkeep(url: str, users: int, week: dt.date, empty_week: dt.date, events: int) -> list[tuple[str, str, str]]:
    """Ingest into the open `week`, where every miner has a best already (a share seldom
    beats it), and into `empty_week`, where every miner's first share of the week is
    their best of it and is checked against their best of all time."""
    rows = []
    with twin(url, "bench_no_pb") as reference_url, psycopg.connect(url) as kept, \
            psycopg.connect(reference_url) as reference:
        cut_personal_bests(reference)
        for name, how, batch, day in (("10,000-row COPYs", "copy", 10_000, week),
                                      ("1,000-row INSERTs", "insert", 1_000, week),
                                      ("10,000-row COPYs into an empty week", "copy", 10_000, empty_week)):
            say(f"ingest: {events:,} share events in {name}, with and without the personal-best upkeep, in turns")
            data = share_events(kept, events, users, day, how)
            chunks = [data[i:i + 100 * batch] for i in range(0, len(data), 100 * batch)]
            spent = {"kept": 0.0, "reference": 0.0}
            for i, chunk in enumerate(chunks):
                order = (("kept", kept), ("reference", reference))
                for label, conn in order if i % 2 == 0 else reversed(order):
                    spent[label] += load(conn, "mining_events", chunk, how, batch)
            bests = [conn.execute("SELECT count(*) FROM share_user_best WHERE week_start = %s", (day,)).fetchone()[0]
                     for conn in (kept, reference)]
            kept.commit()
            reference.commit()
            rows.append((f"ingest, {name}, personal-best upkeep", f"+{100 * (spent['kept'] / spent['reference'] - 1):.1f}%",
                         f"{events / spent['kept']:,.0f} shares/s kept, {events / spent['reference']:,.0f} without it"
                         f" ({ratio(spent['kept'], spent['reference'])} the time); bests of all time now in this"
                         f" week: {bests[0]:,} kept, {bests[1]:,} without"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--shares", type=int, default=100, help="shares per participant-week (default 100)")
    parser.add_argument("--drawn-weeks", type=int, default=2, help="closed weeks, drawn, before the open one")
    parser.add_argument("--samples", type=int, default=2000, help="calls per read figure")
    parser.add_argument("--ingest-events", type=int, default=1_000_000, help="share events per ingest shape (0: skip)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows: list[tuple[str, str, str]] = Progress()
    with scratch_cluster() as (url, _):
        with psycopg.connect(url) as conn:
            week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
            weeks = [week - dt.timedelta(days=7 * n) for n in range(args.drawn_weeks, -1, -1)]
            draws = generate(conn, args.participants, args.shares, weeks)
        for seconds in draws[-1:]:
            rows.append((f"draw, {args.participants:,} participants (pseudonyms and their digest included)",
                         f"{seconds:,.1f} s", f"{len(draws)} drawn weeks"))
        drawn = weeks[-2] if draws else None
        rows.extend(measure(url, args.participants, week, drawn, args.samples))
        if args.ingest_events:
            rows.extend(measure_upkeep(url, args.participants, week, weeks[0] - dt.timedelta(days=7),
                                       args.ingest_events))
            rows.append(around_me_after_ingest(url, args.participants, week, args.samples))
    print_table(rows, f"{time.strftime('%Y-%m-%d')}, leaderboards at {args.participants:,} participants,"
                      f" {time.perf_counter() - started:,.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
