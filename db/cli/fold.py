"""`lottery fold`: fold the events the background fold has not reached yet, once
or (--follow) as a worker of its own, for deployments without pg_cron."""

from __future__ import annotations

import time

import click
import psycopg

from db.cli.common import connect, database_url, database_url_option
from db.cli.output import fmt_int, print_sql_error

LAG_SQL = "SELECT events, seconds FROM event_fold_lag()"


@click.command("fold")
@click.option("--follow", is_flag=True,
              help="Keep folding, batch by batch, until interrupted (a worker instead of the pg_cron job).")
@click.option("--batch", type=click.IntRange(min=1), default=100_000, show_default=True, metavar="N",
              help="With --follow: at most N event numbers per transaction.")
@click.option("--idle", type=click.FloatRange(min=0.01), default=0.2, show_default=True, metavar="SECONDS",
              help="With --follow: the pause when nothing was pending.")
@database_url_option()
def fold_command(follow: bool, batch: int, idle: float) -> int:
    """Fold every event committed so far into the aggregates.

    Shares cost nothing but their INSERT: the background fold (pg_cron job
    lottery-fold) judges and folds them within a second or two. This folds
    what is pending now (SELECT fold_pending_events()) and prints how many
    events it folded; --follow keeps folding, as the pg_cron job does.
    """
    with connect(database_url(), autocommit=True) as conn:
        try:
            if not follow:
                folded = conn.execute("SELECT fold_pending_events()").fetchone()[0]
                click.echo(f"folded {fmt_int(folded)} events")
                return 0
            click.echo(f"folding every {idle:g} s when idle, {fmt_int(batch)} events at most per batch (Ctrl-C stops)")
            while True:
                folded = conn.execute("SELECT fold_events(%s)", (batch,)).fetchone()[0]
                if folded:
                    events, seconds = conn.execute(LAG_SQL).fetchone()
                    click.echo(f"folded {fmt_int(folded)} events; behind: {fmt_int(events)} events, {seconds:.1f} s")
                else:
                    time.sleep(idle)
        except psycopg.Error as exc:
            print_sql_error(exc)
            return 1
