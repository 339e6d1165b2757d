"""`lottery draw` and `lottery status`: the draw of a closed week, and what the
database says about the open week, the draws and their pg_cron schedule."""

from __future__ import annotations

import click
import psycopg

from db.apply import CRON_JOBS, url_for_database
from db.cli.common import CliError, connect, database_url, database_url_option
from db.cli.output import (WEEK_DAYS_SQL, fmt_diff, fmt_duration, fmt_int, fmt_ts, print_sql_error,
                           print_table, week_label)

# A draw row as the commands print it; its week's days come from SQL.
DRAW_COLUMNS = f"""
    d.id, {WEEK_DAYS_SQL.format(week="lottery_week_at(d.week_start)")}, d.total_participants,
    d.total_shares, d.status, d.drawn_at, d.drawn_at = now() AS drawn_now, d.results_digest, d.draw_seconds
"""
DRAW_SQL = f"SELECT {DRAW_COLUMNS} FROM run_lottery_draw(parse_week(%s)) AS d"
DUE_SQL = f"SELECT {DRAW_COLUMNS} FROM run_due_draws() AS d"

TOP10_SQL = """
    SELECT r.rank, r.user_id, user_display_name(r.user_id), r.best_difficulty, r.ticket_count, r.xp_awarded
    FROM lottery_results r
    WHERE r.draw_id = %s
    ORDER BY r.rank
    LIMIT 10
"""
TOP10_HEADERS = ("rank", "user", "name", "best", "best difficulty", "shares", "xp")
TOP10_ALIGN = ("right", "left", "left", "right", "right", "right", "right")


def print_draw(conn: psycopg.Connection, draw: tuple) -> None:
    draw_id, first_day, last_day, participants, shares, status, drawn_at, drawn_now, digest, seconds = draw
    how = "drawn now" if drawn_now else "already drawn"
    click.echo(f"week {week_label(first_day, last_day)} (UTC)  draw {draw_id}")
    click.echo(f"  status: {status} ({how})  participants: {fmt_int(participants)}  "
               f"shares: {fmt_int(shares)}  drawn_at: {fmt_ts(drawn_at)}")
    click.echo(f"  digest: {digest or '-'}  took: {'-' if seconds is None else f'{seconds:.3f} s'}")
    rows = conn.execute(TOP10_SQL, (draw_id,)).fetchall()
    if not rows:
        click.echo("  no participants: nobody submitted an accepted share that week")
        return
    table = [(f"{rank}", user_id, name or "", fmt_diff(best), f"{best:,.0f}" if best >= 1 else f"{best:.6g}",
              f"{tickets:,}", f"{xp}") for rank, user_id, name, best, tickets, xp in rows]
    print_table(table, TOP10_HEADERS, TOP10_ALIGN)


@click.command("draw")
@click.option("--week", metavar="YYYY-MM-DD",
              help="Any day of the week to draw (or an ISO 8601 timestamp); default: the last closed week.")
@click.option("--due", is_flag=True,
              help="Draw every closed week with events and no draw yet, oldest first (run_due_draws).")
@database_url_option()
def draw_command(week: str | None, due: bool) -> int:
    """Draw a closed week and print its top 10.

    Draws the week containing --week (default: the last closed week) with
    run_lottery_draw and prints the draw and its top 10. A week already drawn is
    shown as it is (the draw is idempotent). A week that has not closed is an
    error (LTW01).
    """
    if due and week is not None:
        raise click.UsageError("--due and --week exclude each other")
    with connect(database_url()) as conn:
        try:
            draws = conn.execute(DUE_SQL).fetchall() if due else [conn.execute(DRAW_SQL, (week,)).fetchone()]
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            print_sql_error(exc)
            return 1
        if due and not draws:
            click.echo("nothing due: every closed week with events has a completed draw")
            return 0
        for i, draw in enumerate(draws):
            if i:
                click.echo()
            print_draw(conn, draw)
    return 0


# --------------------------------------------------------------------------
# status

OPEN_WEEK_SQL = f"""
    SELECT now(), b.week_end, {WEEK_DAYS_SQL.format(week="lottery_week_at(b.week_start)")}, next_draw_at()
    FROM get_week_boundaries(now()) AS b
"""
LIVE_SQL = """
    SELECT count(*), coalesce(sum(share_count), 0) FROM share_weekly_best WHERE week_start = %(week)s
"""
# rank = 1, not LIMIT 1: the window's run condition stops ranked_week() at the first
# row, where LIMIT would wait for the whole week to be ranked and sorted.
LEADER_SQL = "SELECT user_id, best_difficulty FROM ranked_week(%(week)s) WHERE rank = 1"
LAST_DRAW_SQL = f"""
    SELECT {WEEK_DAYS_SQL.format(week="lottery_week_at(week_start)")}, total_participants, total_shares, drawn_at
    FROM lottery_draws WHERE status = 'completed' ORDER BY week_start DESC LIMIT 1
"""
UNDRAWN_SQL = "SELECT coalesce(array_agg(w ORDER BY w), '{}') FROM due_draw_weeks(now()) AS w"
STUCK_SQL = f"""
    SELECT {WEEK_DAYS_SQL.format(week="lottery_week_at(week_start)")}, status
    FROM lottery_draws WHERE status <> 'completed' ORDER BY week_start
"""


def cron_database(conn: psycopg.Connection) -> str | None:
    """The database pg_cron keeps its jobs in; None when pg_cron is not loaded."""
    return conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()[0] or None


def cron_job_lines(cron: psycopg.Connection, dbname: str) -> list[str]:
    """One line per job of CRON_JOBS (and its last run), then what is wrong, if anything."""
    lines = []
    has_details = cron.execute("SELECT to_regclass('cron.job_run_details')").fetchone()[0]
    has_dbcol = cron.execute(
        "SELECT EXISTS (SELECT FROM information_schema.columns "
        "WHERE table_schema = 'cron' AND table_name = 'job' AND column_name = 'database')").fetchone()[0]
    missing = []
    for base in CRON_JOBS:
        name = f"{base}:{dbname}"
        job = cron.execute(
            "SELECT jobid, schedule, active, command, " + ("database" if has_dbcol else "NULL::text")
            + " FROM cron.job WHERE jobname = %s ORDER BY jobid LIMIT 1", (name,)).fetchone()
        if job is None:
            missing.append(name)
            lines.append(f"  {name}: MISSING")
            continue
        jobid, schedule, active, command, database = job
        text = f"  {name}: schedule '{schedule}' {'active' if active else 'INACTIVE'}"
        if database and database != dbname:
            text += f", runs in database {database!r} (not {dbname!r}!)"
        lines.append(text + f", command: {command}")
        if has_details:
            run = cron.execute(
                "SELECT status, start_time, return_message FROM cron.job_run_details "
                "WHERE jobid = %s ORDER BY start_time DESC NULLS LAST LIMIT 1", (jobid,)).fetchone()
            if run is None:
                lines.append("    last run: never")
            else:
                status, start, message = run
                message = (message or "").strip().replace("\n", " ")
                lines.append(f"    last run: {status} at {fmt_ts(start)}" + (f": {message}" if message else ""))
    if missing:
        lines.append(f"  job{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: "
                     "the draw is not scheduled as it should be (run `make migrate`, "
                     "or `lottery draw --due` by hand)")
    return lines


def cron_report(conn: psycopg.Connection, url: str) -> list[str]:
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
            lines += cron_job_lines(cron, conn.info.dbname)
            timezone = cron.execute("SELECT current_setting('cron.timezone', true)").fetchone()[0]
            if timezone and timezone.upper() not in ("GMT", "UTC", "ETC/UTC", "ZULU"):
                lines.append(f"  warning: cron.timezone is {timezone!r}; the draw schedule is meant in UTC")
    except CliError as exc:
        lines.append(f"  cannot read pg_cron's jobs: {exc.format_message()}")
    except psycopg.Error as exc:
        lines.append(f"  cannot read pg_cron's jobs: {exc.sqlstate}: {str(exc).strip()}")
    return lines


CHECK_EXIT = {"ok": 0, "warning": 1, "critical": 2}


def check(url: str, now: str | None) -> int:
    """The findings of lottery_operations(), one line each; the exit status is the
    worst (0 ok, 1 warning, 2 critical). An unreachable database is critical."""
    try:
        with connect(url, autocommit=True) as conn:
            # --now is the owner's alone (lottery_clock): any other role gets LTC01.
            report = conn.execute("SELECT lottery_operations(coalesce(%s::timestamptz, now()))",
                                  (now,)).fetchone()[0]
    except CliError as exc:
        click.echo(f"critical: database_unreachable: {exc.format_message()}")
        return 2
    except psycopg.Error as exc:
        click.echo(f"critical: database_error: {exc.sqlstate}: {str(exc).strip()}")
        return 2
    for finding in report["findings"]:
        click.echo(f"{finding['severity']}: {finding['code']}: {finding['message']}")
    if not report["findings"]:
        last = report["lastDraw"]
        click.echo(f"ok: open week {report['openWeek']}; last draw: "
                   + (f"week {last['weekStart']}, {last['participants']:,} participants" if last else "none yet")
                   + "; nothing due")
    return CHECK_EXIT[report["status"]]


@click.command("status")
@click.option("--check", "check_only", is_flag=True,
              help="For monitoring (cron, Nagios): one line per finding; exit 0 ok, 1 warning, 2 critical.")
@click.option("--now", metavar="TIMESTAMP", hidden=True, help="With --check: as of this instant (the owner only).")
@database_url_option()
def status_command(check_only: bool, now: str | None) -> int:
    """Open week, live participants, last and next draw, pg_cron jobs.

    Shows the open week with its live participants and shares, the last
    completed draw, closed weeks not drawn yet, the next scheduled draw and the
    health of the pg_cron jobs that run it. --check prints only the findings of
    lottery_operations() (a closed week with events undrawn for 2 hours, a
    failed scheduled job, partitions behind...), one per line, and exits 0 when
    healthy, 1 on a warning, 2 on a critical finding or an unreachable database.
    """
    url = database_url()
    if now and not check_only:
        raise click.UsageError("--now goes with --check")
    if check_only:
        return check(url, now)
    with connect(url, autocommit=True) as conn:
        try:
            now, closes, first_day, last_day, next_draw = conn.execute(OPEN_WEEK_SQL).fetchone()
            week = {"week": first_day}
            participants, shares = conn.execute(LIVE_SQL, week).fetchone()
            leader = conn.execute(LEADER_SQL, week).fetchone()
            last = conn.execute(LAST_DRAW_SQL).fetchone()
            undrawn = conn.execute(UNDRAWN_SQL).fetchone()[0]
            stuck = conn.execute(STUCK_SQL).fetchall()
            fold_events, fold_seconds = conn.execute("SELECT events, seconds FROM event_fold_lag()").fetchone()
        except psycopg.Error as exc:
            print_sql_error(exc)
            return 1
        info = conn.info
        click.echo(f"database:    {info.dbname} on {info.host}:{info.port} as {info.user}")
        click.echo(f"now:         {fmt_ts(now)}")
        click.echo(f"open week:   {week_label(first_day, last_day)} (closes {fmt_ts(closes)}, "
                   f"in {fmt_duration((closes - now).total_seconds())})")
        live = f"live:        {participants:,} participants, {shares:,} accepted shares"
        if leader:
            live += f"; leader {leader[0]} at {fmt_diff(leader[1])}"
        click.echo(live)
        click.echo(f"fold:        {fmt_int(fold_events)} events pending, {fold_seconds:.1f} s behind"
                   + ("" if fold_seconds <= 10 else " (is the lottery-fold job running? `lottery fold` folds now)"))
        if last:
            click.echo(f"last draw:   week {week_label(last[0], last[1])}: {last[2]:,} participants, "
                       f"{last[3]:,} shares, drawn {fmt_ts(last[4])}")
        else:
            click.echo("last draw:   none yet")
        if undrawn:
            weeks = ", ".join(w.isoformat() for w in undrawn[:5]) + (" ..." if len(undrawn) > 5 else "")
            click.echo(f"undrawn:     {len(undrawn)} closed week(s) with events and no draw: {weeks} "
                       "(run `lottery draw --due`)")
        for stuck_first, stuck_last, status in stuck:
            click.echo(f"warning:     the draw of week {week_label(stuck_first, stuck_last)} is {status!r}")
        click.echo(f"next draw:   {fmt_ts(next_draw)} (in {fmt_duration((next_draw - now).total_seconds())})")
        for line in cron_report(conn, url):
            click.echo(line)
    return 0
