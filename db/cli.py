"""lottery: the operator's command line for the weekly lottery database.

    lottery [--database-url URL] COMMAND ...        (or: python -m db.cli ...)

The database is named by DATABASE_URL (a postgresql:// URL); --database-url
overrides it. Every time is shown in UTC.

Commands
--------
draw [--week DATE]      draw a closed week (default: the last closed week) and
                        print it with its top 10; drawing a drawn week just
                        shows it again. `draw --due` draws every closed week
                        that has events and no draw yet, oldest first.
status                  the open week, its live participants and shares, the
                        last draw, the next scheduled draw and pg_cron's jobs.
ingest FILE|-           bulk-load a JSON-lines event log into mining_events.
demo                    generate and load a believable week of pool activity.
token --user ID         print a JWT for local use (core.tokens.issue_token).
welcome [--port 8000]   a token and curl lines for the local API (`make run`).

Errors from the database are printed as `error SQLSTATE: message` and
`hint: ...` on stderr, exit status 1. Bad usage exits with status 2.

Input accepted by `ingest`
--------------------------
One JSON object per line (UTF-8; blank lines are skipped). Two forms:

1. The mining_events row:
       {"ts": ..., "event_type": "share_submitted",
        "payload": {"user": "bc1q...", "worker": "bc1q....rig1", "sdiff": 1234.5,
                    "accepted": true, "hash": "000000000000...64 hex"}}
   The payload is stored exactly as given.

2. ckpool's flat form, the event's fields at the top level:
       {"type": "share_submitted", "createdate": "1763254923,123456789",
        "username": "bc1q...", "workername": "bc1q....rig1", "sdiff": 1234.5,
        "result": true, "hash": "0000..."}
   The event type is "type" or "event_type" (a line without either but with an
   "sdiff" or "hash" field is a share_submitted, as in ckpool's share log); the
   time is "ts" or "createdate"; every other field goes into the payload, with
   ckpool's names mapped to the contract's: username -> user,
   workername -> worker, result -> accepted (a field already present under the
   contract's name wins and the ckpool one is kept as it is).

The time ("ts", or "createdate") is one of: an ISO 8601 string
("2026-11-16T01:02:03.123456Z"; no offset means UTC), a JSON number of unix epoch
seconds with any fraction (1763254923.123456), such a number as a string, or
ckpool's "seconds,nanoseconds" string ("1763254923,123456789"). Microsecond
precision is kept.

A line is malformed, reported by line number with the reason and NOT loaded,
when it cannot be parsed or when SQL judges its event unsound:
  parsing (Python)   not UTF-8; not JSON; JSON that jsonb cannot store (NaN,
                     Infinity, \\u0000, a lone surrogate) or Python cannot
                     carry (a number beyond a double's range, 1.8e308); not a
                     JSON object; no parseable time; an event type that is
                     present but not a string
  content (SQL)      whatever share_event_problem() -- the aggregate trigger's
                     own rules -- says is wrong with the event: no event type,
                     a payload that is not an object; for share_submitted a bad
                     user, sdiff or accepted flag; for new_block_network a bad
                     diff; for block_found a bad user. Its reason is reported
                     as it is.
The content rules exist once, in SQL: the CLI does not repeat them. Fields SQL
does not judge are not judged (a share with a malformed hash or worker counts,
without a hash). Other event types are loaded as they are ("other events"). A
malformed line never stops the load; the exit status is 0 when everything else
loaded.

Loading is in batches (--batch-size, default 50,000 lines). Each batch of parsed
lines is COPYed into a TEMP table, ingest_staging (line number, ts, event_type,
payload), and then, in the same transaction, one INSERT ... SELECT moves the
lines share_event_problem() finds sound into mining_events, in line order (one
statement, so the aggregate trigger runs once per batch); one more query reads
back the refused lines with their reasons and counts the accepted shares,
rejected shares and other events loaded. Every count in the summary line but
the parse failures is SQL's. A login in lottery_ingest may run it (INSERT on
mining_events, EXECUTE on share_event_problem, and a TEMP table of its own).
Measured on 1,000,000 share lines (bench/ingest_1m.py, 2 cores): 44-51k lines/s
with 50,000-line batches, where a COPY straight into mining_events (no staging,
the checks in Python) made 60-67k on the same machine. The server is the limit
(staging, judging, the INSERT and the trigger: ~0.95 s a batch, the trigger
~0.4 s of it); Python's parsing (~7.5 µs a line) overlaps it.
Lines are parsed and turned into COPY text in the main thread while a second
thread loads the previous batch, so the parsing overlaps the server's work.
Each batch is committed on its own by default, so that the rows of
share_daily_best / share_weekly_best the trigger updates stay locked for one
batch only and the live collector and the draw never wait behind a long load;
after a failure the lines already committed are reported and --start-line
resumes after them. --single-transaction loads everything or nothing instead,
at a cost: every batch updates the same aggregate rows again inside one
transaction.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import math
import os
import queue
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Sequence

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from core.rules import TRUEDIFFONE
from core.tokens import issue_token
from db import apply as db_apply

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

EPOCH_TEXT_RE = re.compile(r"\d{1,12}(\.\d{1,9})?")
CKPOOL_DATE_RE = re.compile(r"(\d{1,12}),(\d{1,9})")
NUL_ESCAPE_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

COPY_SQL = "COPY mining_events (ts, event_type, payload) FROM STDIN"
DEFAULT_BATCH = 50_000
MALFORMED_SHOWN = 20


class CliError(Exception):
    """A failure to report as `error: message` with exit status 1."""


# --------------------------------------------------------------------------
# Output helpers


def fmt_ts(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_diff(value: float | None) -> str:
    """A difficulty the way pool dashboards show it: 3 significant digits and an SI suffix."""
    if value is None:
        return "-"
    for suffix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.2f}"


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def week_label(week_start: dt.datetime | dt.date) -> str:
    start = week_start.astimezone(UTC).date() if isinstance(week_start, dt.datetime) else week_start
    return f"{start.isoformat()} .. {(start + dt.timedelta(days=6)).isoformat()}"


def print_sql_error(exc: psycopg.Error) -> None:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    print(f"error {exc.sqlstate}: {message}" if exc.sqlstate else f"error: {message}", file=sys.stderr)
    if diag.message_detail:
        print(f"detail: {diag.message_detail}", file=sys.stderr)
    if diag.message_hint:
        print(f"hint: {diag.message_hint}", file=sys.stderr)


class Progress:
    """A one-line carriage-return progress counter on stderr."""

    def __init__(self, label: str, enabled: bool, total: int | None = None, unit: str = "lines",
                 stream: IO[str] | None = None):
        self.label, self.enabled, self.total, self.unit = label, enabled, total, unit
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.last = 0.0
        self.width = 0

    def update(self, count: int, done_bytes: int | None = None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        text = f"{self.label}: {count:,} {self.unit}"
        if self.total:
            done = done_bytes if done_bytes is not None else count
            text += f"  {100.0 * min(done, self.total) / self.total:5.1f}%"
        text += f"  {count / elapsed:,.0f} {self.unit}/s"
        pad = max(self.width - len(text), 0)
        self.width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self, count: int, done_bytes: int | None = None) -> None:
        if self.enabled:
            self.update(count, done_bytes, force=True)
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------
# Connections


def connect(url: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(url, client_encoding="UTF8", **kwargs)
    except psycopg.OperationalError as exc:
        raise CliError(f"cannot connect to the database: {str(exc).strip()}") from exc


def url_for_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


# --------------------------------------------------------------------------
# draw

DRAW_SQL = """
    SELECT d.id, d.week_start, d.week_end, d.total_participants, d.total_shares,
           d.status, d.drawn_at, d.drawn_at = now() AS drawn_now
    FROM run_lottery_draw(parse_week(%s)) AS d
"""

DUE_SQL = """
    SELECT d.id, d.week_start, d.week_end, d.total_participants, d.total_shares,
           d.status, d.drawn_at, d.drawn_at = now() AS drawn_now
    FROM run_due_draws() AS d
"""

TOP10_SQL = """
    SELECT r.rank, r.user_id, user_display_name(r.user_id), r.best_difficulty, r.ticket_count, r.xp_awarded
    FROM lottery_results r
    WHERE r.draw_id = %s
    ORDER BY r.rank
    LIMIT 10
"""


def print_draw(conn: psycopg.Connection, draw: tuple, out: IO[str]) -> None:
    draw_id, week_start, _week_end, participants, shares, status, drawn_at, drawn_now = draw
    how = "drawn now" if drawn_now else "already drawn"
    print(f"week {week_label(week_start)} (UTC)  draw {draw_id}", file=out)
    print(f"  status: {status} ({how})  participants: {fmt_int(participants)}  "
          f"shares: {fmt_int(shares)}  drawn_at: {fmt_ts(drawn_at)}", file=out)
    rows = conn.execute(TOP10_SQL, (draw_id,)).fetchall()
    if not rows:
        print("  no participants: nobody submitted an accepted share that week", file=out)
        return
    table = [(f"{rank}", user_id, name or "", fmt_diff(best), f"{best:,.0f}" if best >= 1 else f"{best:.6g}",
              f"{tickets:,}", f"{xp}") for rank, user_id, name, best, tickets, xp in rows]
    header = ("rank", "user", "name", "best", "best difficulty", "shares", "xp")
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    left = {1, 2}
    for row in [header, *table]:
        print("  " + "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip(), file=out)


def cmd_draw(args, url: str) -> int:
    with connect(url) as conn:
        try:
            if args.due:
                draws = conn.execute(DUE_SQL).fetchall()
            else:
                draws = [conn.execute(DRAW_SQL, (args.week,)).fetchone()]
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            print_sql_error(exc)
            return 1
        if args.due and not draws:
            print("nothing due: every closed week with events has a completed draw")
            return 0
        for i, draw in enumerate(draws):
            if i:
                print()
            print_draw(conn, draw, sys.stdout)
    return 0


# --------------------------------------------------------------------------
# status


def cron_database(conn: psycopg.Connection) -> str | None:
    """The database pg_cron keeps its jobs in; None when pg_cron is not loaded."""
    return conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()[0] or None


def cron_report(conn: psycopg.Connection, url: str) -> list[str]:
    dbname = conn.info.dbname
    cron_db = cron_database(conn)
    if not cron_db:
        return ["pg_cron not loaded: the draw is not scheduled "
                "(add pg_cron to shared_preload_libraries, restart, then `make migrate`; "
                "until then run `lottery draw --due` yourself every Monday)"]
    lines = [f"pg_cron in database {cron_db!r}:"]
    try:
        with connect(url_for_database(url, cron_db), autocommit=True) as cron:
            if cron.execute("SELECT to_regclass('cron.job')").fetchone()[0] is None:
                return lines + [f"  the pg_cron extension is not created in {cron_db!r}: "
                                "the draw is not scheduled (run `make migrate`)"]
            timezone = cron.execute("SELECT current_setting('cron.timezone', true)").fetchone()[0]
            has_details = cron.execute("SELECT to_regclass('cron.job_run_details')").fetchone()[0]
            has_dbcol = cron.execute(
                "SELECT EXISTS (SELECT FROM information_schema.columns "
                "WHERE table_schema = 'cron' AND table_name = 'job' AND column_name = 'database')"
            ).fetchone()[0]
            missing = []
            for base in db_apply.CRON_JOBS:
                name = f"{base}:{dbname}"
                job = cron.execute(
                    "SELECT jobid, schedule, active, command, "
                    + ("database" if has_dbcol else "NULL::text")
                    + " FROM cron.job WHERE jobname = %s ORDER BY jobid LIMIT 1", (name,)).fetchone()
                if job is None:
                    missing.append(name)
                    lines.append(f"  {name}: MISSING")
                    continue
                jobid, schedule, active, command, database = job
                text = f"  {name}: schedule '{schedule}' {'active' if active else 'INACTIVE'}"
                if database and database != dbname:
                    text += f", runs in database {database!r} (not {dbname!r}!)"
                text += f", command: {command}"
                lines.append(text)
                if has_details:
                    run = cron.execute(
                        "SELECT status, start_time, end_time, return_message FROM cron.job_run_details "
                        "WHERE jobid = %s ORDER BY start_time DESC NULLS LAST LIMIT 1", (jobid,)).fetchone()
                    if run is None:
                        lines.append("    last run: never")
                    else:
                        status, start, _end, message = run
                        message = (message or "").strip().replace("\n", " ")
                        lines.append(f"    last run: {status} at {fmt_ts(start)}"
                                     + (f": {message}" if message else ""))
            if missing:
                lines.append(f"  job{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: "
                             "the draw is not scheduled as it should be (run `make migrate`, "
                             "or `lottery draw --due` by hand)")
            if timezone and timezone.upper() not in ("GMT", "UTC", "ETC/UTC", "ZULU"):
                lines.append(f"  warning: cron.timezone is {timezone!r}; the draw schedule is meant in UTC")
    except CliError as exc:
        lines.append(f"  cannot read pg_cron's jobs: {exc}")
    except psycopg.Error as exc:
        lines.append(f"  cannot read pg_cron's jobs: {exc.sqlstate}: {str(exc).strip()}")
    return lines


def cmd_status(args, url: str) -> int:
    with connect(url, autocommit=True) as conn:
        try:
            now, open_week, next_draw = conn.execute(
                "SELECT now(), lottery_week_at(now()), next_draw_at()").fetchone()
            participants, shares = conn.execute(
                "SELECT count(*), coalesce(sum(share_count), 0) FROM share_weekly_best WHERE week_start = %s",
                (open_week,)).fetchone()
            leader = conn.execute(
                "SELECT user_id, best_difficulty FROM share_weekly_best WHERE week_start = %s "
                "ORDER BY rank_bucket DESC, best_difficulty DESC, best_at, user_id LIMIT 1", (open_week,)).fetchone()
            last = conn.execute(
                "SELECT week_start, total_participants, total_shares, drawn_at FROM lottery_draws "
                "WHERE status = 'completed' ORDER BY week_start DESC LIMIT 1").fetchone()
            undrawn = conn.execute(
                "SELECT array_agg(e.week_start ORDER BY e.week_start) FROM event_weeks e "
                "WHERE e.week_start + 7 <= lottery_week_at(now()) AND NOT EXISTS ("
                "  SELECT FROM lottery_draws d WHERE d.week_start = lottery_week_start_ts(e.week_start)"
                "  AND d.status = 'completed')").fetchone()[0] or []
            stuck = conn.execute(
                "SELECT week_start, status FROM lottery_draws WHERE status <> 'completed' "
                "ORDER BY week_start").fetchall()
        except psycopg.Error as exc:
            print_sql_error(exc)
            return 1
        info = conn.info
        print(f"database:    {info.dbname} on {info.host}:{info.port} as {info.user}")
        print(f"now:         {fmt_ts(now)}")
        week_end = dt.datetime.combine(open_week + dt.timedelta(days=7), dt.time(), UTC)
        print(f"open week:   {week_label(open_week)} (closes {fmt_ts(week_end)}, "
              f"in {fmt_duration((week_end - now).total_seconds())})")
        live = f"live:        {participants:,} participants, {shares:,} accepted shares"
        if leader:
            live += f"; leader {leader[0]} at {fmt_diff(leader[1])}"
        print(live)
        if last:
            print(f"last draw:   week {week_label(last[0])}: {last[1]:,} participants, "
                  f"{last[2]:,} shares, drawn {fmt_ts(last[3])}")
        else:
            print("last draw:   none yet")
        if undrawn:
            weeks = ", ".join(w.isoformat() for w in undrawn[:5]) + (" ..." if len(undrawn) > 5 else "")
            print(f"undrawn:     {len(undrawn)} closed week(s) with events and no draw: {weeks} "
                  "(run `lottery draw --due`)")
        for week_start, status in stuck:
            print(f"warning:     the draw of week {week_label(week_start)} is {status!r}")
        print(f"next draw:   {fmt_ts(next_draw)} (in {fmt_duration((next_draw - now).total_seconds())})")
        for line in cron_report(conn, url):
            print(line)
    return 0


# --------------------------------------------------------------------------
# ingest: parsing

# ISO 8601 texts PostgreSQL reads exactly as Python does: passed through as they are.
# (Offsets up to 14:59: PostgreSQL refuses those past 15:59, Python accepts up to 23:59.)
ISO_PLAIN_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(Z|[+-]1[0-4]:\d{2}|[+-]0\d:\d{2})?")


def parse_time(value) -> str:
    """An event time as text for COPY (always with an offset): ISO 8601 text (no offset
    means UTC), unix epoch seconds (a number or its text) or ckpool's 'sec,nsec'."""
    if isinstance(value, str):
        text = value.strip()
        match = ISO_PLAIN_RE.fullmatch(text)
        if match:
            try:
                dt.datetime.fromisoformat(text)  # rejects 2026-02-30, 25:00 and the like
            except ValueError:
                raise ValueError(f"{value[:40]!r} is not a valid time") from None
            return text if match[1] else text + "+00:00"
        match = CKPOOL_DATE_RE.fullmatch(text)
        if match:
            # ckpool prints tv_nsec with %lu: "5" is 5 ns, not half a second.
            moment = EPOCH + dt.timedelta(seconds=int(match[1]), microseconds=int(match[2]) // 1000)
        elif EPOCH_TEXT_RE.fullmatch(text):
            whole, _, frac = text.partition(".")
            moment = EPOCH + dt.timedelta(seconds=int(whole), microseconds=int((frac + "000000")[:6]))
        else:
            try:
                moment = dt.datetime.fromisoformat(text) if 8 <= len(text) <= 40 else None
            except ValueError:
                moment = None
            if moment is None:
                raise ValueError(f"cannot read {value[:40]!r} as a time")
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                moment = moment.astimezone(UTC)  # any offset Python reads, PostgreSQL gets as UTC
            except (OverflowError, ValueError):
                raise ValueError(f"{value[:40]!r} is out of range") from None
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    elif isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a time")
        try:
            moment = dt.datetime.fromtimestamp(value, UTC)
        except (OverflowError, ValueError, OSError):
            raise ValueError(f"epoch seconds {value} out of range") from None
    else:
        raise ValueError(f"a {json_type(value)} is not a time")
    return moment.isoformat()


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


FLAT_ENVELOPE = frozenset(("type", "event_type", "ts", "createdate"))
CKPOOL_NAMES = (("username", "user"), ("workername", "worker"), ("result", "accepted"))
COPY_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value (jsonb cannot store it)")


# Strict JSON: NaN, Infinity and -Infinity, which Python reads and jsonb refuses, are errors.
_decode_json = json.JSONDecoder(parse_constant=_no_constant).decode
_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class Malformed(ValueError):
    pass


def parse_event(raw: bytes | str) -> str:
    """One log line -> its event as COPY text columns "ts<TAB>event_type<TAB>payload\\n".

    Parsing only: the line must be a JSON object (that jsonb can store) in one of the
    envelope forms, with a readable time and an event type that, when present, is a
    string. Whether the event itself is sound (its user, sdiff, accepted flag, ...) is
    share_event_problem()'s to judge, in SQL. A missing event type goes to SQL as NULL.
    Raises Malformed with the reason."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        obj = _decode_json(text.lstrip("\ufeff"))
    except UnicodeDecodeError as exc:
        raise Malformed(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"bad JSON: {exc}") from None
    if obj.__class__ is not dict:
        raise Malformed(f"not a JSON object but a {json_type(obj)}")

    event_type = obj.get("event_type", obj.get("type"))
    if "payload" in obj:
        payload = obj["payload"]  # stored as given; SQL says when it is not an object
    else:
        if event_type is None and ("sdiff" in obj or "hash" in obj):
            event_type = "share_submitted"  # ckpool's share log has no type field
        payload = {k: v for k, v in obj.items() if k not in FLAT_ENVELOPE}
        for ckpool_name, name in CKPOOL_NAMES:
            if ckpool_name in payload and name not in payload:
                payload[name] = payload.pop(ckpool_name)

    if event_type.__class__ is str:
        if not event_type.isidentifier():  # the usual names need no COPY escaping
            if "\x00" in event_type:
                raise Malformed('"event_type" holds \\u0000, which text cannot store')
            event_type = event_type.translate(COPY_TEXT_ESCAPES)
    elif event_type is None:
        event_type = "\\N"  # NULL: share_event_problem() reports it missing
    else:
        raise Malformed(f'"event_type" must be a string, not a {json_type(event_type)}')

    ts_value = obj["ts"] if "ts" in obj else obj.get("createdate")
    if ts_value is None:
        raise Malformed('"ts" is missing')
    try:
        ts = parse_time(ts_value)
    except ValueError as exc:
        raise Malformed(f'bad "ts": {exc}') from None

    try:
        body = _encode_json(payload)
    except ValueError:  # NaN/Infinity tokens are refused above: a number like 1e400 read as inf
        raise Malformed("bad JSON: a number beyond the range of a double (1.8e308)") from None
    if "\\u" in text:  # only an escape can smuggle in NUL or a lone surrogate
        if NUL_ESCAPE_RE.search(body):
            raise Malformed("the payload holds \\u0000, which jsonb cannot store")
        try:
            body.encode("utf-8")
            event_type.encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed("a lone UTF-16 surrogate, which is not text") from None
    if "\\" in body:
        body = body.replace("\\", "\\\\")  # COPY text format: the JSON's own escapes survive
    return f"{ts}\t{event_type}\t{body}\n"


def copy_line(ts: dt.datetime, event_type: str, payload: dict) -> str:
    """A row we made ourselves (demo) as a line of COPY text format."""
    body = _encode_json(payload)
    if "\\" in body:
        body = body.replace("\\", "\\\\")
    return f"{ts.isoformat()}\t{event_type.translate(COPY_TEXT_ESCAPES)}\t{body}\n"


# --------------------------------------------------------------------------
# COPY loading

# Each batch of parsed lines goes into a TEMP table; SQL then judges the events,
# loads the sound ones and reports the others.
STAGING_SQL = """
    CREATE TEMP TABLE ingest_staging (
        line_no bigint, ts timestamptz, event_type text, payload jsonb
    ) ON COMMIT DELETE ROWS
"""
STAGE_COPY_SQL = "COPY ingest_staging (line_no, ts, event_type, payload) FROM STDIN"
# One statement per batch: the aggregate trigger is a statement trigger.
LOAD_SQL = """
    INSERT INTO mining_events (ts, event_type, payload)
    SELECT ts, event_type, payload FROM ingest_staging
    WHERE share_event_problem(event_type, payload) IS NULL
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
           (array_agg(line_no ORDER BY line_no) FILTER (WHERE problem IS NOT NULL))[:%(shown)s],
           (array_agg(problem ORDER BY line_no) FILTER (WHERE problem IS NOT NULL))[:%(shown)s]
    FROM (SELECT line_no, event_type, payload, share_event_problem(event_type, payload) AS problem,
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
    forged: int = 0  # loaded, but their sdiff claims more than their hash proves
    blank: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)  # the first MALFORMED_SHOWN
    malformed_count: int = 0

    def add_malformed(self, lines: Iterable[tuple[int, str]], count: int) -> None:
        self.malformed = sorted([*self.malformed, *lines])[:MALFORMED_SHOWN]
        self.malformed_count += count

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


class StagedLoad:
    """Loads a batch of parsed lines (COPY text: line number, ts, event_type, payload)
    through ingest_staging. share_event_problem(), the aggregate trigger's own rules,
    judges every event in SQL: the sound ones go into mining_events with one INSERT,
    the others come back as malformed with SQL's reason; the counts are SQL's too."""

    def __init__(self, conn: psycopg.Connection):
        # The staging table has no statistics: the planner's guess at its size trips
        # jit_above_cost and compiling costs more than it saves on a batch.
        conn.execute("SET jit = off")
        conn.execute(STAGING_SQL)
        self.stats = LoadStats()  # accepted, rejected, other and malformed only

    def __call__(self, cur: psycopg.Cursor, data: bytes) -> int:
        cur.execute("TRUNCATE ingest_staging")  # a --single-transaction load never commits in between
        with cur.copy(STAGE_COPY_SQL) as copy:
            copy.write(data)
        cur.execute(LOAD_SQL)
        loaded = cur.rowcount
        accepted, rejected, other, bad, forged, lines, reasons = cur.execute(
            JUDGE_SQL, {"shown": MALFORMED_SHOWN}).fetchone()
        self.stats.accepted += accepted
        self.stats.forged += forged
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


def open_input(name: str) -> tuple[IO[bytes], int | None]:
    if name == "-":
        return sys.stdin.buffer, None
    path = Path(name)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}") from exc
    size = path.stat().st_size if path.is_file() else None
    return handle, size


def ingest_stream(pipeline: BatchPipeline, stream: IO[bytes], stats: LoadStats, *, batch_size: int,
                  start_line: int, progress: Progress) -> None:
    """Parse the lines and hand them to the pipeline in batches. Counts the lines, the
    blank ones and those that do not parse (into stats); the pipeline's loader counts
    the rest."""
    malformed = stats.malformed
    batch: list[str] = []
    append = batch.append
    first_line = 0
    done_bytes = 0
    lineno = 0
    for lineno, raw in enumerate(stream, 1):
        done_bytes += len(raw)
        if lineno < start_line:
            continue
        if raw.isspace() or not raw:
            stats.blank += 1
            continue
        stats.lines += 1
        try:
            row = parse_event(raw)
        except Malformed as exc:
            stats.malformed_count += 1
            if len(malformed) < MALFORMED_SHOWN:
                malformed.append((lineno, str(exc)))
            continue
        if not batch:
            first_line = lineno
        append(f"{lineno}\t{row}")
        if len(batch) >= batch_size:
            pipeline.put(batch, first_line, lineno)
            batch = []
            append = batch.append
            progress.update(stats.lines, done_bytes)
    if batch:
        pipeline.put(batch, first_line, lineno)
    pipeline.close()
    progress.close(stats.lines, done_bytes)


def report_malformed(stats: LoadStats) -> None:
    for lineno, reason in stats.malformed:
        print(f"line {lineno}: malformed, not loaded: {reason}", file=sys.stderr)
    more = stats.malformed_count - len(stats.malformed)
    if more > 0:
        print(f"... and {more:,} more malformed line{'s' if more > 1 else ''} not loaded", file=sys.stderr)


def cmd_ingest(args, url: str) -> int:
    stream, size = open_input(args.file)
    stats = LoadStats()
    progress = Progress("ingest", enabled=want_progress(args), total=size)
    started = time.perf_counter()
    try:
        with connect(url) as conn:
            try:
                staged = StagedLoad(conn)
            except psycopg.Error as exc:
                print_sql_error(exc)
                return 1
            pipeline = BatchPipeline(conn, staged, commit_each_batch=not args.single_transaction)
            try:
                ingest_stream(pipeline, stream, stats, batch_size=args.batch_size,
                              start_line=args.start_line, progress=progress)
            except (psycopg.Error, KeyboardInterrupt) as exc:
                pipeline.abort()  # lets the batch in flight finish (and commit) first
                conn.rollback()
                if progress.enabled:
                    sys.stderr.write("\n")
                if isinstance(exc, KeyboardInterrupt):
                    print("interrupted", file=sys.stderr)
                else:
                    print_sql_error(exc)
                    if pipeline.failed_batch:
                        print(f"the batch of lines {pipeline.failed_batch[0]:,}-{pipeline.failed_batch[1]:,} "
                              "failed", file=sys.stderr)
                if args.single_transaction or not pipeline.committed_line:
                    print("nothing was loaded", file=sys.stderr)
                else:
                    print(f"lines up to {pipeline.committed_line:,} are loaded "
                          f"({pipeline.committed_rows:,} events); resume with "
                          f"--start-line {pipeline.committed_line + 1}", file=sys.stderr)
                return 130 if isinstance(exc, KeyboardInterrupt) else 1
            except BaseException:
                pipeline.abort()
                raise
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    stats.accepted, stats.rejected, stats.other = staged.stats.accepted, staged.stats.rejected, staged.stats.other
    stats.forged = staged.stats.forged
    stats.add_malformed(staged.stats.malformed, staged.stats.malformed_count)
    elapsed = time.perf_counter() - started
    report_malformed(stats)
    print(stats.summary())
    if stats.forged:
        print(f"{stats.forged} accepted shares claim more difficulty than their hash proves: "
              "loaded, and left out of the lottery (see share_is_forged)")
    extra = f"{elapsed:.1f} s, {stats.lines / max(elapsed, 1e-9):,.0f} lines/s"
    if stats.blank:
        extra += f", {stats.blank:,} blank lines skipped"
    print(f"({extra})")
    return 0


def want_progress(args) -> bool:
    if args.progress is not None:
        return args.progress
    return sys.stderr.isatty()

# --------------------------------------------------------------------------
# demo: a believable week of a solo pool

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: Iterable[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                checksum ^= generator[i]
    return checksum


def segwit_v0_address(program: bytes, hrp: str = "bc") -> str:
    """A valid bech32 P2WPKH address (BIP 173) for a 20-byte witness program."""
    acc, bits, data = 0, 0, [0]  # witness version 0
    for byte in program:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod(expanded + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


HANDLE_FIRST = ("hash", "block", "sat", "nonce", "solo", "axe", "node", "lucky", "stack", "orange",
                "midnight", "garage", "basement", "cold", "tiny", "diff")
HANDLE_SECOND = ("badger", "hunter", "miner", "pleb", "stacker", "wizard", "goblin", "cat", "fox",
                 "owl", "farmer", "monk", "otter", "raccoon", "viking", "sparrow")
NAME_ADJECTIVES = ("Sleepy", "Lucky", "Orange", "Quiet", "Stubborn", "Humble", "Patient", "Noisy",
                   "Frosty", "Sunny", "Brave", "Tiny", "Midnight", "Rusty", "Golden", "Electric")
NAME_NOUNS = ("Badger", "Hasher", "Pleb", "Owl", "Fox", "Otter", "Miner", "Stacker", "Node", "Axe",
              "Nonce", "Sparrow", "Heron", "Lynx", "Yak", "Marmot")

# name, share of workers, hashrate range in H/s
DEVICES = (
    ("nerdminer", 0.07, 4.5e4, 8.0e4),
    ("bitaxe", 0.42, 4.0e11, 1.6e12),
    ("nerdqaxe", 0.16, 2.0e12, 6.0e12),
    ("s9", 0.12, 1.1e13, 1.4e13),
    ("s19", 0.15, 8.0e13, 1.1e14),
    ("s21", 0.08, 1.8e14, 2.3e14),
)
VARDIFF_SECONDS = 3.33  # ckpool's vardiff aims at one share every ~3.33 s
NETWORK_DIFF_RANGE = (8.6e13, 1.2e14)
HALVING_2024 = dt.datetime(2024, 4, 20, 0, 9, 27, tzinfo=UTC)  # block 840,000
REJECT_REASONS = ("Stale", "Stale", "Stale", "Duplicate", "Invalid JobID")


@dataclass
class DemoWorker:
    name: str
    device: str
    hashrate: float
    pool_diff: int
    reject_rate: float
    window: tuple[float, float]  # fraction of the week it was mining


@dataclass
class DemoUser:
    user_id: str
    display_name: str
    utc_offset_h: int
    activity: float
    workers: list[DemoWorker]


@dataclass
class DemoData:
    users: list[DemoUser]
    events: list[tuple[dt.datetime, str, dict]]  # sorted by time
    block_user: str | None = None


def block_height_at(ts: dt.datetime) -> int:
    return 840_000 + int((ts - HALVING_2024).total_seconds() // 600)


def hash_for_difficulty(rng: random.Random, min_diff: float) -> tuple[str, float]:
    """A share hash at or above min_diff, uniform over the hashes that qualify (so the
    difficulty is Pareto with alpha 1 above min_diff), and the difficulty it proves:
    exactly truediffone / hash, as ckpool computes it."""
    limit = max(1, int(TRUEDIFFONE // min_diff))
    value = rng.randint(1, limit)
    return format(value, "064x"), TRUEDIFFONE / value


def make_demo_users(rng: random.Random, miners: int) -> list[DemoUser]:
    users: list[DemoUser] = []
    seen: set[str] = set()
    device_weights = [d[1] for d in DEVICES]
    for index in range(miners):
        while True:
            if rng.random() < 0.7:
                user_id = segwit_v0_address(bytes(rng.getrandbits(8) for _ in range(20)))
                display = f"{rng.choice(NAME_ADJECTIVES)} {rng.choice(NAME_NOUNS)}"
            else:
                first, second = rng.choice(HANDLE_FIRST), rng.choice(HANDLE_SECOND)
                digits = str(rng.randint(1, 99)) if rng.random() < 0.5 else ""
                user_id = first + second + digits
                display = first.capitalize() + second.capitalize() + digits
            if user_id not in seen:
                seen.add(user_id)
                break
        n_workers = rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        if index == 0:
            n_workers = max(n_workers, 2)  # at least one multi-rig miner in any demo
        workers: list[DemoWorker] = []
        used: dict[str, int] = {}
        for _ in range(n_workers):
            device, _w, low, high = rng.choices(DEVICES, weights=device_weights)[0]
            hashrate = math.exp(rng.uniform(math.log(low), math.log(high)))
            pool_diff = max(1, round(hashrate / 2**32 * VARDIFF_SECONDS))
            used[device] = used.get(device, 0) + 1
            name = f"{user_id}.{device}{used[device]}" if rng.random() < 0.8 else f"{user_id}.rig{len(workers) + 1}"
            if rng.random() < 0.75:
                window = (0.0, 1.0)
            else:
                start = rng.uniform(0.0, 0.6)
                window = (start, start + rng.uniform(0.25, 1.0) * (1.0 - start))
            workers.append(DemoWorker(name, device, hashrate, pool_diff,
                                      reject_rate=rng.uniform(0.005, 0.03), window=window))
        users.append(DemoUser(user_id, display, utc_offset_h=rng.randint(-8, 10),
                              activity=rng.lognormvariate(0.0, 0.6), workers=workers))
    mean_activity = sum(u.activity for u in users) / max(len(users), 1)
    for user in users:
        user.activity /= mean_activity
    return users


def _diurnal_time(rng: random.Random, start: dt.datetime, span_s: float, window: tuple[float, float],
                  utc_offset_h: int) -> dt.datetime:
    """A time within the worker's window, denser at night local time (cheap power, cool air)."""
    lo, hi = window
    while True:
        offset = span_s * rng.uniform(lo, hi)
        ts = start + dt.timedelta(microseconds=int(offset * 1e6))
        local_hour = (ts.hour + ts.minute / 60 + utc_offset_h) % 24
        if rng.random() * 1.4 <= 1 + 0.4 * math.cos(2 * math.pi * (local_hour - 3) / 24):
            return ts


def _network_events(rng: random.Random, start: dt.datetime, end: dt.datetime,
                    base_diff: float) -> tuple[list[tuple[dt.datetime, str, dict]], list[tuple[dt.datetime, float]]]:
    """A few new_block_network events a day; at most one difficulty adjustment in the range."""
    span = (end - start).total_seconds()
    low, high = NETWORK_DIFF_RANGE
    adjusted = min(high, max(low, base_diff * rng.uniform(0.95, 1.07)))
    adjust_at = start + dt.timedelta(seconds=span * rng.uniform(0.2, 0.9))
    events, diffs = [], []
    day = start
    while day < end:
        for _ in range(rng.randint(3, 6)):
            ts = day + dt.timedelta(microseconds=rng.randrange(86_400_000_000))
            if ts >= end:
                continue
            diff = round(adjusted if ts >= adjust_at else base_diff, 2)
            block_hash, _ = hash_for_difficulty(rng, diff)
            events.append((ts, "new_block_network",
                           {"diff": diff, "height": block_height_at(ts), "hash": block_hash}))
            diffs.append((ts, diff))
        day += dt.timedelta(days=1)
    diffs.sort()
    return events, diffs


def _user_shares(rng: random.Random, user: DemoUser, shares_per_miner: float, start: dt.datetime,
                 span_s: float, events: list) -> None:
    total = max(1, round(shares_per_miner * user.activity))
    weights = [rng.uniform(0.5, 1.5) for _ in user.workers]
    scale = sum(weights)
    for worker, weight in zip(user.workers, weights):
        # Below ckpool's minimum difficulty vardiff cannot keep the share rate up.
        rate = min(1.0, worker.hashrate * VARDIFF_SECONDS / (2**32 * worker.pool_diff))
        count = max(1, round(total * weight / scale * max(rate, 0.03)))
        for _ in range(count):
            ts = _diurnal_time(rng, start, span_s, worker.window, user.utc_offset_h)
            share_hash, sdiff = hash_for_difficulty(rng, worker.pool_diff)
            payload = {"user": user.user_id, "worker": worker.name, "sdiff": sdiff,
                       "accepted": True, "hash": share_hash}
            if rng.random() < worker.reject_rate:
                payload["accepted"] = False
                payload["reject_reason"] = rng.choice(REJECT_REASONS)
            events.append((ts, "share_submitted", payload))


def generate_demo(seed: int, miners: int, shares_per_miner: float, week_start: dt.date,
                  now: dt.datetime, also_open_week: bool, open_week: dt.date) -> DemoData:
    """Pure and deterministic for (seed, miners, shares, week_start) when the week is closed."""
    rng = random.Random(seed)
    users = make_demo_users(rng, miners)
    events: list[tuple[dt.datetime, str, dict]] = []

    start = dt.datetime.combine(week_start, dt.time(), UTC)
    end = min(start + dt.timedelta(days=7), now)
    span_s = (end - start).total_seconds()
    base_diff = round(rng.uniform(*NETWORK_DIFF_RANGE), 2)
    network, diffs = _network_events(rng, start, end, base_diff)
    events += network
    for user in users:
        _user_shares(rng, user, shares_per_miner, start, span_s, events)

    # One block for one miner, more likely the bigger ones: a share at or above the
    # network difficulty of that moment, and its block_found event.
    block_user = None
    if users:
        power = [sum(w.hashrate for w in u.workers) ** 0.5 for u in users]
        finder = rng.choices(users, weights=power)[0]
        worker = max(finder.workers, key=lambda w: w.hashrate)
        ts = _diurnal_time(rng, start, span_s, worker.window, finder.utc_offset_h)
        at = bisect.bisect_right(diffs, (ts, math.inf)) - 1
        network_diff = diffs[at][1] if at >= 0 else base_diff
        block_hash, sdiff = hash_for_difficulty(rng, network_diff)
        events.append((ts, "share_submitted", {"user": finder.user_id, "worker": worker.name,
                                               "sdiff": sdiff, "accepted": True, "hash": block_hash}))
        events.append((ts + dt.timedelta(milliseconds=rng.randint(5, 400)), "block_found",
                       {"user": finder.user_id, "worker": worker.name, "height": block_height_at(ts),
                        "hash": block_hash, "diff": sdiff, "network_diff": network_diff}))
        block_user = finder.user_id

    if also_open_week and open_week != week_start:
        open_start = dt.datetime.combine(open_week, dt.time(), UTC)
        open_span = (now - open_start).total_seconds()
        if open_span > 1:
            fraction = open_span / (7 * 86400)
            network, _ = _network_events(rng, open_start, now, base_diff)
            events += network
            for user in users:
                if rng.random() < 0.85:
                    _user_shares(rng, user, shares_per_miner * fraction, open_start, open_span, events)

    events.sort(key=lambda e: (e[0], e[1]))
    return DemoData(users, events, block_user)


def cmd_demo(args, url: str) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    with connect(url) as conn:
        try:
            if args.if_empty and conn.execute("SELECT EXISTS (SELECT FROM mining_events)").fetchone()[0]:
                print("demo skipped: mining_events already holds events (--if-empty)")
                return 0
            now, open_week = conn.execute("SELECT now(), lottery_week_at(now())").fetchone()
            if args.week is None:
                week = open_week - dt.timedelta(days=7)
            else:
                week = conn.execute("SELECT parse_week(%s)", (args.week,)).fetchone()[0]
            conn.rollback()
        except psycopg.Error as exc:
            print_sql_error(exc)
            return 1
        if week > open_week:
            raise CliError(f"the week of {week} has not started yet; pick a week up to {open_week}")
        data = generate_demo(seed, args.miners, args.shares, week, now, args.also_open_week, open_week)

        for _ts, event_type, payload in data.events:  # self-check: every hash proves its sdiff
            if event_type == "share_submitted":
                proven = TRUEDIFFONE / int(payload["hash"], 16)
                if abs(proven - payload["sdiff"]) > 1e-12 * payload["sdiff"]:
                    raise CliError(f"internal error: hash {payload['hash']} does not prove sdiff {payload['sdiff']}")

        try:
            drawn = conn.execute(
                "SELECT status FROM lottery_draws WHERE week_start = lottery_week_start_ts(%s)",
                (week,)).fetchone()
            before = conn.execute("SELECT count(*) FROM share_weekly_best WHERE week_start = %s",
                                  (week,)).fetchone()[0]
            conn.rollback()
            try:
                with conn.transaction():
                    conn.cursor().executemany(
                        "INSERT INTO users (id, display_name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                        [(u.user_id, u.display_name) for u in data.users])
            except psycopg.Error as exc:
                print(f"warning: users rows not written ({exc.sqlstate}: {str(exc).strip()}); "
                      "names fall back to user ids", file=sys.stderr)
            progress = Progress("demo", enabled=want_progress(args), total=len(data.events), unit="events")
            # One transaction: the demo's events land whole or not at all.
            pipeline = BatchPipeline(conn, copy_events, commit_each_batch=False)
            try:
                batch: list[str] = []
                for count, (ts, event_type, payload) in enumerate(data.events, 1):
                    batch.append(copy_line(ts, event_type, payload))
                    if len(batch) >= args.batch_size:
                        pipeline.put(batch, count - len(batch) + 1, count)
                        batch = []
                        progress.update(count)
                if batch:
                    pipeline.put(batch, len(data.events) - len(batch) + 1, len(data.events))
                pipeline.close()
            except BaseException:
                pipeline.abort()
                raise
            progress.close(len(data.events))
        except psycopg.Error as exc:
            conn.rollback()
            print_sql_error(exc)
            return 1

    shares = [p for _t, e, p in data.events if e == "share_submitted"]
    in_week = [p for t, e, p in data.events if e == "share_submitted" and t.date() < week + dt.timedelta(days=7)
               and t.date() >= week]
    rejected = sum(1 for p in shares if not p["accepted"])
    workers = sum(len(u.workers) for u in data.users)
    net = [p["diff"] for _t, e, p in data.events if e == "new_block_network"]
    best = max((p["sdiff"] for p in in_week if p["accepted"]), default=None)
    print(f"demo (seed {seed}): week {week_label(week)}: {len(data.users):,} miners, {workers:,} workers, "
          f"{len(in_week):,} shares in the week")
    blocks = sum(1 for _t, e, _p in data.events if e == "block_found")
    print(f"  events loaded: {len(data.events):,} ({len(shares):,} shares, {rejected:,} rejected, "
          f"{len(net):,} new_block_network, {blocks} block_found)")
    if net:
        print(f"  network difficulty {fmt_diff(min(net))} .. {fmt_diff(max(net))}; best share {fmt_diff(best)}; "
              f"block found by {data.block_user}")
    if args.also_open_week and open_week != week:
        print(f"  open week {week_label(open_week)}: shares up to {fmt_ts(now)} for live ranks")
    if before:
        print(f"  note: the week already had {before:,} participants; the demo added to them")
    if drawn and drawn[0] == "completed":
        print(f"  note: the week of {week} is already drawn; its results do not change")
    elif week < open_week:
        print(f"next: lottery draw --week {week}")
    print(f"reproduce with: lottery demo --seed {seed} --miners {args.miners} --shares {args.shares} --week {week}")
    return 0


# --------------------------------------------------------------------------
# token


def cmd_token(args, _url: str | None) -> int:
    try:
        token = issue_token(args.user, admin=args.admin, ttl_seconds=args.ttl)
    except Exception as exc:  # configuration problems (JWT_SECRET unset, bad key, ...)
        raise CliError(f"cannot issue a token: {exc}") from exc
    print(token)
    return 0


# --------------------------------------------------------------------------
# welcome


WELCOME_USER_SQL = """
    -- Whose token to print: the best of the last draw who is also mining the open
    -- week (every endpoint then shows data), else the last winner, else the leader.
    WITH last_draw AS (
        SELECT id, week_start FROM lottery_draws WHERE status = 'completed'
        ORDER BY week_start DESC LIMIT 1)
    (SELECT r.user_id, 'rank ' || r.rank || ' in the draw of the week of '
                       || (d.week_start AT TIME ZONE 'UTC')::date || ', mining this week too'
     FROM last_draw d JOIN lottery_results r ON r.draw_id = d.id
     JOIN share_weekly_best o ON o.user_id = r.user_id AND o.week_start = lottery_week_at(now())
     ORDER BY r.rank LIMIT 1)
    UNION ALL
    (SELECT r.user_id, 'rank ' || r.rank || ' in the draw of the week of ' || (d.week_start AT TIME ZONE 'UTC')::date
     FROM last_draw d JOIN lottery_results r ON r.draw_id = d.id
     ORDER BY r.rank LIMIT 1)
    UNION ALL
    (SELECT user_id, 'leading the open week' FROM share_weekly_best WHERE week_start = lottery_week_at(now())
     ORDER BY rank_bucket DESC, best_difficulty DESC, best_at, user_id LIMIT 1)
    LIMIT 1
"""


def cmd_welcome(args, url: str) -> int:
    base = f"http://{args.host}:{args.port}"
    user, why, name, week = args.user, "", None, None
    try:
        with connect(url, autocommit=True) as conn:
            if user is None:
                row = conn.execute(WELCOME_USER_SQL).fetchone()
                user, why = row if row else (None, "")
            if user is not None:
                name = conn.execute("SELECT user_display_name(%s)", (user,)).fetchone()[0]
            row = conn.execute("SELECT (max(week_start) AT TIME ZONE 'UTC')::date FROM lottery_draws "
                               "WHERE status = 'completed'").fetchone()
            week = row[0] if row else None
    except (CliError, psycopg.Error) as exc:
        print(f"note: could not read the database ({exc})", file=sys.stderr)
    user = user or "alice"
    token = None
    try:
        token = issue_token(user, ttl_seconds=args.ttl)
    except Exception as exc:  # no JWT_SECRET: the rest is still useful
        print(f"note: no token ({exc}); set JWT_SECRET and run `lottery token --user {user}`", file=sys.stderr)

    auth = '-H "Authorization: Bearer $TOKEN" '
    print(f"API:    {base}  (health {base}/healthz, OpenAPI {base}/openapi.json)")
    print(f"user:   {user}" + (f" ({name})" if name else "") + (f", {why}" if why else ""))
    if token:
        print(f"token:  {token}")
        print(f"        valid {args.ttl // 3600} h; an admin one: lottery token --user {user} --admin")
    print("try:")
    print(f"  TOKEN={token or '...'}")
    print(f"  curl -s {auth}{base}/api/lottery/current")
    if week:
        print(f"  curl -s {auth}{base}/api/lottery/week/{week}")
    print(f"  curl -s {auth}{base}/api/lottery/stats")
    print(f"  curl -s {auth}{base}/api/games/weekly-data")
    print(f"  curl -s {auth}{base}/api/games/weekly-data/horse_race")
    print(f"  curl -s {auth}-H 'Content-Type: application/json' "
          f"-d '{{\"gameType\": \"slots\", \"resultData\": {{\"won\": true}}}}' {base}/api/games/play")
    print(f"  curl -s {auth}'{base}/api/games/history?limit=10'")
    print(f"  WebSocket: ws://{args.host}:{args.port}/ws?token=$TOKEN")
    return 0


# --------------------------------------------------------------------------
# argument parsing


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    url_help = "postgresql:// URL of the database (default: $DATABASE_URL)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS, help=url_help)
    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress counter on stderr (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress counter")

    parser = argparse.ArgumentParser(
        prog="lottery",
        description="Operate the weekly lottery database: draws, status, event loading, demo data, tokens.",
        epilog="examples:\n"
               "  lottery status\n"
               "  lottery draw --week 2026-11-09\n"
               "  lottery draw --due\n"
               "  lottery ingest /var/log/ckpool/events.jsonl\n"
               "  lottery demo --miners 200 --shares 100 --also-open-week --seed 42\n"
               "  lottery token --user bc1qexample --ttl 3600\n"
               "  lottery welcome --port 8000\n"
               "The database is DATABASE_URL (postgresql://user@host:port/dbname) unless --database-url is given.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", metavar="URL", default=None, help=url_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    draw = sub.add_parser(
        "draw", parents=[common], help="draw a closed week and print its top 10",
        description="Draw the week containing --week (default: the last closed week) with "
                    "run_lottery_draw and print the draw and its top 10. A week already drawn is "
                    "shown as it is (the draw is idempotent). A week that has not closed is an "
                    "error (LTW01).")
    when = draw.add_mutually_exclusive_group()
    when.add_argument("--week", metavar="YYYY-MM-DD",
                      help="any day of the week to draw (or an ISO 8601 timestamp); default: the last closed week")
    when.add_argument("--due", action="store_true",
                      help="draw every closed week with events and no draw yet, oldest first (run_due_draws)")
    draw.set_defaults(func=cmd_draw)

    status = sub.add_parser(
        "status", parents=[common], help="open week, live participants, last and next draw, pg_cron jobs",
        description="Show the open week with its live participants and shares, the last completed "
                    "draw, closed weeks not drawn yet, the next scheduled draw and the health of "
                    "the pg_cron jobs that run it.")
    status.set_defaults(func=cmd_status)

    ingest = sub.add_parser(
        "ingest", parents=[common, progress], help="bulk-load a JSON-lines event log into mining_events",
        description="Load events, one JSON object per line, by COPY into mining_events. Accepts the "
                    "mining_events form {\"ts\", \"event_type\", \"payload\"} and ckpool's flat form "
                    "(fields at the top level; type/event_type, createdate/ts, username/user, "
                    "workername/worker, result/accepted). Malformed lines are reported by line number "
                    "and not loaded; they never stop the load. See `pydoc db.cli` for the exact rules.")
    ingest.add_argument("file", metavar="FILE", help="the JSON-lines file, or - for standard input")
    ingest.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH, metavar="N",
                        help=f"lines per batch: one COPY and one INSERT (default {DEFAULT_BATCH:,})")
    ingest.add_argument("--single-transaction", action="store_true",
                        help="commit once at the end: all or nothing (default: commit every batch)")
    ingest.add_argument("--start-line", type=positive_int, default=1, metavar="N",
                        help="skip the lines before line N (to resume an interrupted load)")
    ingest.set_defaults(func=cmd_ingest)

    demo = sub.add_parser(
        "demo", parents=[common, progress], help="generate and load a believable week of pool activity",
        description="Generate a week of solo-pool activity and load it: miners with 1-4 workers of "
                    "real device classes, heavy-tailed share difficulties (Pareto above each worker's "
                    "vardiff) with hashes that prove them, night-heavy diurnal timing, ~1-2%% rejected "
                    "shares, network difficulty updates and exactly one found block. Also writes users "
                    "rows with display names. Deterministic for a given --seed.")
    demo.add_argument("--miners", type=positive_int, default=200, metavar="N", help="number of miners (default 200)")
    demo.add_argument("--shares", type=positive_int, default=100, metavar="M",
                      help="average shares per miner in the week (default 100)")
    demo.add_argument("--week", metavar="YYYY-MM-DD", help="any day of the week to fill (default: the last closed week)")
    demo.add_argument("--also-open-week", action="store_true",
                      help="also write shares into the open week up to now, so that live ranks show")
    demo.add_argument("--seed", type=int, help="random seed (default: a random one, printed)")
    demo.add_argument("--if-empty", action="store_true",
                      help="do nothing when mining_events already holds events (for `make run`)")
    demo.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH, metavar="N", help=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser(
        "token", parents=[common], help="print a JWT for local use",
        description="Print a JWT signed with JWT_SECRET / JWT_ALGORITHM (core.tokens.issue_token), "
                    "for curl and the frontend in development. Needs no database.")
    token.add_argument("--user", required=True, metavar="ID", help="the user id (the token's sub)")
    token.add_argument("--admin", action="store_true", help="an admin token")
    token.add_argument("--ttl", type=positive_int, default=86400, metavar="SECONDS",
                       help="lifetime in seconds (default 86400)")
    token.set_defaults(func=cmd_token, needs_db=False)

    welcome = sub.add_parser(
        "welcome", parents=[common], help="print a token and curl lines for the local API",
        description="For `make run`: the API's address, a user worth looking at (the last draw's "
                    "winner, else the open week's leader), a token for them and a curl line per endpoint.")
    welcome.add_argument("--port", type=positive_int, default=8000, help="the API's port (default 8000)")
    welcome.add_argument("--host", default="127.0.0.1", help="the API's host (default 127.0.0.1)")
    welcome.add_argument("--user", metavar="ID", help="the user to show (default: the last draw's winner)")
    welcome.add_argument("--ttl", type=positive_int, default=86400, metavar="SECONDS",
                         help="the token's lifetime (default 86400)")
    welcome.set_defaults(func=cmd_welcome)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    url = args.database_url or os.environ.get("DATABASE_URL")
    if getattr(args, "needs_db", True) and not url:
        print("error: no database: set DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/lottery) "
              "or pass --database-url", file=sys.stderr)
        return 2
    try:
        return args.func(args, url)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
