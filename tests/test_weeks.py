"""db/functions/00_weeks.sql: UTC ISO weeks, half-open, whatever the session TimeZone."""

import psycopg
import pytest

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


@pytest.mark.parametrize("text, monday", [
    ("2026-11-18", "2026-11-16"),
    ("2026-11-16", "2026-11-16"),
    ("2026-11-22T23:59:59Z", "2026-11-16"),
    ("2026-11-23T00:30:00+02:00", "2026-11-16"),   # 22:30 UTC on Sunday
    ("2026-11-22T23:30:00-01:00", "2026-11-23"),   # 00:30 UTC on Monday
    ("2026-11-22T23:59:59.999999", "2026-11-16"),  # no offset: UTC
    (" 2027-01-01 ", "2026-12-28"),
])
def test_parse_week_accepts_dates_and_timestamps(db, text, monday):
    assert str(db.execute("SELECT parse_week(%s)", (text,)).fetchone()[0]) == monday


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
