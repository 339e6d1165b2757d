"""pg_cron: the apply step schedules the draw; a scheduled run really draws in the app database
and records its outcome there (scheduled_job_runs), success and failure alike."""

import time

import psycopg
import pytest

from db import apply as db_apply
from tests.helpers import insert_events, share, add_shares


def cron_url(url: str) -> str:
    return db_apply.url_for_database(url, "postgres")


def test_apply_schedules_draw_and_catch_up_in_utc(fresh_db, fresh_db_url):
    dbname = fresh_db.info.dbname
    lines = []
    try:
        assert db_apply.schedule_draws(fresh_db, fresh_db_url, lines.append)
        assert db_apply.schedule_draws(fresh_db, fresh_db_url, lines.append)  # twice: upsert, no duplicate
        with psycopg.connect(cron_url(fresh_db_url)) as cron:
            jobs = cron.execute("SELECT jobname, schedule, command, database FROM cron.job"
                                " WHERE database = %s ORDER BY jobname", (dbname,)).fetchall()
        assert jobs == [(f"lottery-catchup:{dbname}", "11 * * * *", "CALL run_scheduled_job('lottery-catchup')", dbname),
                        (f"lottery-draw:{dbname}", "1 0 * * 1", "CALL run_scheduled_job('lottery-draw')", dbname),
                        (f"lottery-fold:{dbname}", "* * * * *", "CALL fold_events_for(55)", dbname),
                        (f"lottery-partitions:{dbname}", "7 0 * * *", "CALL run_scheduled_job('lottery-partitions')",
                         dbname)]
        assert "pg_cron: draw jobs scheduled" in lines[-1]
    finally:
        with psycopg.connect(cron_url(fresh_db_url), autocommit=True) as cron:
            cron.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE database = %s", (dbname,))


def test_scheduled_runs_draw_in_the_app_database_and_record_their_outcome(fresh_db, fresh_db_url, pg_cluster,
                                                                          lottery_proc):
    """Two app databases, one job each, the same minute: one run succeeds, the other fails
    (a trigger refuses the results); both outcomes land in their own scheduled_job_runs,
    the commits inside run_scheduled_job work under pg_cron's background workers, and
    pg_cron's own history agrees."""
    dbname = fresh_db.info.dbname
    add_shares(fresh_db, ("alice", 5.0, "2026-11-03 00:00"), ("bob", 6.0, "2026-11-10 00:00"))
    fresh_db.commit()
    with pg_cluster.clone(lottery_proc.template_dbname, f"{dbname}_failing") as failing_url, \
            psycopg.connect(failing_url, autocommit=True) as failing, \
            psycopg.connect(cron_url(fresh_db_url), autocommit=True) as cron:
        cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        insert_events(failing, [share("alice", 5.0, "2026-11-03 00:00")], fold_now=False)  # for its fold job
        failing.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'results refused' USING ERRCODE = '53100'; END $$")
        failing.execute("CREATE TRIGGER refuse BEFORE INSERT ON lottery_results "
                        "FOR EACH STATEMENT EXECUTE FUNCTION refuse()")
        jobs = [cron.execute("SELECT cron.schedule_in_database(%s, '* * * * *', "
                             "$$CALL run_scheduled_job('lottery-catchup')$$, %s)",
                             (f"lottery-test:{db}", db)).fetchone()[0] for db in (dbname, f"{dbname}_failing")]
        # The background fold as pg_cron runs it: a procedure that commits batch by batch.
        jobs.append(cron.execute("SELECT cron.schedule_in_database(%s, '* * * * *', 'CALL fold_events_for(2)', %s)",
                                 (f"lottery-fold-test:{dbname}_failing", f"{dbname}_failing")).fetchone()[0])
        try:
            runs = []
            deadline = time.monotonic() + 130
            while time.monotonic() < deadline and len(runs) < 3:
                runs = cron.execute("SELECT jobid, status, database, return_message FROM cron.job_run_details"
                                    " WHERE jobid = ANY(%s) AND status IN ('succeeded', 'failed') ORDER BY jobid",
                                    (jobs,)).fetchall()
                time.sleep(1)
        finally:
            for jobid in jobs:
                cron.execute("SELECT cron.unschedule(%s)", (jobid,))
        recorded = failing.execute("SELECT job, status, sqlstate, message, runs, failures"
                                   " FROM scheduled_job_runs").fetchall()
        failing_draws = failing.execute("SELECT count(*) FROM lottery_draws").fetchone()[0]
        folded = failing.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0]
    assert len(runs) == 3, f"pg_cron did not run the three jobs within 130 s: {runs}"
    assert runs[0][1:3] == ("succeeded", dbname), runs
    assert runs[1][1:3] == ("failed", f"{dbname}_failing") and "results refused" in runs[1][3], runs
    assert runs[2][1:3] == ("succeeded", f"{dbname}_failing"), runs
    assert folded == 1  # the fold job folded the share the failed draw could not
    drawn = fresh_db.execute("SELECT week_start::date::text, total_participants FROM lottery_draws"
                             " WHERE status = 'completed' ORDER BY week_start").fetchall()
    assert drawn == [("2026-11-02", 1), ("2026-11-09", 1)]
    assert fresh_db.execute("SELECT job, status, runs, failures FROM scheduled_job_runs").fetchall() == \
        [("lottery-catchup", "succeeded", 1, 0)]
    assert recorded == [("lottery-catchup", "failed", "53100", "results refused", 1, 1)]
    assert failing_draws == 0
