"""Operations (db/functions/95_operations.sql): the report behind /metrics and
`lottery status --check`, its findings as the clock moves (p_now, never a sleep),
and scheduled jobs that record their own outcome."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from db import cli
from tests.helpers import add_shares

UTC = dt.timezone.utc


def check(capsys, url: str, now: dt.datetime | None = None) -> tuple[int, list[str]]:
    argv = ["--database-url", url, "status", "--check"] + (["--now", now.isoformat()] if now else [])
    code = cli.main(argv)
    return code, capsys.readouterr().out.splitlines()


def open_week(conn) -> dt.datetime:
    """Monday 00:00 UTC of the real open week."""
    return conn.execute("SELECT lottery_week_start_ts(lottery_week_at(now()))").fetchone()[0]


def report(conn, now: dt.datetime) -> dict:
    return conn.execute("SELECT lottery_operations(%s)", (now,)).fetchone()[0]


def codes(findings: list[dict]) -> list[tuple[str, str]]:
    return [(f["severity"], f["code"]) for f in findings]


@pytest.fixture
def autocommit(fresh_db_url):
    """A second connection in autocommit: CALL run_scheduled_job commits inside."""
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        yield conn


def test_check_is_ok_then_critical_past_a_missed_draw_then_ok_after_the_catch_up(capsys, fresh_db, fresh_db_url):
    week = open_week(fresh_db)
    add_shares(fresh_db, ("alice", 50.0, week), ("bob", 70.0, week + dt.timedelta(seconds=1)))
    fresh_db.commit()

    during = week + dt.timedelta(days=1)
    code, lines = check(capsys, fresh_db_url, during)
    assert code == 0 and lines == ["ok: open week " + week.date().isoformat() + "; last draw: none yet; nothing due"]

    closed = week + dt.timedelta(days=7)
    assert check(capsys, fresh_db_url, closed + dt.timedelta(minutes=30)) == (1, [
        f"warning: draw_due: the week of {week.date()} closed 00:30:00 ago and is not drawn yet "
        "(the Monday 00:01 UTC job draws it)"])

    missed = closed + dt.timedelta(hours=3)
    code, lines = check(capsys, fresh_db_url, missed)
    assert code == 2
    assert lines == [f"critical: draw_overdue: the week of {week.date()} closed 03:00:00 ago and has no draw "
                     "(1 week(s) due): run `lottery draw --due`"]

    fresh_db.execute("SELECT run_due_draws(%s)", (missed,))  # the hourly catch-up, at that instant
    fresh_db.commit()
    code, lines = check(capsys, fresh_db_url, missed)
    assert code == 0, lines
    assert lines == [f"ok: open week {closed.date()}; last draw: week {week.date()}, 2 participants; nothing due"]


def test_check_without_now_uses_the_server_clock(capsys, fresh_db_url):
    code, lines = check(capsys, fresh_db_url)
    assert code == 0 and lines[0].startswith("ok: open week ")


def test_unreachable_database_is_critical(capsys):
    code, lines = check(capsys, "postgresql://nobody@127.0.0.1:1/none")
    assert code == 2 and lines[0].startswith("critical: database_unreachable: cannot connect")


def test_now_only_goes_with_check(capsys, fresh_db_url):
    with pytest.raises(SystemExit) as usage:
        cli.main(["--database-url", fresh_db_url, "status", "--now", "2026-01-01"])
    assert usage.value.code == 2 and "--now goes with --check" in capsys.readouterr().err


def test_report_figures_of_a_drawn_week_and_the_open_one(fresh_db):
    week = open_week(fresh_db)
    last = week - dt.timedelta(days=7)
    add_shares(fresh_db, ("alice", 50.0, last), ("bob", 70.0, last), ("bob", 10.0, last + dt.timedelta(hours=1)),
               ("carol", 5.0, week))
    fresh_db.execute("SELECT run_lottery_draw(%s)", (last.date(),))
    r = report(fresh_db, week + dt.timedelta(hours=1))
    weeks = {w["weekStart"]: w for w in r["weeks"]}
    assert len(r["weeks"]) == 8 and r["weeks"][0]["weekStart"] == week.date().isoformat()
    assert weeks[week.date().isoformat()] | {"rawEvents": None} == {
        "weekStart": week.date().isoformat(), "open": True, "drawn": False, "participants": 1,
        "shares": 1, "unverifiedShares": 0, "forgedShares": 0, "rawEvents": None}
    assert weeks[last.date().isoformat()]["drawn"] is True
    assert weeks[last.date().isoformat()]["participants"] == 2 and weeks[last.date().isoformat()]["shares"] == 3
    assert r["lastDraw"]["weekStart"] == last.date().isoformat() and r["lastDraw"]["participants"] == 2
    assert r["lastDraw"]["durationSeconds"] > 0 and len(r["lastDraw"]["resultsDigest"]) == 64
    assert r["due"] == {"weeks": 0, "oldest": None, "overdueSeconds": 0}
    assert r["partitions"]["partitioned"] is True and r["status"] == "ok" and r["findings"] == []


def test_draw_records_its_duration(fresh_db):
    week = open_week(fresh_db) - dt.timedelta(days=7)
    add_shares(fresh_db, ("alice", 50.0, week))
    seconds = fresh_db.execute("SELECT draw_seconds FROM run_lottery_draw(%s)", (week.date(),)).fetchone()[0]
    assert 0 < seconds < 60


def test_partitions_behind_when_the_daily_job_stops(fresh_db):
    """The apply step made partitions for 4 weeks ahead; 6 weeks later, without the job, none is left."""
    week = open_week(fresh_db)
    assert codes(report(fresh_db, week + dt.timedelta(weeks=3))["findings"]) == []
    r = report(fresh_db, week + dt.timedelta(weeks=6))
    assert codes(r["findings"]) == [("critical", "partitions_behind")]
    assert r["status"] == "critical"
    fresh_db.execute("SELECT maintain_event_partitions(%s)", (week + dt.timedelta(weeks=6),))
    assert report(fresh_db, week + dt.timedelta(weeks=6))["findings"] == []


def test_a_scheduled_job_records_success_and_failure(fresh_db, autocommit):
    week = open_week(fresh_db) - dt.timedelta(days=7)
    add_shares(fresh_db, ("alice", 50.0, week))
    fresh_db.execute("CREATE FUNCTION refuse_results() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'no room' USING ERRCODE = '53100', HINT = 'free some'; END $$")
    fresh_db.execute("CREATE TRIGGER refuse_results BEFORE INSERT ON lottery_results "
                     "FOR EACH STATEMENT EXECUTE FUNCTION refuse_results()")
    fresh_db.commit()

    with pytest.raises(psycopg.Error) as failed:
        autocommit.execute("CALL run_scheduled_job('lottery-catchup')")
    assert failed.value.sqlstate == "53100" and failed.value.diag.message_hint == "free some"
    r = report(fresh_db, dt.datetime.now(UTC))
    job = r["jobs"][0]
    assert (job["job"], job["status"], job["sqlstate"], job["message"], job["runs"], job["failures"]) == \
        ("lottery-catchup", "failed", "53100", "no room", 1, 1)
    assert ("critical", "job_failed") in codes(r["findings"])
    assert fresh_db.execute("SELECT count(*) FROM lottery_draws").fetchone()[0] == 0  # the work rolled back

    fresh_db.execute("DROP TRIGGER refuse_results ON lottery_results")
    fresh_db.commit()
    autocommit.execute("CALL run_scheduled_job('lottery-catchup')")
    r = report(fresh_db, dt.datetime.now(UTC))
    job = r["jobs"][0]
    assert (job["status"], job["sqlstate"], job["runs"], job["failures"]) == ("succeeded", None, 2, 1)
    assert job["lastSuccessAt"] and job["lastFailureAt"] and codes(r["findings"]) == []
    assert fresh_db.execute("SELECT count(*) FROM lottery_draws WHERE status = 'completed'").fetchone()[0] == 1


def test_partition_job_recorded_and_judged_late(fresh_db, autocommit):
    autocommit.execute("CALL run_scheduled_job('lottery-partitions')")
    now = dt.datetime.now(UTC)
    assert codes(report(fresh_db, now + dt.timedelta(hours=25))["findings"]) == []
    assert codes(report(fresh_db, now + dt.timedelta(hours=27))["findings"]) == [("warning", "partition_job_late")]


def test_a_run_that_never_ended_is_stalled(fresh_db, autocommit):
    autocommit.execute("CALL run_scheduled_job('lottery-draw')")
    # What a killed run leaves: its start committed, its end never written.
    fresh_db.execute("UPDATE scheduled_job_runs SET status = 'running', finished_at = NULL")
    started = fresh_db.execute("SELECT started_at FROM scheduled_job_runs").fetchone()[0]
    assert codes(report(fresh_db, started + dt.timedelta(minutes=50))["findings"]) == []
    assert codes(report(fresh_db, started + dt.timedelta(hours=2))["findings"]) == [("warning", "job_stalled")]


def test_a_draw_row_left_unfinished_is_a_warning(fresh_db):
    fresh_db.execute("INSERT INTO lottery_draws (week_start, week_end, status) "
                     "VALUES ('2026-11-02 00:00+00', '2026-11-09 00:00+00', 'failed')")
    findings = report(fresh_db, open_week(fresh_db))["findings"]
    assert findings == [{"severity": "warning", "code": "draw_not_completed", "subject": "2026-11-02",
                         "message": "the draw of the week of 2026-11-02 is failed"}]


def test_run_scheduled_job_refuses_an_unknown_job_and_a_transaction_block(fresh_db, autocommit):
    with pytest.raises(psycopg.Error) as unknown:
        autocommit.execute("CALL run_scheduled_job('lottery-everything')")
    assert unknown.value.sqlstate == "LTJ01" and unknown.value.diag.message_hint
    with pytest.raises(psycopg.Error) as atomic:
        fresh_db.execute("CALL run_scheduled_job('lottery-draw')")  # inside a transaction: no COMMIT possible
    assert atomic.value.sqlstate == "2D000"


def test_web_role_reads_the_report_on_the_server_clock_only(fresh_db):
    fresh_db.execute("SET ROLE lottery_web")
    assert fresh_db.execute("SELECT lottery_operations() ->> 'status'").fetchone()[0] == "ok"
    with pytest.raises(psycopg.Error) as moved:
        fresh_db.execute("SELECT lottery_operations(now() + interval '9 days')")
    assert moved.value.sqlstate == "LTC01"
