"""Loading for `lottery ingest` and `lottery demo`: batches of COPY text go to the
server from a thread of their own while the caller parses the next batch.

An ingest batch is COPYed into a TEMP table, ingest_staging; in the same
transaction one INSERT ... SELECT moves the lines share_event_problem() (the
aggregate trigger's own rules) finds sound into mining_events, in line order, and
one more query reads back the refused lines with SQL's reasons and counts the
accepted shares, rejected shares and other events loaded. A login in
lottery_ingest may run it (INSERT on mining_events, EXECUTE on
share_event_problem, and a TEMP table of its own)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

import psycopg
from psycopg import sql

DEFAULT_BATCH = 50_000
MALFORMED_SHOWN = 20

COPY_SQL = "COPY mining_events (ts, event_type, payload) FROM STDIN"
STAGING_SQL = """
    CREATE TEMP TABLE ingest_staging (
        line_no bigint, ts timestamptz, event_type text, payload jsonb, source text
    ) ON COMMIT DELETE ROWS
"""
STAGE_COPY_SQL = "COPY ingest_staging (line_no, ts, event_type, payload, source) FROM STDIN"

# mining_events.source, when the table has one as the platform's does: a string
# column, its length limit (varchar(n)) and its default expression.
SOURCE_COLUMN_SQL = """
    SELECT CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
                THEN a.atttypmod - 4 END,
           pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = 'mining_events'::regclass AND a.attname = 'source' AND NOT a.attisdropped
      AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
"""
# One statement per batch; the background fold (or the command, at its end) folds it after commit.
LOAD_SQL = """
    INSERT INTO mining_events (ts, event_type, payload{target})
    SELECT ts, event_type, payload{value} FROM ingest_staging
    WHERE {problem} IS NULL
    ORDER BY line_no
"""
JUDGE_SQL = """
    SELECT count(*) FILTER (WHERE problem IS NULL AND event_type = 'share_submitted'
                              AND payload->'accepted' = 'true' AND NOT forged),
           count(*) FILTER (WHERE problem IS NULL AND event_type = 'share_submitted'
                              AND payload->'accepted' = 'false'),
           count(*) FILTER (WHERE problem IS NULL AND event_type <> 'share_submitted'),
           count(problem),
           count(*) FILTER (WHERE problem IS NULL AND event_type = 'share_submitted'
                              AND payload->'accepted' = 'true' AND forged),
           count(*) FILTER (WHERE problem IS NULL AND event_type = 'share_submitted'
                              AND payload->'accepted' = 'true' AND clean_hash(payload->>'hash') IS NULL),
           (array_agg(line_no ORDER BY line_no) FILTER (WHERE problem IS NOT NULL))[:{shown}],
           (array_agg(problem ORDER BY line_no) FILTER (WHERE problem IS NOT NULL))[:{shown}]
    FROM (SELECT line_no, event_type, payload, {problem} AS problem,
                 share_is_forged(share_claimed_difficulty(payload), payload->>'hash') AS forged
          FROM ingest_staging
          OFFSET 0) AS judged  -- a fence: one share_event_problem() per line, not one per use
"""


@dataclass
class LoadStats:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    other: int = 0
    forged: int = 0  # loaded, but their sdiff claims more than their hash proves: counted nowhere
    unverified: int = 0  # accepted shares without a usable hash: counted, unchecked
    blank: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)  # the first MALFORMED_SHOWN
    malformed_count: int = 0

    def add_malformed(self, lines: Iterable[tuple[int, str]], count: int) -> None:
        self.malformed = sorted([*self.malformed, *lines])[:MALFORMED_SHOWN]
        self.malformed_count += count

    def add(self, other: "LoadStats") -> None:
        """Adds SQL's counts (other) to the parser's (self)."""
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.other += other.other
        self.forged += other.forged
        self.unverified += other.unverified
        self.add_malformed(other.malformed, other.malformed_count)

    def summary(self) -> str:
        # Plain integers: scripts parse this line.
        return (f"ingested {self.lines} lines: {self.accepted} accepted shares, "
                f"{self.rejected} rejected shares, {self.other} other events, "
                f"{self.malformed_count} malformed")


def copy_events(cur: psycopg.Cursor, data: bytes) -> int:
    """Load a batch of rows straight into mining_events (the demo's own, sound rows)."""
    with cur.copy(COPY_SQL) as copy:
        copy.write(data)
    return cur.rowcount


def staged_statements(conn: psycopg.Connection) -> tuple[sql.Composed, sql.Composed]:
    """LOAD_SQL and JUDGE_SQL for this database's mining_events: with a source column
    the staged source goes into it (its default when the line has none) and a source
    longer than the column allows makes the line malformed; without one it is dropped."""
    column = conn.execute(SOURCE_COLUMN_SQL).fetchone()
    problem = sql.SQL("share_event_problem(event_type, payload, ts)")
    target = value = sql.SQL("")
    if column is not None:
        max_length, default = column
        target = sql.SQL(", source")
        value = sql.SQL(", coalesce(source, {})").format(sql.SQL(default)) if default else sql.SQL(", source")
        if max_length is not None:
            problem = sql.SQL("coalesce({}, CASE WHEN length(source) > {} THEN {} END)").format(
                problem, sql.Literal(max_length),
                sql.Literal(f"source is longer than the {max_length} characters mining_events.source holds"))
    load = sql.SQL(LOAD_SQL).format(target=target, value=value, problem=problem)
    judge = sql.SQL(JUDGE_SQL).format(problem=problem, shown=sql.Literal(MALFORMED_SHOWN))
    return load, judge


class StagedLoad:
    """Loads a batch of parsed lines (COPY text: line number, ts, event_type, payload,
    source) through ingest_staging. share_event_problem() judges every event in SQL:
    the sound ones go into mining_events with one INSERT, the others come back as
    malformed with SQL's reason; the counts are SQL's too."""

    def __init__(self, conn: psycopg.Connection):
        # The staging table has no statistics: the planner's guess at its size trips
        # jit_above_cost and compiling costs more than it saves on a batch.
        conn.execute("SET jit = off")
        conn.execute(STAGING_SQL)
        self.load_sql, self.judge_sql = staged_statements(conn)
        self.stats = LoadStats()  # accepted, rejected, other and malformed only

    def __call__(self, cur: psycopg.Cursor, data: bytes) -> int:
        cur.execute("TRUNCATE ingest_staging")  # a --single-transaction load never commits in between
        with cur.copy(STAGE_COPY_SQL) as copy:
            copy.write(data)
        cur.execute(self.load_sql)
        loaded = cur.rowcount
        accepted, rejected, other, bad, forged, unverified, lines, reasons = cur.execute(self.judge_sql).fetchone()
        self.stats.accepted += accepted
        self.stats.forged += forged
        self.stats.unverified += unverified
        self.stats.rejected += rejected
        self.stats.other += other
        if bad:
            self.stats.add_malformed(zip(lines, reasons), bad)
        return loaded


class BatchPipeline:
    """Loads batches of COPY text with load(cursor, data), one call per batch, from a
    thread of its own.

    The caller parses the next batch while the server loads the previous one and
    runs the aggregate trigger on it: the two overlap instead of taking turns. At
    most two batches wait in the queue, so memory stays bounded by the batch size.
    """

    def __init__(self, conn: psycopg.Connection, load: Callable[[psycopg.Cursor, bytes], int],
                 commit_each_batch: bool):
        self.conn = conn
        self.load = load
        self.commit_each_batch = commit_each_batch
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.failed_batch: tuple[int, int] | None = None
        self.committed_line = 0   # every line up to this one is committed
        self.committed_rows = 0   # events loaded by the committed batches
        self.batches = 0
        self._abort = False
        self.thread = threading.Thread(target=self._run, name="copy-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    break
                if self._abort:
                    continue
                data, first_line, last_line = item
                self.failed_batch = (first_line, last_line)
                with self.conn.cursor() as cur:
                    rows = self.load(cur, data)
                if self.commit_each_batch:
                    self.conn.commit()
                    self.committed_line, self.committed_rows = last_line, self.committed_rows + rows
                self.batches += 1
                self.failed_batch = None
            if not self._abort:
                self.conn.commit()
        except BaseException as exc:  # handed to the caller
            self.error = exc
            while self.queue.get() is not None:  # unblock the producer until it stops
                pass

    def put(self, lines: list[str], first_line: int, last_line: int) -> None:
        if self.error is None:
            self.queue.put(("".join(lines).encode("utf-8"), first_line, last_line))
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Wait for every batch and the last commit; raise the writer's error, if any."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._abort = True
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
