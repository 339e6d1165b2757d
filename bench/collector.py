"""The platform collector's write pattern: executemany flushes of single-row INSERTs.

    python -m bench.collector [--participants 100000] [--shares 20000] [--batch 500]
                              [--targets bare,floor,project] [--hash both|with|without]
                              [--database-url URL] [--participant-shares 100] [--seed 1]

The platform's event collector (CONTRACT section 10) buffers events and flushes
them with an executemany of `INSERT INTO mining_events (ts, event_type, source,
payload) VALUES (...)`, a few hundred statements of one row each per transaction:
a statement trigger would fire once per share. This measures that pattern, as
psycopg's executemany with a commit every --batch shares, for --shares shares of
users drawn at random among the open week's --participants, in the collector's
payload shape ({user, worker, client_id, diff, sdiff, accepted, reject_reason, ip})
with the hash ckpool logs and without it (what the collector sends today), into:

* bare: an empty copy of mining_events (same columns, partitioning and indexes,
  no trigger), the reference each other figure is given against, as a ratio;
* floor: another copy whose plain PL/pgSQL row trigger does one upsert per share
  into a (user, day) table holding every participant: the least upkeep that keeps
  a per-user figure exact at commit, through a row trigger;
* project: mining_events as the project creates it, each flush followed by
  fold_pending_events(): the write and its catch-up (bench/fold.py measures the
  writer beside a running background fold).

The two payload variants go in turn, flush by flush, so that both meet the tables
in the same state. Each figure is shares/s over all the flushes, commits
included; a row says so when the aggregates did not gain exactly the accepted
shares. mining_events gets the platform's `source varchar(16) DEFAULT 'hosted'`
column when it lacks it.

Without --database-url a scratch cluster is started (bench/common.py) and the open
week filled with --participants generated participants (bench/scale.py). With
--database-url that database is used: its open week as it is when it has
participants (miner1..minerN, as this command and bench/run.py generate them),
else filled first. Every share measured stays there: point it at a scratch database.
`make bench` runs the same measurement at a million participants.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time

import psycopg
from psycopg import sql

from bench.common import Progress, events_copy, log, own_cpu_seconds, print_table, ratio, scratch_cluster
from bench.scale import generate_participants, participants
from bench.shares import PARTICIPANT_POOL_DIFFICULTY, random_share, random_ts

TARGETS = ("bare", "floor", "project")
TARGET_LABELS = {"bare": "bare copy", "floor": "floor (one upsert per share, row trigger)",
                 "project": "mining_events, folded after each flush"}
HASH_LABELS = {True: "with hash", False: "no hash"}
BARE_TABLE = "collector_bare_events"
FLOOR_TABLE = "collector_floor_events"
# The floor's upkeep: one row per participant and day, one upsert per share.
FLOOR_SQL = [
    """CREATE TABLE collector_floor_counts (user_id text, day date, shares bigint NOT NULL,
                                          PRIMARY KEY (user_id, day)) WITH (fillfactor = 80)""",
    """INSERT INTO collector_floor_counts SELECT 'miner' || u, (now() AT TIME ZONE 'UTC')::date, 1
       FROM generate_series(1, %(users)s) AS u""",
    """CREATE FUNCTION collector_count_floor_share() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO collector_floor_counts AS c VALUES (NEW.payload->>'user', (NEW.ts AT TIME ZONE 'UTC')::date, 1)
           ON CONFLICT (user_id, day) DO UPDATE SET shares = c.shares + 1;
           RETURN NULL;
       END $$""",
    f"""CREATE TRIGGER count_floor_share AFTER INSERT ON {FLOOR_TABLE}
        FOR EACH ROW EXECUTE FUNCTION collector_count_floor_share()""",
]
# The collector's statement, but for the table name.
INSERT = "INSERT INTO {} (ts, event_type, source, payload) VALUES (%s, %s, %s, %s::jsonb)"


def ensure_source_column(conn: psycopg.Connection) -> None:
    """mining_events as the platform has it: with the collector's source column."""
    present = conn.execute("SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'mining_events'::regclass"
                           " AND attname = 'source' AND NOT attisdropped)").fetchone()[0]
    if not present:
        log("collector: mining_events gets the platform's column source varchar(16) DEFAULT 'hosted'")
        conn.execute("ALTER TABLE mining_events ADD COLUMN source varchar(16) DEFAULT 'hosted'")
    conn.commit()


def trigger_levels(conn: psycopg.Connection) -> str:
    """mining_events' triggers, each with its level, for the log ("none": nothing of this
    project runs on the write path)."""
    found = conn.execute("SELECT string_agg(tgname || CASE WHEN tgtype & 1 = 1 THEN ' (row)' ELSE ' (statement)' END,"
                         " ', ' ORDER BY tgname) FROM pg_trigger"
                         " WHERE tgrelid = 'mining_events'::regclass AND NOT tgisinternal").fetchone()[0]
    conn.commit()
    return found or "none"


def drop_scratch_tables(conn: psycopg.Connection) -> None:
    for table in (BARE_TABLE, FLOOR_TABLE, "collector_floor_counts"):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    conn.execute("DROP FUNCTION IF EXISTS collector_count_floor_share()")


def collector_rows(rng: random.Random, users: int, count: int, week_start: dt.datetime,
                   with_hash: bool) -> list[tuple]:
    """`count` shares of users drawn from miner1..miner<users>, in the last hour of the
    open week up to now, in arrival order, as the collector's INSERT parameters."""
    end = min(dt.datetime.now(dt.timezone.utc), week_start + dt.timedelta(days=7, microseconds=-1))
    start = max(week_start, end - dt.timedelta(hours=1))
    shares = [random_share(rng, f"miner{rng.randint(1, users)}", PARTICIPANT_POOL_DIFFICULTY, random_ts(rng, start, end))
              for _ in range(count)]
    shares.sort(key=lambda share: share.ts)
    # Serialised up front: the figure is the database's, not json.dumps'.
    return [(s.ts, "share_submitted", "hosted", json.dumps(s.payload(with_hash))) for s in shares]


def flush(conn: psycopg.Connection, table: str, rows: list[tuple], batch: int) -> tuple[float, float]:
    """(seconds, this process's CPU seconds) to write `rows` into `table` as the collector
    does: one executemany of single-row INSERTs and one commit per `batch` rows."""
    statement = sql.SQL(INSERT).format(sql.Identifier(table))
    started, cpu = time.perf_counter(), own_cpu_seconds()
    with conn.cursor() as cur:
        for i in range(0, len(rows), batch):
            cur.executemany(statement, rows[i:i + batch])
            conn.commit()
    return time.perf_counter() - started, own_cpu_seconds() - cpu


def week_shares(conn: psycopg.Connection, week: dt.date) -> int:
    """The accepted shares the aggregates hold for the week."""
    total = conn.execute("SELECT coalesce(sum(share_count), 0) FROM share_weekly_best WHERE week_start = %s",
                         (week,)).fetchone()[0]
    conn.commit()
    return int(total)


def measure_collector(conn: psycopg.Connection, rows: list, users: int, shares: int, week: dt.date,
                      batch: int = 500, targets: tuple[str, ...] = TARGETS,
                      hashes: tuple[bool, ...] = (True, False), seed: int = 1) -> None:
    """Appends one (measure, figure, reference) row per target and hash variant: shares/s,
    and against the bare copy of the same run, the time as a ratio."""
    rng = random.Random(seed)
    week_start = conn.execute("SELECT lottery_week_start_ts(%s)", (week,)).fetchone()[0]
    ensure_source_column(conn)
    log(f"collector: mining_events' triggers: {trigger_levels(conn)}")
    seconds: dict[tuple[str, bool], float] = {}
    client_cpu: dict[tuple[str, bool], float] = {}
    gained: dict[str, tuple[int, int]] = {}

    def measure(target: str) -> None:
        # The payload variants flush by flush in turn: both meet the tables in the same
        # state (the row path's share_replay, say, fills with dead rows until autovacuum).
        data = {with_hash: collector_rows(rng, users, shares, week_start, with_hash) for with_hash in hashes}
        log(f"collector: {shares:,} shares {' and '.join(HASH_LABELS[h] for h in hashes)}, "
            f"{batch} a flush in turn, into {TARGET_LABELS[target]}")
        table = {"bare": BARE_TABLE, "floor": FLOOR_TABLE}.get(target, "mining_events")
        before = week_shares(conn, week) if target == "project" else 0
        for with_hash in hashes:
            seconds[target, with_hash] = client_cpu[target, with_hash] = 0.0
        for i in range(0, shares, batch):
            for with_hash in hashes:
                took, cpu = flush(conn, table, data[with_hash][i:i + batch], batch)
                if target == "project":
                    started = time.perf_counter()
                    conn.execute("SELECT fold_pending_events()")
                    conn.commit()
                    took += time.perf_counter() - started
                seconds[target, with_hash] += took
                client_cpu[target, with_hash] += cpu
        if target == "project":
            accepted = sum(1 for variant in data.values() for row in variant if json.loads(row[3])["accepted"])
            gained[target] = (week_shares(conn, week) - before, accepted)

    drop_scratch_tables(conn)  # a run cut short
    if "bare" in targets:
        events_copy(conn, BARE_TABLE, week)
    if "floor" in targets:
        events_copy(conn, FLOOR_TABLE, week)
        for statement in FLOOR_SQL:
            conn.execute(statement, {"users": users})
        conn.execute("ANALYZE collector_floor_counts")
    conn.commit()
    try:
        for target in [t for t in TARGETS if t in targets]:
            measure(target)
    finally:
        conn.rollback()
        drop_scratch_tables(conn)
        conn.commit()

    for with_hash in hashes:
        bare = seconds.get(("bare", with_hash))
        for target in [t for t in TARGETS if (t, with_hash) in seconds]:
            took = seconds[target, with_hash]
            if target == "bare":
                # The client's own share of the reference: psycopg's per-statement work.
                reference = (f"{users:,} miners, {shares:,} shares, one commit per {batch} single-row INSERTs;"
                             f" this client's CPU {client_cpu[target, with_hash] / took:.0%} of the time")
            else:
                reference = (f"bare {shares / bare:,.0f} shares/s: {ratio(took, bare)} the time"
                             if bare else "no bare reference measured")
                if target in gained:
                    got, accepted = gained[target]
                    reference += "" if got == accepted else f"; aggregates gained {got:,} of {accepted:,} accepted shares"
                if target == "project" and ("floor", with_hash) in seconds:
                    reference += f"; floor: {ratio(took, seconds['floor', with_hash])}"
            rows.append((f"collector, {batch}-row executemany, {TARGET_LABELS[target]}, {HASH_LABELS[with_hash]}",
                         f"{shares / took:,.0f} shares/s", reference))


def run(url: str, args: argparse.Namespace) -> list:
    rows = Progress()
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
        conn.commit()
        present = participants(conn, week)
        if present:
            log(f"collector: the week of {week} has {present:,} participants; users drawn from "
                f"miner1..miner{args.participants}")
        else:
            log(f"scale: {args.participants:,} participants x {args.participant_shares} shares "
                f"in the week of {week}, in SQL")
            took = generate_participants(conn, week, args.participants, args.participant_shares)
            log(f"scale: generated in {took:,.0f} s")
        measure_collector(conn, rows, args.participants, args.shares, week, args.batch, args.targets,
                          args.hashes, args.seed)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100_000,
                        help="miners the shares are drawn from (default 100000)")
    parser.add_argument("--shares", type=int, default=20_000, help="shares per measurement (default 20000)")
    parser.add_argument("--batch", type=int, default=500, help="single-row INSERTs per flush and commit (default 500)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated, of bare, floor, project (default all three)")
    parser.add_argument("--hash", choices=("both", "with", "without"), default="both",
                        help="shares with the hash, without it (as the collector sends today), or both (default)")
    parser.add_argument("--database-url", default=None,
                        help="an existing database to measure in, instead of a scratch cluster (it keeps the shares)")
    parser.add_argument("--participant-shares", type=int, default=100,
                        help="shares per generated participant (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the shares (default 1)")
    args = parser.parse_args(argv)
    args.targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    if not args.targets or set(args.targets) - set(TARGETS):
        parser.error(f"--targets takes a comma-separated list of {', '.join(TARGETS)}")
    if args.participants < 1 or args.shares < 1 or args.batch < 1:
        parser.error("need --participants, --shares and --batch >= 1")
    args.hashes = {"both": (True, False), "with": (True,), "without": (False,)}[args.hash]
    started = time.perf_counter()
    if args.database_url:
        rows = run(args.database_url, args)
    else:
        with scratch_cluster() as (url, _):
            rows = run(url, args)
    print_table(rows, f"{time.strftime('%Y-%m-%d')}, collector pattern, {args.participants:,} miners, "
                      f"{time.perf_counter() - started:,.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
