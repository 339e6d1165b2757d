"""Leaderboards, around-me, the lottery history and personal bests at scale, and what
the personal-best upkeep costs ingest: figures, not pass/fail.

    python -m bench.leaderboard [--participants 1000000] [--drawn-weeks 2] [--samples 2000]
                                [--ingest-events 1000000]

bench/run.py calls measure_reads() on its own scale week (live before its draw, final
after it, and right after its ingest) and measure_upkeep() on its database before its
own ingest figures. On its own, this module starts a scratch cluster (bench/common.py),
generates --participants miners in each of --drawn-weeks closed weeks and in the open
week (bench/scale.py; one miner in ten with a display name, one in twenty opted out of
public lists), draws the closed weeks, and measures the same.

Every read is one prepared statement and one round trip, as a client sees it:

1. a leaderboard page of 100 at random offsets;
2. around-me, 5 rows above and below random miners (and right after ingest: the pages
   ingest touched are not all-visible until VACUUM);
3. the lottery history and the personal bests of random miners.

4. The personal-best upkeep (share_user_best and its notice): the same share events
   (bench/shares.py) into two copies of the database that differ only in it (the twin's
   fold_pending_shares has its all_time step cut out), loaded in turns, A B B A ..., so
   that both meet the same machine: into the open week, where every miner has a best
   already, and into an empty week, where every miner's first share is that week's
   best and is checked against their best of all time.
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

from bench.common import Progress, call_ms, load, log, percentile, print_table, ratio, scratch_cluster, vacuum
from bench.scale import AGGREGATE_TABLES, generate_participants
from bench.shares import install_sql_generator, share_events

# Who shows by name and who does not, on every public list.
MINERS_SQL = [
    """INSERT INTO users (id, display_name) SELECT 'miner' || u, 'Miner ' || u
       FROM generate_series(10, %(users)s, 10) AS u ON CONFLICT DO NOTHING""",
    """INSERT INTO lottery_privacy (user_id, public) SELECT 'miner' || u, false
       FROM generate_series(20, %(users)s, 20) AS u ON CONFLICT DO NOTHING""",
]

Row = tuple[str, str, str]


def timings(conn: psycopg.Connection, statement: str, arguments: list[tuple]) -> list[float]:
    """Milliseconds of each call (call_ms), after one to plan it."""
    call_ms(conn, statement, arguments[0])
    spent = [call_ms(conn, statement, args) for args in arguments]
    conn.commit()
    return spent


def figure(name: str, spent: list[float]) -> Row:
    return (name, f"p99 {percentile(spent, 99):.2f} ms",
            f"p50 {statistics.median(spent):.2f} ms, max {max(spent):.2f} ms over {len(spent):,} calls,"
            " round trip included")


def measure_reads(url: str, participants: int, week: dt.date, samples: int, state: str,
                  what: tuple[str, ...] = ("page", "around", "history", "bests")) -> list[Row]:
    """The reads of `week` (live until it is drawn, final after), `samples` calls each."""
    rng = random.Random(15)
    miners = [f"miner{rng.randint(1, participants)}" for _ in range(samples)]
    offsets = [rng.randint(0, max(0, participants - 100)) for _ in range(samples)]
    calls = {
        "page": (f"leaderboard page of 100, {participants:,} participants",
                 "SELECT get_leaderboard(%s, %s, 100, %s)::text", [(m, week, o) for m, o in zip(miners, offsets)]),
        "around": ("around-me (5 above and below)", "SELECT get_leaderboard_around(%s, %s, 5)::text",
                   [(m, week) for m in miners]),
        "history": ("lottery history", "SELECT get_lottery_history(%s)::text", [(m,) for m in miners]),
        "bests": ("personal bests", "SELECT get_personal_bests(%s)::text", [(m,) for m in miners]),
    }
    rows = []
    with psycopg.connect(url) as conn:
        drawn = conn.execute("SELECT drawn FROM week_rank(NULL, %s)", (week,)).fetchone()[0]
        conn.commit()
        log(f"reads: {', '.join(what)} of the week of {week} ({'final' if drawn else 'live'}, {state})")
        for key in what:
            name, statement, arguments = calls[key]
            rows.append(figure(f"{name}, {'final' if drawn else 'live'}, {state}",
                               timings(conn, statement, arguments)))
    return rows


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
    base, source = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        # A session just closed may linger for a moment.
        others = admin.execute("SELECT array_agg(DISTINCT backend_type || ' ' || coalesce(application_name, '') || ' ' || state || ' ' || left(query, 60))"
                               " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                               (source,)).fetchone()[0]
        if others:
            log(f"twin: waiting for {others} to leave {source}")
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY = FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(source)))
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def measure_upkeep(url: str, users: int, week: dt.date, empty_week: dt.date, events: int,
                   shapes: tuple[str, ...] = ("copy", "insert", "empty")) -> list[Row]:
    """Ingest with and without the personal-best upkeep: "copy" 10,000-row COPYs and
    "insert" 1,000-row INSERTs into the open `week`, "empty" 10,000-row COPYs into
    `empty_week`. No session may be open on `url` (its twin is copied from it)."""
    known = {"copy": ("10,000-row COPYs", "copy", 10_000, week),
             "insert": ("1,000-row INSERTs", "insert", 1_000, week),
             "empty": ("10,000-row COPYs into an empty week", "copy", 10_000, empty_week)}
    rows = []
    with twin(url, "bench_no_pb") as reference_url, psycopg.connect(url) as kept, \
            psycopg.connect(reference_url) as reference:
        cut_personal_bests(reference)
        install_sql_generator(kept)
        for name, how, batch, day in (known[shape] for shape in shapes):
            log(f"ingest: {events:,} share events in {name}, with and without the personal-best upkeep, in turns")
            data = share_events(kept, events, users, day, how)
            kept.commit()
            chunks = [data[i:i + 100 * batch] for i in range(0, len(data), 100 * batch)]
            spent = {"kept": 0.0, "reference": 0.0}
            for i, chunk in enumerate(chunks):
                order = [("kept", kept), ("reference", reference)]
                for label, conn in order if i % 2 == 0 else reversed(order):
                    spent[label] += load(conn, "mining_events", chunk, how, batch, fold=True)
            rows.append((f"ingest, {name}, personal-best upkeep", f"{100 * (spent['kept'] / spent['reference'] - 1):+.1f}%",
                         f"{events / spent['kept']:,.0f} shares/s kept, {events / spent['reference']:,.0f} without it:"
                         f" {ratio(spent['kept'], spent['reference'])} the time"))
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
    rows: list[Row] = Progress()
    with scratch_cluster() as (url, _):
        with psycopg.connect(url) as conn:
            week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
            closed = [week - dt.timedelta(days=7 * n) for n in range(args.drawn_weeks, 0, -1)]
            for day in [*closed, week]:
                log(f"scale: {args.participants:,} participants x {args.shares} shares in the week of {day}")
                generate_participants(conn, day, args.participants, args.shares)
            for statement in MINERS_SQL:
                conn.execute(statement, {"users": args.participants})
            conn.commit()
            for day in closed:
                log(f"scale: the draw of the week of {day}")
                conn.execute("CHECKPOINT")
                took = time.perf_counter()
                conn.execute("SELECT run_lottery_draw(%s, %s)", (day, f"{day + dt.timedelta(days=7)} 00:01+00"))
                conn.commit()
                took = time.perf_counter() - took
            if closed:
                rows.append((f"draw, {args.participants:,} participants, pseudonyms and their digest included",
                             f"{took:,.1f} s", f"the last of {len(closed)} drawn weeks"))
            vacuum(conn, *AGGREGATE_TABLES, "lottery_results", "users", "lottery_privacy")
        rows.extend(measure_reads(url, args.participants, week, args.samples, "vacuumed"))
        if closed:
            rows.extend(measure_reads(url, args.participants, closed[-1], args.samples, "vacuumed", ("page", "around")))
        if args.ingest_events:
            rows.extend(measure_upkeep(url, args.participants, week, (closed or [week])[0] - dt.timedelta(days=7),
                                       args.ingest_events))
            rows.extend(measure_reads(url, args.participants, week, args.samples, "right after ingest, before VACUUM",
                                      ("around",)))
    print_table(rows, f"{time.strftime('%Y-%m-%d')}, leaderboards at {args.participants:,} participants,"
                      f" {time.perf_counter() - started:,.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
