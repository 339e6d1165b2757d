"""Benchmarks: figures, not pass/fail. `make bench` or `python -m bench.run [--users N --shares M]`.

Starts a scratch PostgreSQL cluster (pg_cron loaded, as in production) in a
temporary directory, applies the database, then measures in one run:

* ingest: the same COPY stream into mining_events (aggregates maintained by the
  trigger) and into a bare copy of the table (same indexes, no trigger);
* the draw of N users x M shares, against the unavoidable work: writing the same
  result and XP rows by plain INSERT ... SELECT ... ORDER BY from a ranked source;
* the spec's reference ranking query (a scan of raw events) at a small scale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from db import apply as db_apply
from db import cluster

WEEK = "2026-11-16"

# N users x M shares spread over the week; difficulty heavy-tailed (1/U).
EVENTS_SQL = """
    SELECT '2026-11-16'::timestamptz + ((s * 104729) %% 604800) * interval '1 second' AS ts,
           'share_submitted' AS event_type,
           jsonb_build_object('user', 'miner' || (s %% {users}), 'worker', 'rig' || (s %% 3),
                              'sdiff', round((1000 / (1 - ((s * 2654435761) %% 1000003) / 1000003.0))::numeric, 3),
                              'accepted', (s %% 97) <> 0,
                              'hash', lpad(to_hex(s), 64, '0')) AS payload
    FROM generate_series(1::bigint, {total}) AS s"""

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


@contextmanager
def scratch_database():
    datadir = Path(tempfile.mkdtemp(prefix="lottery-bench-pg-")) / "data"
    port = cluster.free_port()
    print(f"  starting a scratch cluster in {datadir} on port {port}", file=sys.stderr)
    cluster.start(datadir, port)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        url = f"postgresql://postgres@127.0.0.1:{port}/bench"
        db_apply.apply(url, schedule=False, log=lambda *_: None)
        yield url
    finally:
        cluster.stop(datadir, mode="immediate")
        shutil.rmtree(datadir.parent, ignore_errors=True)


def timed(conn, sql, params=None) -> float:
    started = time.perf_counter()
    conn.execute(sql, params)
    conn.commit()
    return time.perf_counter() - started


def copy_stream(conn, table: str, data: bytes, batch_rows: int | None) -> float:
    """COPY `data` (text format) into table, in one statement or in batches of batch_rows."""
    lines = data.splitlines(keepends=True)
    chunks = [lines] if batch_rows is None else [lines[i:i + batch_rows] for i in range(0, len(lines), batch_rows)]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for chunk in chunks:
            with cur.copy(f"COPY {table} (ts, event_type, payload) FROM STDIN") as copy:
                copy.write(b"".join(chunk))
    conn.commit()
    return time.perf_counter() - started


class Progress(list):
    """The result rows, each also printed to stderr as soon as it is measured."""

    def append(self, row):
        print("    " + "  ".join(row), file=sys.stderr)
        super().append(row)


def measure(users: int, shares: int, reference_users: int) -> list[tuple[str, str, str]]:
    total = users * shares
    rows: list[tuple[str, str, str]] = Progress()
    with scratch_database() as url, psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        print(f"  generating {total:,} share events ({users:,} users x {shares})", file=sys.stderr)
        data = bytearray()
        with conn.cursor().copy(f"COPY ({EVENTS_SQL.format(users=users, total=total)}) TO STDOUT".replace("%%", "%")) as copy:
            for block in copy:
                data += block
        data = bytes(data)
        conn.execute("CREATE TABLE bare_events (LIKE mining_events INCLUDING ALL)")
        conn.commit()

        print("  ingest: bare COPY vs COPY with aggregates", file=sys.stderr)
        bare = copy_stream(conn, "bare_events", data, None)
        agg = copy_stream(conn, "mining_events", data, None)
        rows.append(("ingest, one COPY, bare table", f"{total / bare:,.0f} rows/s", f"{bare:.2f} s"))
        rows.append(("ingest, one COPY, aggregates kept", f"{total / agg:,.0f} rows/s",
                     f"{agg:.2f} s = {agg / bare:.2f}x bare"))
        conn.execute("TRUNCATE bare_events")
        conn.execute("DELETE FROM mining_events")
        conn.execute("TRUNCATE share_daily_best, share_weekly_best, event_weeks")
        conn.commit()
        bare_b = copy_stream(conn, "bare_events", data, 10_000)
        agg_b = copy_stream(conn, "mining_events", data, 10_000)
        rows.append(("ingest, 10k-row COPYs, bare table", f"{total / bare_b:,.0f} rows/s", f"{bare_b:.2f} s"))
        rows.append(("ingest, 10k-row COPYs, aggregates kept", f"{total / agg_b:,.0f} rows/s",
                     f"{agg_b:.2f} s = {agg_b / bare_b:.2f}x bare"))
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        conn.autocommit = False

        print("  draw", file=sys.stderr)
        participants = conn.execute("SELECT count(*) FROM share_weekly_best WHERE week_start = %s",
                                    (WEEK,)).fetchone()[0]
        draw = timed(conn, "SELECT run_lottery_draw(%s, '2026-11-23 00:01+00')", (WEEK,))
        # The unavoidable work: the same rows written from an already ranked source.
        conn.execute("""
            CREATE TABLE ranked AS
            SELECT b.*, row_number() OVER (ORDER BY best_difficulty DESC, best_at, user_id) AS rank
            FROM share_weekly_best b WHERE week_start = %s""", (WEEK,))
        conn.execute("CREATE TABLE bare_results (LIKE lottery_results INCLUDING ALL)")
        conn.execute("CREATE TABLE bare_xp (LIKE xp_transactions INCLUDING ALL)")
        conn.execute("ANALYZE ranked")
        conn.commit()
        draw_id = conn.execute("SELECT gen_random_uuid()").fetchone()[0]
        unavoidable = timed(conn, """
            WITH r AS (
                INSERT INTO bare_results (draw_id, user_id, rank, best_difficulty, best_share_at, best_hash,
                                          ticket_count, xp_awarded)
                SELECT %s, user_id, rank, best_difficulty, best_at, best_hash, share_count,
                       calculate_xp_for_rank(rank)
                FROM ranked ORDER BY rank
                RETURNING user_id, xp_awarded)
            INSERT INTO bare_xp (user_id, amount, source, reference_id)
            SELECT user_id, xp_awarded, 'lottery', %s FROM r""", (draw_id, str(draw_id)))
        rows.append((f"draw, {participants:,} participants x {shares} shares", f"{draw * 1000:,.0f} ms",
                     f"{draw / unavoidable:.2f}x unavoidable work ({unavoidable * 1000:,.0f} ms)"))

        print(f"  spec reference query at {reference_users} users x {shares} shares", file=sys.stderr)
        conn.execute("CREATE TABLE small_events AS SELECT * FROM mining_events WHERE payload->>'user' IN ("
                     " SELECT 'miner' || g FROM generate_series(0, %s - 1) g)", (reference_users,))
        conn.execute("ANALYZE small_events")
        conn.execute("CREATE TABLE small_weekly AS SELECT * FROM share_weekly_best WHERE user_id IN ("
                     " SELECT 'miner' || g FROM generate_series(0, %s - 1) g)", (reference_users,))
        conn.commit()
        spec = timed(conn, SPEC_REFERENCE_SQL.format(table="small_events"),
                     {"start": "2026-11-16 00:00+00", "end": "2026-11-22 23:59:59.999999+00"})
        ours = timed(conn, """SELECT user_id, row_number() OVER (ORDER BY best_difficulty DESC, best_at, user_id)
                              FROM small_weekly ORDER BY 2""")
        rows.append((f"spec reference ranking, {reference_users} users x {shares}", f"{spec * 1000:,.0f} ms",
                     f"ours {ours * 1000:.2f} ms: {spec / ours:,.0f}x faster"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--shares", type=int, default=100)
    parser.add_argument("--reference-users", type=int, default=100)
    args = parser.parse_args(argv)
    rows = measure(args.users, args.shares, args.reference_users)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure'.ljust(width)}  {'figure':>16}  reference")
    for name, figure, ref in rows:
        print(f"{name.ljust(width)}  {figure:>16}  {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
