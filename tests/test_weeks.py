"""db/functions/00_weeks.sql: UTC ISO weeks, half-open, whatever the session TimeZone."""

import psycopg
import pytest

from tests.helpers import add_shares

ZONES = ["UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Asia/Kolkata"]


def boundaries(db, at):
    return db.execute(
        "SELECT iso_utc(week_start), iso_utc(week_end), iso_year, iso_week FROM get_week_boundaries(%s::timestamptz)",
        (at,)).fetchone()


def test_monday_midnight_starts_its_own_week(db):  # spec 5.8.1 #11
    assert boundaries(db, "2026-02-16 00:00:00+00") == (
        "2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z", 2026, 8)


def test_sunday_late_is_same_week_as_saturday(db):  # spec 5.8.1 #12
    saturday = boundaries(db, "2026-02-21 12:00:00+00")
    assert boundaries(db, "2026-02-22 23:59:00+00") == saturday
    assert boundaries(db, "2026-02-22 23:59:59.999999+00") == saturday
    assert boundaries(db, "2026-02-23 00:00:00+00") != saturday


def test_new_year_crossover_in_a_53_week_year(db):  # spec 5.8.1 #13
    # 2026 has 53 ISO weeks: 2026-12-31 and 2027-01-01 both lie in 2026-W53.
    dec31 = boundaries(db, "2026-12-31 10:00:00+00")
    jan1 = boundaries(db, "2027-01-01 10:00:00+00")
    assert dec31 == jan1 == ("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", 2026, 53)
    assert boundaries(db, "2027-01-04 00:00:00+00")[2:] == (2027, 1)


def test_new_year_crossover_in_a_52_week_year(db):
    # 2025-12-31 is a Wednesday of 2026-W01.
    assert boundaries(db, "2025-12-31 23:00:00+00") == (
        "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", 2026, 1)


@pytest.mark.parametrize("zone", ZONES)
def test_week_functions_ignore_session_timezone(db, zone):
    db.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
    assert boundaries(db, "2026-11-22 23:30:00+00")[:2] == ("2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z")
    row = db.execute("SELECT lottery_week('2026-11-16'::date), lottery_week_at('2026-11-22 23:59:59.999999+00'),"
                     " parse_week('2026-11-16'), iso_utc(lottery_week_start_ts('2026-11-18'))").fetchone()
    assert [str(v) for v in row] == ["2026-11-16", "2026-11-16", "2026-11-16", "2026-11-16T00:00:00Z"]


# Weeks in which the session's zone moves its clocks (2026): still 168 hours, Monday to Monday UTC.
CLOCK_CHANGE_WEEKS = [("Europe/Berlin", "2026-03-23"), ("Europe/Berlin", "2026-10-19"),
                      ("America/Los_Angeles", "2026-03-02"), ("America/Los_Angeles", "2026-10-26")]


@pytest.mark.parametrize("zone, monday", CLOCK_CHANGE_WEEKS)
def test_a_week_with_a_clock_change_in_the_session_zone_is_still_utc(db, zone, monday):
    sunday, next_monday = (str(d) for d in db.execute("SELECT %s::date + 6, %s::date + 7", (monday, monday)).fetchone())
    db.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
    assert boundaries(db, f"{monday} 12:00:00+00")[:2] == (f"{monday}T00:00:00Z", f"{next_monday}T00:00:00Z")
    assert db.execute("SELECT iso_utc(week_end_shown(%s)), iso_utc(next_draw_at(%s::timestamptz)),"
                      " get_weekly_game_data('nobody', %s)->>'weekEnd'",
                      (monday, f"{monday} 00:01:00+00", monday)).fetchone() == \
        (f"{sunday}T23:59:59Z", f"{next_monday}T00:01:00Z", f"{sunday}T23:59:59Z")


@pytest.mark.parametrize("text, day, monday", [
    ("2026-11-18", "2026-11-18", "2026-11-16"),
    ("2026-11-16", "2026-11-16", "2026-11-16"),
    ("2026-11-22T23:59:59Z", "2026-11-22", "2026-11-16"),
    ("2026-11-23T00:30:00+02:00", "2026-11-22", "2026-11-16"),   # 22:30 UTC on Sunday
    ("2026-11-22T23:30:00-01:00", "2026-11-23", "2026-11-23"),   # 00:30 UTC on Monday
    ("2026-11-22T23:59:59.999999", "2026-11-22", "2026-11-16"),  # no offset: UTC
    (" 2027-01-01 ", "2027-01-01", "2026-12-28"),
])
def test_parse_week_accepts_dates_and_timestamps(db, text, day, monday):
    # The UTC day named: the bounds of a week parameter are days (check_lottery_week).
    assert [str(v) for v in db.execute("SELECT parse_week(%s), lottery_week(parse_week(%s))",
                                       (text, text)).fetchone()] == [day, monday]


NOW = "2026-11-18 12:00:00+00"   # a Wednesday: the open week is 2026-11-16, next week ends 2026-11-29


@pytest.mark.parametrize("day, monday", [
    ("2009-01-02", None),                    # the day before the first block
    ("2009-01-03", "2008-12-29"),            # the first block: its ISO week began on 2008-12-29
    ("2009-01-04", "2008-12-29"),
    ("2009-01-02T23:30:00-01:00", "2008-12-29"),   # 00:30 UTC on 2009-01-03
    ("2009-01-03T00:30:00+01:00", None),           # 23:30 UTC on 2009-01-02
    ("2026-11-29", "2026-11-23"),            # next week's last day
    ("2026-11-29T23:59:59Z", "2026-11-23"),
    ("2026-11-30", None),                    # the day after
])
def test_a_week_parameter_lies_between_the_first_block_and_next_week(db, day, monday):
    """CONTRACT 1: a week parameter outside [2009-01-03, next week] is LTW02; a day from
    2009-01-03 on names its ISO week, the first one being the week of 2008-12-29."""
    queries = ["SELECT check_lottery_week(parse_week(%(day)s), %(now)s)",
               "SELECT week_or_open(parse_week(%(day)s), %(now)s)",
               "SELECT (get_weekly_game_data('nobody', parse_week(%(day)s), %(now)s)->>'weekStart')::date",
               "SELECT (get_leaderboard('nobody', parse_week(%(day)s), 25, 0, %(now)s)->>'weekStart')::date"]
    for sql in queries:
        db.execute("SAVEPOINT bound")
        if monday is None:
            with pytest.raises(psycopg.Error) as refused:
                db.execute(sql, {"day": day, "now": NOW})
            assert refused.value.sqlstate == "LTW02", sql
            assert "from 2009-01-03 to the end of next week (2026-11-29)" in refused.value.diag.message_hint
        else:
            assert str(db.execute(sql, {"day": day, "now": NOW}).fetchone()[0]) == monday, sql
        db.execute("ROLLBACK TO SAVEPOINT bound")


def test_the_week_of_the_first_block_is_drawn_like_any_other(db):
    add_shares(db, ("satoshi", 1.0, "2009-01-03 18:15:05"), ("hal", 2.0, "2009-01-04 10:00"))
    drawn = db.execute("SELECT iso_utc(week_start), total_participants FROM run_due_draws('2009-01-05 00:01+00')"
                             ).fetchall()
    assert drawn == [("2008-12-29T00:00:00Z", 2)]
    assert db.execute("SELECT get_lottery_by_week('hal', '2009-01-03')->'myResult'->>'rank'").fetchone()[0] == "1"


@pytest.mark.parametrize("text", ["2026-02-30", "yesterday", "", "2026-13-01", "16/11/2026",
                                  "2026-11-16; DROP TABLE users", "x" * 10_000, "2026-11-16T25:00:00Z"])
def test_parse_week_rejects_anything_else_with_its_sqlstate(db, text):
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT parse_week(%s)", (text,))
    assert err.value.sqlstate == "LTW02"
    assert err.value.diag.message_hint
    db.rollback()


@pytest.mark.parametrize("now, expected", [
    ("2026-11-23 00:00:00+00", "2026-11-23T00:01:00Z"),
    ("2026-11-23 00:01:00+00", "2026-11-30T00:01:00Z"),
    ("2026-11-24 05:00:00+00", "2026-11-30T00:01:00Z"),
    ("2026-11-29 23:59:59+00", "2026-11-30T00:01:00Z"),
])
def test_next_draw_is_the_next_monday_0001_utc(db, now, expected):
    assert db.execute("SELECT iso_utc(next_draw_at(%s))", (now,)).fetchone()[0] == expected


def test_iso_utc_precise_keeps_microseconds_in_utc(db):
    db.execute("SELECT set_config('TimeZone', 'Asia/Kolkata', true)")
    assert db.execute("SELECT iso_utc_precise('2026-11-22 23:59:59.999999+00')").fetchone()[0] == \
        "2026-11-22T23:59:59.999999Z"
