"""Benchmarks: figures, not pass/fail. `make bench`, or

    python -m bench.run [--participants 1000000] [--shares 100] [--ingest-events 1000000]
                        [--reference-users 400] [--http-seconds 10] [--out bench/out]

Starts a scratch PostgreSQL 15 cluster (pg_cron loaded, settings as README
"Scaling out" recommends) in a temporary directory, applies the database and
measures, printing each figure next to a reference measured in the same run:

1. scale: N participants x M shares in the open ISO week, generated straight in
   SQL as the ingest trigger leaves them (per-user-per-day and per-week bests,
   rank buckets). The draw and every read use only these aggregates (the
   EXPLAIN output proves it), so raw events would add nothing to those figures
   but hours of generation;
2. ingest: the same share events (hashes proving their sdiff, users drawn from
   the N participants) by one COPY, by 10,000-row COPYs and by 1,000-row
   INSERTs, into mining_events (aggregates kept), into a bare copy of it (same
   partitioning and indexes, no trigger) and into a floor copy whose trigger
   only counts each user's shares (the least upkeep that keeps a per-user
   figure current at commit);
3. reads: get_weekly_game_data calls/s (pgbench), live-rank time over random
   participants and the worst-placed ones, HTTP through bench/http.py;
4. the draw of the N participants against the unavoidable work (the same
   result and XP rows written by INSERT ... SELECT ... ORDER BY from an already
   ranked table, with the same indexes), and the spec's reference ranking query
   against our draw at --reference-users x M shares.

EXPLAIN (ANALYZE, BUFFERS) of the draw and of weekly-data go to --out, and
the run reports whether any plan touches mining_events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from db import apply as db_apply
from db import cluster

ROOT = Path(__file__).resolve().parent.parent

# One 2-core, 24 GiB machine holding a million participants (README, "Scaling out").
BENCH_SETTINGS = {
    "shared_buffers": "'6GB'",
    "effective_cache_size": "'16GB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'1GB'",
    "max_wal_size": "'16GB'",
    "checkpoint_timeout": "'30min'",
    # Aggregate upkeep updates rows all over its tables; the first touch of a
    # page after a checkpoint logs the whole page, and lz4 halves those writes.
    "wal_compression": "lz4",
}

# Share events as ckpool logs them, live: all on one day (the week's last), a
# hash uniformly below the target of pool difficulty 1,000 (so sdiff, derived
# from it, is Pareto distributed from 1,000 up), ~2% rejected, users drawn at
# random from miner1..minerN.
EVENTS_FUNCTION = """
CREATE FUNCTION pg_temp.bench_events(p_count bigint, p_users integer, p_week date)
RETURNS TABLE (ts timestamptz, event_type text, payload jsonb)
LANGUAGE sql VOLATILE AS $$
    SELECT lottery_week_start_ts(p_week) + interval '6 days' + random() * interval '1 day',
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

# N participants x M shares, as the ingest trigger would have left them (bests,
# rank buckets and their groups): each day's best is the largest of that day's
# share difficulties (Pareto from 1,000).
SCALE_SQL = [
    """INSERT INTO share_daily_best (user_id, day, best_difficulty, best_at, best_hash, share_count)
       SELECT 'miner' || u, %(week)s::date + d,
              1000 / (1 - power(random(), 1.0 / k)),
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


class Progress(list):
    """The result rows, each also printed to stderr as soon as it is measured."""

    def append(self, row):
        print("    " + "  ".join(row), file=sys.stderr)
        super().append(row)


def print_table(rows: list[tuple[str, str, str]], title: str = "") -> None:
    """The (measure, figure, reference) rows as one aligned table on stdout."""
    width = max(len(r[0]) for r in rows)
    fwidth = max(len(r[1]) for r in rows)
    print(f"\n{title}")
    print(f"{'measure'.ljust(width)}  {'figure'.rjust(fwidth)}  reference")
    for name, figure, ref in rows:
        print(f"{name.ljust(width)}  {figure.rjust(fwidth)}  {ref}")


def say(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def scratch_cluster():
    """A private cluster with BENCH_SETTINGS and a database `bench` applied; yields (url, datadir)."""
    datadir = Path(tempfile.mkdtemp(prefix="lottery-bench-pg-")) / "data"
    port = cluster.free_port()
    say(f"starting a scratch cluster in {datadir} on port {port}")
    cluster.start(datadir, port, BENCH_SETTINGS)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        url = f"postgresql://postgres@127.0.0.1:{port}/bench"
        db_apply.apply(url, schedule=False, log=lambda *_: None)
        yield url, datadir
    finally:
        cluster.stop(datadir, mode="immediate")
        shutil.rmtree(datadir.parent, ignore_errors=True)


def timed(conn, statement, params=None) -> float:
    started = time.perf_counter()
    conn.execute(statement, params)
    conn.commit()
    return time.perf_counter() - started


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "n/a"


def vacuum(conn, *tables: str) -> None:
    conn.commit()
    conn.autocommit = True
    conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
    conn.autocommit = False


# --- 2. ingest ---------------------------------------------------------------

def share_events(conn, count: int, users: int, week: dt.date, how: str) -> list:
    """`count` share events generated by the server: COPY text lines, or (ts, type, payload) texts."""
    if how == "insert":
        return conn.execute("SELECT ts::text, event_type, payload::text FROM pg_temp.bench_events(%s, %s, %s)",
                            (count, users, week)).fetchall()
    data = bytearray()
    with conn.cursor().copy("COPY (SELECT * FROM pg_temp.bench_events(%s, %s, %s)) TO STDOUT",
                            (count, users, week)) as copy:
        for block in copy:
            data += block
    return bytes(data).splitlines(keepends=True)


def load(conn, table: str, events: list, how: str, batch: int) -> float:
    """Seconds to load `events` into `table`, `batch` of them per COPY or per INSERT."""
    chunks = [events[i:i + batch] for i in range(0, len(events), batch)]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for chunk in chunks:
            if how == "copy":
                with cur.copy(f"COPY {table} (ts, event_type, payload) FROM STDIN") as copy:
                    copy.write(b"".join(chunk))
            else:
                cur.execute(f"INSERT INTO {table} (ts, event_type, payload)"
                            " SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::jsonb[])",
                            [list(column) for column in zip(*chunk)])
    conn.commit()
    return time.perf_counter() - started


# The floor of aggregate upkeep: one counter per user, bumped by a statement
# trigger in the loading transaction. Any design whose per-user figures are
# current at commit (read-your-writes) does at least this much per share.
FLOOR_SQL = [
    """CREATE TABLE floor_counts (user_id text COLLATE "C" PRIMARY KEY, shares bigint NOT NULL)
       WITH (fillfactor = 80)""",
    """INSERT INTO floor_counts SELECT 'miner' || u, %(shares)s FROM generate_series(1, %(users)s) AS u""",
    """CREATE FUNCTION count_floor_shares() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO floor_counts AS c
           SELECT payload->>'user', count(*) FROM new_events GROUP BY 1 ORDER BY 1
           ON CONFLICT (user_id) DO UPDATE SET shares = c.shares + excluded.shares;
           RETURN NULL;
       END $$""",
    """CREATE TRIGGER count_floor_shares AFTER INSERT ON floor_events
       REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION count_floor_shares()""",
]


def events_copy(conn, name: str, week: dt.date) -> None:
    """An empty table with mining_events' partitions and indexes, and no trigger."""
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE mining_events INCLUDING ALL) PARTITION BY RANGE (ts)")
                 .format(sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})")
                 .format(sql.Identifier(f"{name}_week"), sql.Identifier(name),
                         sql.Literal(f"{week} 00:00+00"), sql.Literal(f"{week + dt.timedelta(days=7)} 00:00+00")))
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT")
                 .format(sql.Identifier(f"{name}_default"), sql.Identifier(name)))


def measure_ingest(conn, rows: Progress, events: int, users: int, shares: int, week: dt.date) -> None:
    events_copy(conn, "bare_events", week)
    events_copy(conn, "floor_events", week)
    for statement in FLOOR_SQL:
        conn.execute(statement, {"users": users, "shares": shares})
    conn.commit()
    vacuum(conn, "floor_counts")
    shapes = [("one COPY", "copy", events), ("10,000-row COPYs", "copy", 10_000),
              ("1,000-row INSERTs", "insert", 1_000)]
    for name, how, batch in shapes:
        say(f"ingest: generating {events:,} share events from {users:,} users")
        data = share_events(conn, events, users, week, how)
        conn.commit()
        say(f"ingest: {name}, bare table, floor table, then mining_events")
        bare = load(conn, "bare_events", data, how, batch)
        floor = load(conn, "floor_events", data, how, batch)
        kept = load(conn, "mining_events", data, how, batch)
        rows.append((f"ingest, {name}, floor (one counter upsert per share)", f"{events / floor:,.0f} shares/s",
                     f"bare {events / bare:,.0f} rows/s: {ratio(floor, bare)} the time"))
        rows.append((f"ingest, {name}, aggregates kept", f"{events / kept:,.0f} shares/s",
                     f"bare: {ratio(kept, bare)} the time; floor: {ratio(kept, floor)}"))


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
    say("reads: get_weekly_game_data by pgbench (2 clients, random participants)")
    tps, latency = pgbench(url, f"\\set u random(1, {users})\n"
                                f"SELECT get_weekly_game_data('miner' || :u, '{week}');\n", max(seconds, 5))
    rows.append(("get_weekly_game_data, random participants", f"{tps:,.0f} calls/s",
                 f"{latency:.2f} ms average, 2 clients"))

    measure_live_rank(conn, rows, week, "vacuumed")


def measure_live_rank(conn, rows: Progress, week: dt.date, state: str) -> None:
    say(f"reads: live rank of 2,000 random participants, and of the last 200 in the order ({state})")
    sample = [u for (u,) in conn.execute("""
        (SELECT user_id FROM share_weekly_best WHERE week_start = %(week)s ORDER BY random() LIMIT 2000)
        UNION ALL
        (SELECT user_id FROM share_weekly_best WHERE week_start = %(week)s
         ORDER BY rank_bucket, best_difficulty, best_at DESC, user_id DESC LIMIT 200)""", {"week": week})]

    def live_rank_ms(user: str) -> float:
        """As a client sees it: one prepared statement, one round trip."""
        started = time.perf_counter()
        conn.execute("SELECT rank FROM get_live_rank(%s, %s)", (user, week), prepare=True).fetchone()
        return 1000 * (time.perf_counter() - started)

    live_rank_ms(sample[0])  # plan once
    timings = sorted(((live_rank_ms(user), user) for user in sample), reverse=True)
    # The slowest users again: a user whose rank is costly stays slow, a stall
    # of the machine or of this client does not.
    again = max(statistics.median(live_rank_ms(user) for _ in range(5)) for _, user in timings[:20])
    conn.commit()
    ms = sorted(t for t, _ in timings)
    participants = conn.execute("SELECT count(*) FROM share_weekly_best WHERE week_start = %s",
                                (week,)).fetchone()[0]
    conn.commit()
    rows.append((f"live rank, {participants:,} participants, {state}", f"p50 {ms[len(ms) // 2]:.2f} ms",
                 f"p99 {ms[int(len(ms) * 0.99)]:.2f} ms, max {ms[-1]:.2f} ms over {len(ms):,} users"
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
    say("draw: EXPLAIN (ANALYZE, BUFFERS) of every statement of run_lottery_draw (rolled back)")
    # 5 ms: the draw's own statements, not the million per-row calls inside them.
    touching = explain_nested(conn, "SELECT run_lottery_draw(%s, %s)", (week, after), out / "explain-draw.txt",
                              min_ms=5)
    say("weekly-data: EXPLAIN (ANALYZE, BUFFERS) of get_weekly_game_data")
    touching += explain_nested(conn, "SELECT get_weekly_game_data(%s, %s)", (f"miner{users // 2}", week),
                               out / "explain-weekly-data.txt")
    rows.append(("plans of the draw and weekly-data touching mining_events", str(len(touching)),
                 f"{out / 'explain-draw.txt'}, {out / 'explain-weekly-data.txt'}"))

    vacuum(conn, "lottery_results", "xp_transactions")
    conn.execute("CHECKPOINT")
    say(f"draw: run_lottery_draw of {users:,} participants")
    draw = timed(conn, "SELECT run_lottery_draw(%s, %s)", (week, after))

    say("draw: the unavoidable work, from an already ranked table")
    conn.execute("""
        CREATE TABLE ranked AS
        SELECT b.*, row_number() OVER (ORDER BY rank_bucket DESC, best_difficulty DESC, best_at, user_id) AS rank
        FROM share_weekly_best b WHERE week_start = %s ORDER BY rank""", (week,))
    conn.execute("CREATE TABLE bare_results (LIKE lottery_results INCLUDING ALL)")
    conn.execute("CREATE TABLE bare_xp (LIKE xp_transactions INCLUDING ALL)")
    vacuum(conn, "ranked")
    conn.execute("CHECKPOINT")
    draw_id = conn.execute("SELECT gen_random_uuid()::text").fetchone()[0]
    unavoidable = timed(conn, UNAVOIDABLE_SQL, {"draw": draw_id})
    rows.append((f"draw, {users:,} participants x {shares} shares", f"{draw:,.1f} s",
                 f"unavoidable work {unavoidable:,.1f} s: {ratio(draw, unavoidable)}"))


def measure_spec_reference(conn, rows: Progress, users: int, shares: int, week: dt.date) -> None:
    say(f"spec reference: {users} users x {shares} shares through ingest, then drawn")
    conn.execute("CREATE TABLE small_events AS SELECT * FROM pg_temp.bench_events(%s, %s, %s)",
                 (users * shares, users, week))
    conn.execute("INSERT INTO mining_events SELECT * FROM small_events")
    vacuum(conn, "small_events", "share_weekly_best")
    ours = timed(conn, "SELECT run_lottery_draw(%s, %s)", (week, f"{week + dt.timedelta(days=7)} 00:01+00"))
    say("spec reference: seed 5.3.3's ranking query over the same events (minutes: it is quadratic)")
    start = f"{week} 00:00+00"
    end = f"{week + dt.timedelta(days=6)} 23:59:59.999999+00"
    spec = timed(conn, SPEC_REFERENCE_SQL.format(table="small_events"), {"start": start, "end": end})
    rows.append((f"spec's reference ranking, {users} users x {shares} shares", f"{spec:,.1f} s",
                 f"our whole draw {ours * 1000:,.1f} ms: {spec / ours:,.0f}x faster"))


def measure(args) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = Progress()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with scratch_cluster() as (url, _), psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(EVENTS_FUNCTION)
        week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
        say(f"scale: {args.participants:,} participants x {args.shares} shares in the week of {week}, in SQL")
        started = time.perf_counter()
        for statement in SCALE_SQL:
            conn.execute(statement, {"week": week, "users": args.participants, "shares": args.shares})
        conn.commit()
        vacuum(conn, "share_daily_best", "share_weekly_best", "share_rank_buckets", "share_rank_bucket_groups")
        say(f"scale: generated in {time.perf_counter() - started:,.0f} s")
        size = conn.execute("SELECT pg_total_relation_size('share_daily_best')"
                            " + pg_total_relation_size('share_weekly_best')"
                            " + pg_total_relation_size('share_rank_buckets')"
                            " + pg_total_relation_size('share_rank_bucket_groups')").fetchone()[0]
        conn.commit()
        rows.append((f"aggregates on disk, {args.participants:,} participants", f"{size / 2**30:,.2f} GiB",
                     f"{size / args.participants:,.0f} bytes per participant-week, indexes included"))

        if args.ingest_events:
            measure_ingest(conn, rows, args.ingest_events, args.participants, args.shares, week)
            # Live ranks as they are read while shares arrive: the pages the ingest
            # just updated are not all-visible, so counting inside a bucket visits the heap.
            measure_live_rank(conn, rows, week, "right after ingest, before VACUUM")
            vacuum(conn, "share_daily_best", "share_weekly_best", "share_rank_buckets", "share_rank_bucket_groups")
        measure_reads(conn, url, rows, args.participants, week, args.http_seconds)
        if args.http_seconds:
            from bench.http import measure_http
            # The participants are in the open week: the endpoint's default, live-rank path.
            rows.extend(measure_http(url, f"miner{args.participants // 2}", seconds=args.http_seconds))
        # The small week first: a draw refreshes weekly_rankings with the latest drawn week,
        # which must be the small one while it is timed.
        if args.reference_users:
            measure_spec_reference(conn, rows, args.reference_users, args.shares, week - dt.timedelta(days=7))
        measure_draw(conn, rows, args.participants, args.shares, week, out)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--shares", type=int, default=100, help="shares per participant (default 100)")
    parser.add_argument("--ingest-events", type=int, default=1_000_000,
                        help="share events per ingest measurement (0: skip)")
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
