"""pg_cron: the apply step schedules the draw; a scheduled run really draws in the app database."""

import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db import apply as db_apply
from tests.helpers import add_shares


def cron_url(url: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = "postgres"
    return make_conninfo(**params)


def test_apply_schedules_draw_and_catch_up_in_utc(fresh_db, fresh_db_url):
    dbname = fresh_db.info.dbname
    lines = []
    try:
        assert db_apply.schedule_draws(fresh_db, fresh_db_url, lines.append)
        assert db_apply.schedule_draws(fresh_db, fresh_db_url, lines.append)  # twice: upsert, no duplicate
        with psycopg.connect(cron_url(fresh_db_url)) as cron:
            jobs = cron.execute("SELECT jobname, schedule, command, database FROM cron.job"
                                " WHERE database = %s ORDER BY jobname", (dbname,)).fetchall()
        assert jobs == [(f"lottery-catchup:{dbname}", "11 * * * *", "SELECT run_due_draws()", dbname),
                        (f"lottery-draw:{dbname}", "1 0 * * 1", "SELECT run_due_draws()", dbname),
                        (f"lottery-partitions:{dbname}", "7 0 * * *", "SELECT maintain_event_partitions()", dbname)]
        assert "pg_cron: draw jobs scheduled" in lines[-1]
    finally:
        with psycopg.connect(cron_url(fresh_db_url), autocommit=True) as cron:
            cron.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE database = %s", (dbname,))


def test_scheduled_catch_up_run_draws_in_the_app_database(fresh_db, fresh_db_url):
    dbname = fresh_db.info.dbname
    add_shares(fresh_db, ("alice", 5.0, "2026-11-03 00:00"), ("bob", 6.0, "2026-11-10 00:00"))
    fresh_db.commit()
    with psycopg.connect(cron_url(fresh_db_url), autocommit=True) as cron:
        jobid = cron.execute("SELECT cron.schedule_in_database(%s, '* * * * *', 'SELECT run_due_draws()', %s)",
                             (f"lottery-test:{dbname}", dbname)).fetchone()[0]
        try:
            run = None
            deadline = time.monotonic() + 130
            while time.monotonic() < deadline and run is None:
                run = cron.execute("SELECT status, database, return_message FROM cron.job_run_details"
                                   " WHERE jobid = %s AND status IN ('succeeded', 'failed')", (jobid,)).fetchone()
                time.sleep(1)
        finally:
            cron.execute("SELECT cron.unschedule(%s)", (jobid,))
    assert run is not None, "pg_cron did not run the job within 130 s"
    assert run[:2] == ("succeeded", dbname), run
    drawn = fresh_db.execute("SELECT week_start::date::text, total_participants FROM lottery_draws"
                             " WHERE status = 'completed' ORDER BY week_start").fetchall()
    assert drawn == [("2026-11-02", 1), ("2026-11-09", 1)]
