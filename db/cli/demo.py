"""`lottery demo`: generate a believable week of pool activity (db/cli/demo_data.py)
and load it in one transaction."""

from __future__ import annotations

import random

import click
import psycopg

from core.rules import difficulty_of_hash
from db.cli.common import CliError, connect, database_url, database_url_option
from db.cli.demo_data import DemoData, Week, generate_demo
from db.cli.ingest_load import DEFAULT_BATCH, BatchPipeline, copy_events
from db.cli.ingest_parse import copy_line
from db.cli.output import fmt_diff, fmt_ts, print_sql_error, progress_bar, want_progress, week_label

# The week to fill (--week, else the week before the open one) and the open week,
# as SQL draws their boundaries.
WEEKS_SQL = """
    SELECT now(), lottery_week_at(b.week_start), b.week_start, b.week_end,
           (week_end_shown(lottery_week_at(b.week_start)) AT TIME ZONE 'UTC')::date
    FROM unnest(ARRAY[coalesce(lottery_week_start_ts(parse_week(%s)), now() - interval '7 days'), now()])
         WITH ORDINALITY AS t(at, n),
         get_week_boundaries(t.at) AS b
    ORDER BY t.n
"""

BEST_SQL = "SELECT best_difficulty FROM ranked_week(%s) WHERE rank = 1"


def load_demo(conn: psycopg.Connection, data: DemoData, batch_size: int, progress: bool) -> None:
    """The users rows (best effort), then every event in one transaction."""
    try:
        with conn.transaction():
            conn.cursor().executemany(
                "INSERT INTO users (id, display_name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                [(u.user_id, u.display_name) for u in data.users])
    except psycopg.Error as exc:
        click.echo(f"warning: users rows not written ({exc.sqlstate}: {str(exc).strip()}); "
                   "names fall back to user ids", err=True)
    # One transaction: the demo's events land whole or not at all.
    pipeline = BatchPipeline(conn, copy_events, commit_each_batch=False)
    with progress_bar("demo", progress, total=len(data.events), unit=" events") as bar:
        try:
            batch: list[str] = []
            for count, (ts, event_type, payload) in enumerate(data.events, 1):
                batch.append(copy_line(ts, event_type, payload))
                if len(batch) >= batch_size:
                    pipeline.put(batch, count - len(batch) + 1, count)
                    bar.update(len(batch))
                    batch = []
            if batch:
                pipeline.put(batch, len(data.events) - len(batch) + 1, len(data.events))
                bar.update(len(batch))
            pipeline.close()
        except BaseException:
            pipeline.abort()
            raise


def check_hashes(data: DemoData) -> None:
    """Every share hash proves its sdiff (ckpool's formula)."""
    for _ts, event_type, payload in data.events:
        if event_type == "share_submitted":
            if abs(difficulty_of_hash(payload["hash"]) - payload["sdiff"]) > 1e-12 * payload["sdiff"]:
                raise CliError(f"internal error: hash {payload['hash']} does not prove sdiff {payload['sdiff']}")


def print_summary(data: DemoData, seed: int, week: Week, current: Week, now, also_open_week: bool,
                  best: float | None) -> None:
    share_events = [(t, p) for t, e, p in data.events if e == "share_submitted"]
    in_week = [p for t, p in share_events if week.start <= t < week.end]
    rejected = sum(1 for _t, p in share_events if not p["accepted"])
    workers = sum(len(u.workers) for u in data.users)
    net = [p["diff"] for _t, e, p in data.events if e == "new_block_network"]
    blocks = sum(1 for _t, e, _p in data.events if e == "block_found")
    click.echo(f"demo (seed {seed}): week {week_label(week.monday, week.last_day)}: {len(data.users):,} miners, "
               f"{workers:,} workers, {len(in_week):,} shares in the week")
    click.echo(f"  events loaded: {len(data.events):,} ({len(share_events):,} shares, {rejected:,} rejected, "
               f"{len(net):,} new_block_network, {blocks} block_found)")
    if net:
        click.echo(f"  network difficulty {fmt_diff(min(net))} .. {fmt_diff(max(net))}; "
                   f"best share {fmt_diff(best)}; block found by {data.block_user}")
    if also_open_week and current.monday != week.monday:
        click.echo(f"  open week {week_label(current.monday, current.last_day)}: "
                   f"shares up to {fmt_ts(now)} for live ranks")


@click.command("demo")
@click.option("--miners", type=click.IntRange(min=1), default=200, metavar="N", show_default=True,
              help="Number of miners.")
@click.option("--shares", type=click.IntRange(min=1), default=100, metavar="M", show_default=True,
              help="Average shares per miner in the week.")
@click.option("--week", metavar="YYYY-MM-DD", help="Any day of the week to fill (default: the last closed week).")
@click.option("--also-open-week", is_flag=True,
              help="Also write shares into the open week up to now, so that live ranks show.")
@click.option("--seed", type=int, help="Random seed (default: a random one, printed).")
@click.option("--if-empty", is_flag=True, help="Do nothing when mining_events already holds events (for `make run`).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH, hidden=True)
@click.option("--progress/--no-progress", default=None,
              help="A progress bar on stderr (default: when stderr is a terminal).")
@database_url_option()
def demo_command(miners: int, shares: int, week: str | None, also_open_week: bool, seed: int | None,
                 if_empty: bool, batch_size: int, progress: bool | None) -> int:
    """Generate and load a believable week of pool activity.

    Miners with 1-4 workers of real device classes, heavy-tailed share
    difficulties (Pareto above each worker's vardiff) with hashes that prove
    them, night-heavy diurnal timing, ~1-2% rejected shares, network difficulty
    updates and exactly one found block. Also writes users rows with display
    names. Deterministic for a given --seed.
    """
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    with connect(database_url()) as conn:
        try:
            if if_empty and conn.execute("SELECT EXISTS (SELECT FROM mining_events)").fetchone()[0]:
                click.echo("demo skipped: mining_events already holds events (--if-empty)")
                return 0
            (now, *filled), (_now, *open_now) = conn.execute(WEEKS_SQL, (week,)).fetchall()
            target, current = Week(*filled), Week(*open_now)
            drawn = conn.execute("SELECT status FROM lottery_draws WHERE week_start = %s",
                                 (target.start,)).fetchone()
            before = conn.execute("SELECT count(*) FROM share_weekly_best WHERE week_start = %s",
                                  (target.monday,)).fetchone()[0]
            conn.rollback()
        except psycopg.Error as exc:
            print_sql_error(exc)
            return 1
        if target.monday > current.monday:
            raise CliError(f"the week of {target.monday} has not started yet; pick a week up to {current.monday}")
        data = generate_demo(seed, miners, shares, target, now, also_open_week, current)
        check_hashes(data)
        try:
            load_demo(conn, data, batch_size, want_progress(progress))
            conn.execute("SELECT fold_pending_events()")  # loaded and committed: folded now, for the summary
            conn.commit()
            best = conn.execute(BEST_SQL, (target.monday,)).fetchone()
            conn.rollback()
        except psycopg.Error as exc:
            conn.rollback()
            print_sql_error(exc)
            return 1

    print_summary(data, seed, target, current, now, also_open_week, best[0] if best else None)
    if before:
        click.echo(f"  note: the week already had {before:,} participants; the demo added to them")
    if drawn and drawn[0] == "completed":
        click.echo(f"  note: the week of {target.monday} is already drawn; its results do not change")
    elif target.monday < current.monday:
        click.echo(f"next: lottery draw --week {target.monday}")
    click.echo(f"reproduce with: lottery demo --seed {seed} --miners {miners} --shares {shares} "
               f"--week {target.monday}")
    return 0
