"""Ingest off the write path: what a share costs its writer, and what the fold costs after.

    python -m bench.fold [--participants 100000] [--copy-events 200000] [--collector-shares 20000]
                         [--sustain-seconds 60] [--tail-seconds 10] [--database-url URL]

Events are written with no work of this project on the write path; the background
fold (db/functions/22_share_fold.sql) judges and folds them after commit. Each
figure is measured beside a reference from the same run:

* bare tables, the references: "platform", mining_events as the platform has it
  (its columns, the indexes (event_type, ts DESC) and ((payload->>'user')), no
  seq), and "same", a copy of this project's mining_events (its seq column with a
  sequence of its own, its indexes), with no fold reading either;
* the collector's pattern (executemany of single-row INSERTs, a commit per
  --collector-batch) into each bare table, and into mining_events while the
  background fold runs beside it (a loop of fold_events(), as `lottery fold
  --follow` and the pg_cron job run it): the writer's shares/s, and write plus
  catch-up, until fold_pending_events() returns;
* one COPY of --copy-events shares and 10,000-row COPYs of them, into the bare
  tables and into mining_events, each then folded: write plus catch-up;
* fold throughput on one core: events/s of fold_pending_events() over the COPY's
  backlog, against the bare collector pattern's shares/s;
* judging per share: queue_events() over that backlog against a scan of the same
  rows, in a transaction rolled back;
* fold lag during --sustain-seconds of the collector's pattern at full speed with
  the fold running: event_fold_lag() sampled every 0.1 s (p50, p99, max);
* own figures right after commit: get_weekly_game_data and get_live_rank p99 of
  users with shares in an unfolded tail of --tail-seconds of the bare collector
  rate, against the same calls once folded.

Without --database-url a scratch cluster is started (bench/common.py) and the open
week filled with --participants generated participants (bench/scale.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import threading
import time

import psycopg
from psycopg import sql

from bench.collector import collector_rows, ensure_source_column, flush
from bench.common import (Progress, call_ms, load, log, percentile, print_table, ratio, scratch_cluster, vacuum)
from bench.scale import generate_participants, participants
from bench.shares import install_sql_generator, share_events

PLATFORM_BARE = "fold_bare_platform"
SAME_BARE = "fold_bare_same"
BARE_LABELS = {PLATFORM_BARE: "bare, the platform's mining_events", SAME_BARE: "bare, this project's mining_events"}
OWN_FIGURES = "SELECT get_weekly_game_data(%s)"
LIVE_RANK = "SELECT rank FROM get_live_rank(%s)"


def partitioned(conn: psycopg.Connection, name: str, week, columns: sql.Composable) -> None:
    """`name` partitioned as mining_events is: the week's partition and a default one."""
    conn.execute(sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (ts)").format(sql.Identifier(name), columns))
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(f"{name}_week"), sql.Identifier(name),
        sql.Literal(f"{week} 00:00+00"), sql.Literal(f"{week + dt.timedelta(days=7)} 00:00+00")))
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
        sql.Identifier(f"{name}_default"), sql.Identifier(name)))


def create_bare_tables(conn: psycopg.Connection, week) -> None:
    drop_bare_tables(conn)
    partitioned(conn, PLATFORM_BARE, week, sql.SQL(
        "ts timestamptz NOT NULL, event_type text NOT NULL, source varchar(16) DEFAULT 'hosted',"
        " payload jsonb NOT NULL"))
    conn.execute(sql.SQL("CREATE INDEX ON {} (event_type, ts DESC)").format(sql.Identifier(PLATFORM_BARE)))
    conn.execute(sql.SQL("CREATE INDEX ON {} ((payload->>'user'))").format(sql.Identifier(PLATFORM_BARE)))
    partitioned(conn, SAME_BARE, week, sql.SQL("LIKE mining_events INCLUDING ALL"))
    conn.execute("CREATE SEQUENCE fold_bare_seq CACHE 1")
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN seq SET DEFAULT nextval('fold_bare_seq')").format(
        sql.Identifier(SAME_BARE)))
    conn.commit()


def drop_bare_tables(conn: psycopg.Connection) -> None:
    conn.rollback()
    for table in (PLATFORM_BARE, SAME_BARE):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    conn.execute("DROP SEQUENCE IF EXISTS fold_bare_seq")
    conn.commit()


class FoldLoop(threading.Thread):
    """The background fold, as `lottery fold --follow` runs it, on its own connection."""

    def __init__(self, url: str, batch: int = 100_000, idle: float = 0.2):
        super().__init__(daemon=True)
        self.url, self.batch, self.idle = url, batch, idle
        self.stop = threading.Event()
        self.folded = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stop.is_set():
                    folded = conn.execute("SELECT fold_events(%s)", (self.batch,)).fetchone()[0]
                    self.folded += folded
                    if not folded:
                        self.stop.wait(self.idle)
        except BaseException as exc:  # reported by the measurement
            self.error = exc

    def finish(self) -> None:
        self.stop.set()
        self.join()
        if self.error:
            raise self.error


class LagSampler(threading.Thread):
    """event_fold_lag()'s seconds every `every` seconds, on its own connection."""

    def __init__(self, url: str, every: float = 0.1):
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.stop = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(self.every):
                self.seconds.append(conn.execute("SELECT seconds FROM event_fold_lag()").fetchone()[0])


def catch_up(conn: psycopg.Connection) -> tuple[float, int]:
    """(seconds, events) of one fold_pending_events()."""
    started = time.perf_counter()
    folded = conn.execute("SELECT fold_pending_events()").fetchone()[0]
    conn.commit()
    return time.perf_counter() - started, folded


def collector_seconds(conn: psycopg.Connection, table: str, data: list, batch: int) -> float:
    return flush(conn, table, data, batch)[0]


def measure_collector_fold(conn, url: str, rows: Progress, users: int, shares: int, week, batch: int,
                           rng: random.Random) -> float:
    """The collector's pattern into both bare tables and into mining_events with the fold
    running; returns the bare platform table's shares/s."""
    week_start = conn.execute("SELECT lottery_week_start_ts(%s)", (week,)).fetchone()[0]
    data = collector_rows(rng, users, shares, week_start, with_hash=False)
    bare = {table: collector_seconds(conn, table, data, batch) for table in (PLATFORM_BARE, SAME_BARE)}
    catch_up(conn)
    fold = FoldLoop(url)
    fold.start()
    try:
        wrote = collector_seconds(conn, "mining_events", collector_rows(rng, users, shares, week_start, False), batch)
        caught, _ = catch_up(conn)
    finally:
        fold.finish()
    reference = bare[PLATFORM_BARE]
    for table, took in bare.items():
        rows.append((f"fold: collector pattern, {batch}-row executemany, {BARE_LABELS[table]}",
                     f"{shares / took:,.0f} shares/s",
                     f"{users:,} miners, {shares:,} shares without hash"
                     + ("" if table == PLATFORM_BARE else f"; {ratio(took, reference)} the platform's time")))
    rows.append(("fold: collector pattern into mining_events, background fold running, writer",
                 f"{shares / wrote:,.0f} shares/s",
                 f"{reference / wrote:.2f}x the platform's bare rate; {bare[SAME_BARE] / wrote:.2f}x its own bare copy's"))
    rows.append(("fold: collector pattern into mining_events, write plus catch-up",
                 f"{shares / (wrote + caught):,.0f} shares/s",
                 f"{ratio(wrote + caught, reference)} the platform's bare time; catch-up {caught * 1000:,.0f} ms"))
    return shares / reference


def measure_copies(conn, rows: Progress, events: int, users: int, week, collector_rate: float) -> None:
    """One COPY and 10,000-row COPYs: bare against write plus catch-up; then the fold's
    throughput and the judging's cost per share over the first COPY's backlog."""
    for name, batch in (("one COPY", events), ("10,000-row COPYs", 10_000)):
        data = share_events(conn, events, users, week, "copy")
        conn.commit()
        bare = {table: load(conn, table, data, "copy", batch) for table in (PLATFORM_BARE, SAME_BARE)}
        catch_up(conn)
        first = conn.execute("SELECT folded_upto FROM event_fold").fetchone()[0]
        conn.commit()
        wrote = load(conn, "mining_events", data, "copy", batch)
        if name == "one COPY":
            measure_judging(conn, rows, first, events)
        caught, folded = catch_up(conn)
        reference = bare[PLATFORM_BARE]
        rows.append((f"fold: {name} of {events:,} shares ({users:,} miners), {BARE_LABELS[PLATFORM_BARE]}",
                     f"{events / reference:,.0f} shares/s",
                     f"{BARE_LABELS[SAME_BARE]}: {ratio(bare[SAME_BARE], reference)} the time"))
        rows.append((f"fold: {name}, mining_events, write plus catch-up", f"{events / (wrote + caught):,.0f} shares/s",
                     f"{ratio(wrote + caught, reference)} the platform's bare time (write {ratio(wrote, reference)},"
                     f" catch-up {caught:,.1f} s)"))
        if name == "one COPY":
            rows.append(("fold: throughput on one core (fold_pending_events over a backlog)",
                         f"{folded / caught:,.0f} events/s",
                         f"{folded / caught / collector_rate:.2f}x the bare collector pattern's {collector_rate:,.0f}"
                         " shares/s"))


def measure_judging(conn, rows: Progress, after: int, events: int) -> None:
    """queue_events() over the backlog (after, after + events], against a scan of the same rows."""
    scan = ("SELECT count(x) FROM (SELECT e.ts, e.event_type, e.payload AS x FROM mining_events e"
            " WHERE e.seq > %s AND e.seq <= %s OFFSET 0) AS s")
    started = time.perf_counter()
    conn.execute(scan, (after, after + events)).fetchone()
    scanned = time.perf_counter() - started
    started = time.perf_counter()
    queued = conn.execute("SELECT queue_events(%s::bigint, %s::bigint)", (after, after + events)).fetchone()[0]
    judged = time.perf_counter() - started
    conn.rollback()
    rows.append(("fold: judging per share (queue_events, beyond reading the row)",
                 f"{(judged - scanned) / max(queued, 1) * 1e6:,.1f} us",
                 f"{queued:,} events judged in {judged:,.2f} s; reading them alone {scanned:,.2f} s"))


def measure_sustained(conn, url: str, rows: Progress, users: int, seconds: int, week, batch: int,
                      rng: random.Random, bare_rate: float) -> None:
    """The collector's pattern at full speed for `seconds` with the fold running: its lag."""
    week_start = conn.execute("SELECT lottery_week_start_ts(%s)", (week,)).fetchone()[0]
    catch_up(conn)
    fold, sampler = FoldLoop(url), LagSampler(url)
    fold.start()
    sampler.start()
    written, deadline, wrote = 0, time.monotonic() + seconds, 0.0
    try:
        while time.monotonic() < deadline:
            data = collector_rows(rng, users, 20 * batch, week_start, with_hash=False)
            wrote += collector_seconds(conn, "mining_events", data, batch)
            written += len(data)
    finally:
        sampler.stop.set()
        sampler.join()
        fold.finish()
    lag = sampler.seconds or [0.0]
    rows.append((f"fold: lag during {seconds} s of the collector pattern at full speed",
                 f"p99 {percentile(lag, 99):.2f} s",
                 f"p50 {percentile(lag, 50):.2f} s, max {max(lag):.2f} s over {len(lag):,} samples;"
                 f" writer {written / wrote:,.0f} shares/s ({written / wrote / bare_rate:.2f}x the bare rate)"))


def measure_own_figures(conn, rows: Progress, users: int, tail: int, week, samples: int = 2000) -> None:
    """Own figures with an unfolded tail of `tail` shares, then the same calls folded."""
    catch_up(conn)
    data = share_events(conn, tail, users, week, "copy")
    conn.commit()
    load(conn, "mining_events", data, "copy", 10_000)
    tailed = [u for (u,) in conn.execute(
        "SELECT DISTINCT payload->>'user' FROM mining_events WHERE seq > (SELECT folded_upto FROM event_fold)")]
    conn.commit()
    picks = [random.Random(7).choice(tailed) for _ in range(samples)]
    figures = {}
    for state in ("unfolded tail", "folded"):
        if state == "folded":
            catch_up(conn)
            vacuum(conn, "share_weekly_best")
        for label, statement in (("weekly-data", OWN_FIGURES), ("live rank", LIVE_RANK)):
            timings = [call_ms(conn, statement, (user,)) for user in picks]
            conn.commit()
            figures[label, state] = timings
    for label in ("weekly-data", "live rank"):
        tailed_ms, folded_ms = figures[label, "unfolded tail"], figures[label, "folded"]
        rows.append((f"fold: own {label} with {tail:,} unfolded shares, users among them",
                     f"p99 {percentile(tailed_ms, 99):.2f} ms",
                     f"p50 {statistics.median(tailed_ms):.2f} ms; folded: p99 {percentile(folded_ms, 99):.2f} ms,"
                     f" p50 {statistics.median(folded_ms):.2f} ms"))


def measure_fold(conn, url: str, rows: Progress, *, users: int, week, copy_events: int, collector_shares: int,
                 collector_batch: int = 500, sustain_seconds: int = 60, tail_seconds: int = 10) -> None:
    """Every figure of this module, appended to `rows`."""
    rng = random.Random(21)
    ensure_source_column(conn)
    create_bare_tables(conn, week)
    install_sql_generator(conn)
    conn.commit()
    try:
        rate = measure_collector_fold(conn, url, rows, users, collector_shares, week, collector_batch, rng)
        if copy_events:
            measure_copies(conn, rows, copy_events, users, week, rate)
        if sustain_seconds:
            measure_sustained(conn, url, rows, users, sustain_seconds, week, collector_batch, rng, rate)
        if tail_seconds:
            measure_own_figures(conn, rows, users, int(rate * tail_seconds), week)
    finally:
        drop_bare_tables(conn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100_000, help="miners of the open week (default 100000)")
    parser.add_argument("--participant-shares", type=int, default=100, help="their shares each (default 100)")
    parser.add_argument("--copy-events", type=int, default=200_000, help="shares per COPY measurement (0: skip)")
    parser.add_argument("--collector-shares", type=int, default=20_000, help="shares per collector measurement")
    parser.add_argument("--collector-batch", type=int, default=500, help="single-row INSERTs per commit")
    parser.add_argument("--sustain-seconds", type=int, default=60, help="seconds of sustained ingest (0: skip)")
    parser.add_argument("--tail-seconds", type=int, default=10, help="seconds of unfolded tail (0: skip)")
    parser.add_argument("--database-url", default=None, help="an existing database instead of a scratch cluster")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = Progress()

    def run(url: str) -> None:
        with psycopg.connect(url) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
            conn.commit()
            if participants(conn, week) == 0:
                log(f"scale: {args.participants:,} participants x {args.participant_shares} shares, in SQL")
                generate_participants(conn, week, args.participants, args.participant_shares)
            measure_fold(conn, url, rows, users=args.participants, week=week, copy_events=args.copy_events,
                         collector_shares=args.collector_shares, collector_batch=args.collector_batch,
                         sustain_seconds=args.sustain_seconds, tail_seconds=args.tail_seconds)

    if args.database_url:
        run(args.database_url)
    else:
        with scratch_cluster() as (url, _):
            run(url)
    print_table(rows, f"{time.strftime('%Y-%m-%d')}, ingest off the write path, {args.participants:,} miners, "
                      f"{time.perf_counter() - started:,.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
