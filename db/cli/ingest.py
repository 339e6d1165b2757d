"""`lottery ingest`: bulk-load a JSON-lines event log into mining_events."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO

import click
import psycopg
from tqdm import tqdm

from db.cli.common import CliError, connect, database_url, database_url_option
from db.cli.ingest_load import DEFAULT_BATCH, MALFORMED_SHOWN, BatchPipeline, LoadStats, StagedLoad
from db.cli.ingest_parse import Malformed, parse_event
from db.cli.output import print_sql_error, progress_bar, want_progress

INGEST_HELP = f"""Bulk-load a JSON-lines event log into mining_events.

FILE is the log, or - for standard input: one JSON object per line (UTF-8;
blank lines are skipped), in any of three forms.

\b
1. The mining_events row; the payload is stored exactly as given:
     {{"ts": ..., "event_type": "share_submitted", "source": "hosted",
      "payload": {{"user": "bc1q...", "worker": "bc1q....rig1", "sdiff": 1234.5,
                  "accepted": true, "hash": "000000000000...64 hex"}}}}
2. The platform collector's datagram: event -> event_type, data -> payload:
     {{"event": "share_submitted", "ts": 1763254923.123456, "source": "hosted",
      "data": {{"user": "bc1q...", "worker": "bc1q....rig1", "sdiff": 1234.5,
               "accepted": true}}}}
3. ckpool's flat form, the event's fields at the top level:
     {{"type": "share_submitted", "createdate": "1763254923,123456789",
      "username": "bc1q...", "workername": "bc1q....rig1", "sdiff": 1234.5,
      "result": true, "hash": "0000..."}}

A line with a "payload" key is of form 1, else one with a "data" key of form 2,
else it is of form 3. In form 3 the event type is "type" or "event_type" (a line
without either but with an "sdiff" or "hash" field is a share_submitted, as in
ckpool's share log), the time is "ts" or "createdate", and every other field
goes into the payload, with ckpool's names mapped to the contract's: username ->
user, workername -> worker, result -> accepted (a field already present under
the contract's name wins and the ckpool one is kept as it is).

"source" (forms 1 and 2) goes into mining_events.source when the table has that
column, as the platform's does; a line without one gets the column's default.
Without the column it is dropped. Other envelope keys (such as "region") are
dropped.

The time ("ts", or "createdate") is one of: an ISO 8601 string
("2026-11-16T01:02:03.123456Z"; no offset means UTC), a JSON number of unix
epoch seconds with any fraction (1763254923.123456), such a number as a string,
or ckpool's "seconds,nanoseconds" string ("1763254923,123456789"). Microsecond
precision is kept.

A line is malformed, reported by line number with the reason and NOT loaded,
when it cannot be parsed or when SQL judges its event unsound:

\b
  parsing (Python)  not UTF-8; not JSON; JSON that jsonb cannot store (NaN,
                    Infinity, \\u0000, a lone surrogate) or Python cannot
                    carry (a number beyond a double's range, 1.8e308); not a
                    JSON object; no parseable time; an event type or source
                    that is present but not a string
  content (SQL)     whatever share_event_problem() -- the aggregate trigger's
                    own rules -- says is wrong with the event: no event type,
                    a payload that is not an object; a time before 2009-01-03
                    or more than a day ahead of the server clock; for
                    share_submitted a bad user or accepted flag, or an
                    accepted share with a bad sdiff; for new_block_network a bad
                    diff; for block_found a bad user; a source longer than
                    mining_events.source holds. Its reason is reported as it is.

The content rules exist once, in SQL: the command does not repeat them. A
well-formed share is loaded; one whose sdiff claims more than its hash proves
is forged and counts nowhere (share_is_forged), one with a missing or malformed
hash counts unverified (never as a best when lottery_settings.require_share_hash
is on); the run reports how many of each. Other event types are loaded as they
are ("other events"). A malformed line never stops the load; the exit status is
0 when everything else loaded. The last line of output is

\b
  ingested N lines: A accepted shares, R rejected shares, E other events, M malformed

Lines are loaded in batches (--batch-size, default {DEFAULT_BATCH:,}): each is
COPYed into a TEMP table and moved into mining_events by one INSERT ... SELECT
while the next batch is parsed; the trigger judges each row and the batch's
shares are folded into the aggregates once, at its commit. Each batch is
committed on its own, so the aggregate rows it updates stay locked for one
commit only and the live collector and the draw never wait behind a long load;
after a failure the lines already committed are reported and --start-line
resumes after them. --single-transaction loads everything or nothing instead:
one fold at the end, with the load's aggregate rows locked until it commits. A
login in lottery_ingest may run it.
"""


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
                  start_line: int, progress: tqdm) -> None:
    """Parse the lines and hand them to the pipeline in batches. Counts the lines, the
    blank ones and those that do not parse (into stats); the pipeline's loader counts
    the rest. The progress bar counts bytes read and shows the lines."""
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
            progress.set_postfix_str(f"{stats.lines:,} lines", refresh=False)
            progress.update(done_bytes - progress.n)
    if batch:
        pipeline.put(batch, first_line, lineno)
    pipeline.close()
    progress.set_postfix_str(f"{stats.lines:,} lines", refresh=False)
    progress.update(done_bytes - progress.n)


def report_malformed(stats: LoadStats) -> None:
    for lineno, reason in stats.malformed:
        click.echo(f"line {lineno}: malformed, not loaded: {reason}", err=True)
    more = stats.malformed_count - len(stats.malformed)
    if more > 0:
        click.echo(f"... and {more:,} more malformed line{'s' if more > 1 else ''} not loaded", err=True)


def report_failure(exc: BaseException, pipeline: BatchPipeline, single_transaction: bool) -> int:
    """What an interrupted or failed load left behind, and how to resume it."""
    if isinstance(exc, KeyboardInterrupt):
        click.echo("interrupted", err=True)
    else:
        print_sql_error(exc)
        if pipeline.failed_batch:
            click.echo(f"the batch of lines {pipeline.failed_batch[0]:,}-{pipeline.failed_batch[1]:,} failed",
                       err=True)
    if single_transaction or not pipeline.committed_line:
        click.echo("nothing was loaded", err=True)
    else:
        click.echo(f"lines up to {pipeline.committed_line:,} are loaded ({pipeline.committed_rows:,} events); "
                   f"resume with --start-line {pipeline.committed_line + 1}", err=True)
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


@click.command("ingest", help=INGEST_HELP, short_help="Bulk-load a JSON-lines event log into mining_events.")
@click.argument("file", metavar="FILE")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH, metavar="N", show_default=True,
              help="Lines per batch: one COPY and one INSERT.")
@click.option("--single-transaction", is_flag=True,
              help="Commit once at the end: all or nothing (default: commit every batch).")
@click.option("--start-line", type=click.IntRange(min=1), default=1, metavar="N",
              help="Skip the lines before line N (to resume an interrupted load).")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar on stderr (default: when stderr is a terminal).")
@database_url_option()
def ingest_command(file: str, batch_size: int, single_transaction: bool, start_line: int,
                   progress: bool | None) -> int:
    url = database_url()
    stream, size = open_input(file)
    stats = LoadStats()
    started = time.perf_counter()
    try:
        with connect(url) as conn:
            try:
                staged = StagedLoad(conn)
            except psycopg.Error as exc:
                print_sql_error(exc)
                return 1
            pipeline = BatchPipeline(conn, staged, commit_each_batch=not single_transaction)
            with progress_bar("ingest", want_progress(progress), total=size, unit="B", scale=True) as bar:
                try:
                    ingest_stream(pipeline, stream, stats, batch_size=batch_size, start_line=start_line,
                                  progress=bar)
                except (psycopg.Error, KeyboardInterrupt) as exc:
                    pipeline.abort()  # lets the batch in flight finish (and commit) first
                    conn.rollback()
                    bar.close()
                    return report_failure(exc, pipeline, single_transaction)
                except BaseException:
                    pipeline.abort()
                    raise
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    stats.add(staged.stats)
    # Committed: fold it now, not a second or two later, so the figures are there when this returns.
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT fold_pending_events()")
    elapsed = time.perf_counter() - started
    report_malformed(stats)
    click.echo(stats.summary())
    if stats.forged:
        click.echo(f"{stats.forged} accepted shares claim more difficulty than their hash proves: "
                   "loaded, and counted nowhere (see share_is_forged)")
    if stats.unverified:
        click.echo(f"{stats.unverified} accepted shares carry no usable hash: counted, their claim unchecked "
                   "(see lottery_settings.require_share_hash)")
    extra = f"{elapsed:.1f} s, {stats.lines / max(elapsed, 1e-9):,.0f} lines/s"
    if stats.blank:
        extra += f", {stats.blank:,} blank lines skipped"
    click.echo(f"({extra})")
    return 0
