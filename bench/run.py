"""Benchmarks: figures, not pass/fail. `make bench`, or

    python -m bench.run [--participants 1000000] [--shares 100] [--ingest-events 1000000]
                        [--collector-shares 20000] [--reference-users 400] [--http-seconds 10]
                        [--out bench/out]

Starts a scratch PostgreSQL 15 cluster (bench/common.py: pg_cron loaded,
settings as README "Scaling out" recommends) in a temporary directory, applies
the database and measures, printing each figure next to a reference measured
in the same run:

1. scale: N participants x M shares in the open ISO week, generated straight in
   SQL as the ingest trigger leaves them (bench/scale.py: per-user-per-day and
   per-week bests, rank buckets). The draw and every read use only these
   aggregates (the EXPLAIN output proves it), so raw events would add nothing
   to those figures but hours of generation;
2. ingest (bench/fold.py): the platform collector's write pattern (executemany
   flushes of 500 single-row INSERTs) and COPYs of the same share events into bare
   tables (the platform's mining_events, and this project's without its fold)
   and into mining_events: the writer beside the running background fold, write
   plus catch-up, the fold's throughput on one core, judging per share, fold lag
   under sustained ingest, own figures with an unfolded tail; then the collector
   pattern against a floor (bench/collector.py: one upsert per share by a row
   trigger), with and without the hash;
3. reads: get_weekly_game_data calls/s (pgbench), live-rank time over random
   participants and the last-placed ones (as ranked_week() orders them), HTTP
   through bench/http.py;
4. the draw of the N participants against the unavoidable work (the same
   result and XP rows written by INSERT ... SELECT ... ORDER BY from a table
   ranked by ranked_week(), with the same indexes), and the spec's reference ranking query
   against our draw at --reference-users x M shares;
5. leaderboards (bench/leaderboard.py): before the ingest figures, what the
   personal-best upkeep costs ingest (the same events into a copy of the database
   without it, in turns); then a leaderboard page of 100, around-me, the lottery
   history and personal bests of random participants, live (right after ingest and
   vacuumed) and, after the draw, final.

EXPLAIN (ANALYZE, BUFFERS) of the draw and of weekly-data go to --out, and
the run reports whether any plan touches mining_events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.collector import measure_collector
from bench.fold import measure_fold
from bench.common import (ROOT, Progress, call_ms, log, percentile, print_table, ratio, scratch_cluster, timed,
                          vacuum)
from bench.http import measure_http
from bench.leaderboard import measure_reads as measure_leaderboards
from bench.leaderboard import measure_upkeep
from bench.scale import AGGREGATE_TABLES, aggregates_bytes, generate_participants, participants
from bench.shares import install_sql_generator
from db import cluster

# Calls per leaderboard, around-me, history and personal-bests figure.
LEADERBOARD_SAMPLES = 2000

# Seed 5.3.3's ranking query, verbatim but for table and parameter names.
SPEC_REFERENCE_SQL = """
    WITH weekly_best AS (
        SELECT payload->>'user' AS user_id,
               MAX((payload->>'sdiff')::float) AS best_difficulty,
               MIN(ts) FILTER (WHERE (payload->>'sdiff')::float = (
                   SELECT MAX((p2.payload->>'sdiff')::float) FROM {table} p2
                   WHERE p2.payload->>'user' = {table}.payload->>'user'
                     AND p2.ts BETWEEN %(start)s AND %(end)s
                     AND p2.event_type = 'share_submitted'
                     AND (p2.payload->>'accepted')::boolean = true)) AS best_timestamp,
               COUNT(*) AS total_shares
        FROM {table}
        WHERE event_type = 'share_submitted' AND (payload->>'accepted')::boolean = true
          AND ts BETWEEN %(start)s AND %(end)s
        GROUP BY payload->>'user')
    SELECT user_id, best_difficulty, best_timestamp, total_shares,
           ROW_NUMBER() OVER (ORDER BY best_difficulty DESC, best_timestamp ASC) AS rank
    FROM weekly_best ORDER BY rank"""

# The unavoidable part of a draw: its rows, written from an already ranked source.
UNAVOIDABLE_SQL = """
    WITH r AS (
        INSERT INTO bare_results (draw_id, user_id, rank, best_difficulty, best_share_at, best_hash,
                                  ticket_count, xp_awarded)
        SELECT %(draw)s, user_id, rank, best_difficulty, best_at, best_hash, share_count,
               calculate_xp_for_rank(rank)
        FROM ranked ORDER BY rank
        RETURNING user_id, xp_awarded)
    INSERT INTO bare_xp (user_id, amount, source, reference_id)
    SELECT user_id, xp_awarded, 'lottery', %(draw)s FROM r"""


# --- 2. ingest ---------------------------------------------------------------

# The write path, the background fold and own figures before it: bench/fold.py.


# --- 3. reads ----------------------------------------------------------------

def pgbench(url: str, script: str, seconds: int, clients: int = 2) -> tuple[float, float]:
    """(transactions/s, average latency ms) of a pgbench script."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(
            [str(cluster.PG_BIN / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
             "-T", str(seconds), "-h", params["host"], "-p", str(params["port"]), "-U", params["user"],
             "-f", fh.name, params["dbname"]], capture_output=True, text=True, check=True).stdout
    finally:
        Path(fh.name).unlink()
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))
    return tps, latency


def measure_reads(conn, url: str, rows: Progress, users: int, week: dt.date, seconds: int) -> None:
    log("reads: get_weekly_game_data by pgbench (2 clients, random participants)")
    tps, latency = pgbench(url, f"\\set u random(1, {users})\n"
                                f"SELECT get_weekly_game_data('miner' || :u, '{week}');\n", max(seconds, 5))
    rows.append(("get_weekly_game_data, random participants", f"{tps:,.0f} calls/s",
                 f"{latency:.2f} ms average, 2 clients"))

    measure_live_rank(conn, rows, week, "vacuumed")


def measure_live_rank(conn, rows: Progress, week: dt.date, state: str) -> None:
    log(f"reads: live rank of 2,000 random participants, and of the last 200 in the order ({state})")
    sample = [u for (u,) in conn.execute("""
        (SELECT user_id FROM share_weekly_best WHERE week_start = %(week)s ORDER BY random() LIMIT 2000)
        UNION ALL
        (SELECT user_id FROM ranked_week(%(week)s) ORDER BY rank DESC LIMIT 200)""", {"week": week})]

    def live_rank_ms(user: str) -> float:
        return call_ms(conn, "SELECT rank FROM get_live_rank(%s, %s)", (user, week))

    live_rank_ms(sample[0])  # plan once
    timings = sorted(((live_rank_ms(user), user) for user in sample), reverse=True)
    # The slowest users again: a user whose rank is costly stays slow, a stall
    # of the machine or of this client does not.
    again = max(statistics.median(live_rank_ms(user) for _ in range(5)) for _, user in timings[:20])
    conn.commit()
    ms = [t for t, _ in timings]
    rows.append((f"live rank, {participants(conn, week):,} participants, {state}", f"p50 {percentile(ms, 50):.2f} ms",
                 f"p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms over {len(ms):,} users"
                 f" (the 20 slowest re-timed: {again:.2f} ms at most, median of 5), round trip included"))


# --- 4. the draw ---------------------------------------------------------------

def explain_nested(conn, statement: str, params, out: Path, min_ms: int = 0) -> list[str]:
    """Runs `statement` with auto_explain (ANALYZE, BUFFERS) on every nested statement that
    takes at least min_ms, writes the plans to `out`, rolls back; returns the plan lines
    naming mining_events."""
    notices: list[str] = []

    def collect(diag) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(collect)
    conn.execute("LOAD 'auto_explain'")
    for name, value in (("log_min_duration", str(min_ms)), ("log_analyze", "on"), ("log_buffers", "on"),
                        ("log_timing", "off"), ("log_nested_statements", "on"), ("log_level", "notice")):
        conn.execute(f"SET LOCAL auto_explain.{name} = {value}")
    try:
        conn.execute(statement, params)
    finally:
        conn.rollback()
        conn.remove_notice_handler(collect)
    plans = [n for n in notices if "plan:" in n]
    out.write_text("\n\n".join(plans) + "\n")
    return [line.strip() for plan in plans for line in plan.splitlines()
            if re.search(r"\bon mining_events", line)]


def measure_draw(conn, rows: Progress, users: int, shares: int, week: dt.date, out: Path) -> None:
    after = f"{week + dt.timedelta(days=7)} 00:01+00"
    log("draw: EXPLAIN (ANALYZE, BUFFERS) of every statement of run_lottery_draw (rolled back)")
    # 5 ms: the draw's own statements, not the million per-row calls inside them.
    touching = explain_nested(conn, "SELECT run_lottery_draw(%s, %s)", (week, after), out / "explain-draw.txt",
                              min_ms=5)
    log("weekly-data: EXPLAIN (ANALYZE, BUFFERS) of get_weekly_game_data")
    touching += explain_nested(conn, "SELECT get_weekly_game_data(%s, %s)", (f"miner{users // 2}", week),
                               out / "explain-weekly-data.txt")
    rows.append(("plans of the draw and weekly-data touching mining_events", str(len(touching)),
                 f"{out / 'explain-draw.txt'}, {out / 'explain-weekly-data.txt'}"))

    vacuum(conn, "lottery_results", "xp_transactions")
    conn.execute("CHECKPOINT")
    log(f"draw: run_lottery_draw of {users:,} participants")
    draw = timed(conn, "SELECT run_lottery_draw(%s, %s)", (week, after))

    log("draw: the unavoidable work, from an already ranked table")
    conn.execute("CREATE TABLE ranked AS SELECT * FROM ranked_week(%s)", (week,))
    conn.execute("CREATE TABLE bare_results (LIKE lottery_results INCLUDING ALL)")
    conn.execute("CREATE TABLE bare_xp (LIKE xp_transactions INCLUDING ALL)")
    vacuum(conn, "ranked")
    conn.execute("CHECKPOINT")
    draw_id = conn.execute("SELECT gen_random_uuid()::text").fetchone()[0]
    unavoidable = timed(conn, UNAVOIDABLE_SQL, {"draw": draw_id})
    rows.append((f"draw, {users:,} participants x {shares} shares", f"{draw:,.1f} s",
                 f"unavoidable work {unavoidable:,.1f} s: {ratio(draw, unavoidable)}"))


def measure_spec_reference(conn, rows: Progress, users: int, shares: int, week: dt.date) -> None:
    log(f"spec reference: {users} users x {shares} shares through ingest, then drawn")
    conn.execute("CREATE TABLE small_events AS SELECT * FROM pg_temp.bench_events(%s, %s, %s)",
                 (users * shares, users, week))
    conn.execute("INSERT INTO mining_events (ts, event_type, payload) SELECT ts, event_type, payload FROM small_events")
    conn.execute("SELECT fold_pending_events()")  # folded before the draw is timed, as the background fold would
    vacuum(conn, "small_events", "share_weekly_best")
    ours = timed(conn, "SELECT run_lottery_draw(%s, %s)", (week, f"{week + dt.timedelta(days=7)} 00:01+00"))
    log("spec reference: seed 5.3.3's ranking query over the same events (minutes: it is quadratic)")
    start = f"{week} 00:00+00"
    end = f"{week + dt.timedelta(days=6)} 23:59:59.999999+00"
    spec = timed(conn, SPEC_REFERENCE_SQL.format(table="small_events"), {"start": start, "end": end})
    rows.append((f"spec's reference ranking, {users} users x {shares} shares", f"{spec:,.1f} s",
                 f"our whole draw {ours * 1000:,.1f} ms: {spec / ours:,.0f}x faster"))


def measure(args) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = Progress()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with scratch_cluster() as (url, _):
        with psycopg.connect(url) as conn:
            week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
            log(f"scale: {args.participants:,} participants x {args.shares} shares in the week of {week}, in SQL")
            took = generate_participants(conn, week, args.participants, args.shares)
            log(f"scale: generated in {took:,.0f} s")
            size = aggregates_bytes(conn)
            rows.append((f"aggregates on disk, {args.participants:,} participants", f"{size / 2**30:,.2f} GiB",
                         f"{size / args.participants:,.0f} bytes per participant-week, indexes included"))
        if args.ingest_events:
            # Before this run's own ingest figures, and with no session open: it copies the database.
            rows.extend(measure_upkeep(url, args.participants, week, week - dt.timedelta(days=14),
                                       args.ingest_events, ("copy", "empty")))
        with psycopg.connect(url) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            install_sql_generator(conn)
            measure_rest(conn, url, rows, args, week, out)
    return rows


def measure_rest(conn, url: str, rows: Progress, args, week: dt.date, out: Path) -> None:
    if args.ingest_events or args.collector_shares:
        measure_fold(conn, url, rows, users=args.participants, week=week, copy_events=args.ingest_events,
                     collector_shares=args.collector_shares or 20_000, collector_batch=args.collector_batch,
                     sustain_seconds=args.sustain_seconds, tail_seconds=10)
    if args.collector_shares:
        measure_collector(conn, rows, args.participants, args.collector_shares, week, args.collector_batch)
    if args.ingest_events or args.collector_shares:
        # Live ranks as they are read while shares arrive: the pages the ingest
        # just updated are not all-visible, so counting inside a bucket visits the heap.
        measure_live_rank(conn, rows, week, "right after ingest, before VACUUM")
        rows.extend(measure_leaderboards(url, args.participants, week, LEADERBOARD_SAMPLES,
                                         "right after ingest, before VACUUM", ("around",)))
        vacuum(conn, *AGGREGATE_TABLES)
    measure_reads(conn, url, rows, args.participants, week, args.http_seconds)
    rows.extend(measure_leaderboards(url, args.participants, week, LEADERBOARD_SAMPLES, "vacuumed"))
    if args.http_seconds:
        # The participants are in the open week: the endpoint's default, live-rank path.
        rows.extend(measure_http(url, f"miner{args.participants // 2}", seconds=args.http_seconds))
    # The small week first: a draw refreshes weekly_rankings with the latest drawn week,
    # which must be the small one while it is timed.
    if args.reference_users:
        measure_spec_reference(conn, rows, args.reference_users, args.shares, week - dt.timedelta(days=7))
    measure_draw(conn, rows, args.participants, args.shares, week, out)
    # The same reads once the week is drawn: its final ranks.
    vacuum(conn, "lottery_results")
    rows.extend(measure_leaderboards(url, args.participants, week, LEADERBOARD_SAMPLES, "vacuumed"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--shares", type=int, default=100, help="shares per participant (default 100)")
    parser.add_argument("--ingest-events", type=int, default=1_000_000,
                        help="share events per ingest measurement (0: skip)")
    parser.add_argument("--collector-shares", type=int, default=20_000,
                        help="shares per collector-pattern measurement (0: skip; default 20000)")
    parser.add_argument("--collector-batch", type=int, default=500,
                        help="single-row INSERTs per collector flush and commit (default 500)")
    parser.add_argument("--sustain-seconds", type=int, default=300,
                        help="seconds of sustained collector ingest with the fold running (0: skip; default 300)")
    parser.add_argument("--reference-users", type=int, default=400,
                        help="users of the spec's reference query (0: skip; 400 takes minutes)")
    parser.add_argument("--http-seconds", type=int, default=10, help="seconds per wrk run (0: skip HTTP)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"), help="where EXPLAIN output goes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = measure(args)
    print_table(rows, f"{time.strftime('%Y-%m-%d')}, {args.participants:,} participants x {args.shares} shares, "
                      f"{time.perf_counter() - started:,.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
