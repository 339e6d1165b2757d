"""core/sqlstates.tsv is the one registry of the SQLSTATEs the functions raise."""

import contextlib
import re
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent


def registry() -> dict[str, int]:
    rows = [line.split("\t") for line in (ROOT / "core" / "sqlstates.tsv").read_text().splitlines()
            if line and not line.startswith("#")]
    header, *body = rows
    assert header[:2] == ["code", "http"]
    return {code: int(http) for code, http, *_ in body}


def raised_codes() -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / "db" / "functions").glob("*.sql"))
    return set(re.findall(r"SQLSTATE '([0-9A-Z]{5})'", text))


def test_registry_lists_exactly_the_codes_raised():
    assert raised_codes() == set(registry())


def test_codes_are_ours_and_statuses_are_client_errors():
    for code, status in registry().items():
        assert re.fullmatch(r"LT[0-9A-Z]{3}", code)
        assert 400 <= status < 500


# Codes raised only while another session holds an open write on mining_events.
OPEN_WRITER = {"LTF01"}


@pytest.mark.parametrize("sql, code", [
    ("SELECT parse_week('nope')", "LTW02"),
    ("SELECT run_lottery_draw(current_date)", "LTW01"),
    ("SELECT run_lottery_draw('2999-01-04')", "LTW02"),
    ("SELECT get_weekly_game_data('a', '2009-01-02')", "LTW02"),
    ("SELECT get_game_data('a', 'poker')", "LTG01"),
    ("SELECT record_game_session('a', 'slots', '[]')", "LTG02"),
    ("SELECT record_game_session('a', 'slots', '{}', current_date + 7)", "LTG03"),
    ("SELECT get_game_history('a', 0)", "LTP01"),
    ("SELECT get_leaderboard('a', NULL, 101)", "LTP01"),
    ("SELECT get_leaderboard_around('a', NULL, 51)", "LTP01"),
    ("SELECT get_lottery_history('a', 20, -1)", "LTP01"),
    ("SELECT set_lottery_privacy('a', NULL)", "LTV01"),
    ("SELECT get_weekly_game_data('')", "LTU01"),
    ("SELECT get_lottery_stats('')", "LTU01"),
    ("SELECT * FROM get_live_rank(repeat('x', 129))", "LTU01"),
    ("SELECT get_game_history(NULL)", "LTU01"),
    ("SELECT get_lottery_by_week('a', '2010-01-04')", "LTN01"),
    ("SET LOCAL ROLE lottery_web; SELECT get_weekly_game_data('a', NULL, now() + interval '7 days')", "LTC01"),
    ("INSERT INTO mining_events (ts, event_type, payload) VALUES (now(), 'other', '{}');"
     " SET LOCAL ROLE lottery_web; CREATE TEMP TABLE lottery_share_queue (first boolean); SELECT run_lottery_draw()",
     "LTQ01"),
    # With another session's insert into mining_events left open (OPEN_WRITER below).
    ("SELECT wait_for_event_writers(interval '0.2 seconds')", "LTF01"),
    ("SELECT record_game_session('a', 'slots', jsonb_build_object('i', i), NULL, '2026-11-24')"
     " FROM generate_series(1, 31) i", "LTR01"),
    ("CALL run_scheduled_job('nope')", "LTJ01"),
])
def test_every_registered_code_is_raised_with_a_hint(db, sql, code):
    with contextlib.ExitStack() as stack:
        if code in OPEN_WRITER:
            writer = stack.enter_context(psycopg.connect(db.info.dsn))
            stack.callback(writer.rollback)  # before the connection's exit, which would commit
            writer.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES (now(), 'other', '{}')")
        with pytest.raises(psycopg.Error) as err:
            db.execute(sql)
    assert err.value.sqlstate == code
    assert err.value.diag.message_hint


def test_parametrized_cases_cover_the_registry():
    covered = {code for _, code in test_every_registered_code_is_raised_with_a_hint.pytestmark[0].args[1]}
    assert covered == set(registry())
