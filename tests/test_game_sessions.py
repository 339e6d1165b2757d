"""db/functions/60_game_sessions.sql: recording plays and the history."""

import json

import psycopg
import pytest

from tests.helpers import add_shares

NOW = "2026-11-19 12:00+00"


def play(db, user, game_type, result=None, week=None, now=NOW):
    return db.execute("SELECT created, session FROM record_game_session(%s, %s, %s::jsonb, %s, %s)",
                      (user, game_type, json.dumps(result if result is not None else {}), week, now)).fetchone()


def test_valid_game_type_is_recorded(db):  # spec 5.8.1 #21
    created, session = play(db, "alice", "slots", {"reels": ["a", "b", "c"]})
    assert created is True
    assert session["gameType"] == "slots" and session["playCount"] == 1
    assert session["weekStart"] == "2026-11-16T00:00:00Z"
    assert session["resultData"] == {"reels": ["a", "b", "c"]}
    assert db.execute("SELECT count(*) FROM game_sessions").fetchone()[0] == 1


@pytest.mark.parametrize("bad", ["poker", "", None, "Slots"])
def test_invalid_game_type_is_rejected(db, bad):  # spec 5.8.1 #22
    with pytest.raises(psycopg.Error) as err:
        play(db, "alice", bad)
    assert err.value.sqlstate == "LTG01"


def test_repeat_play_is_counted_not_duplicated(db):  # spec 5.8.1 #23
    _, first = play(db, "alice", "hammer", {"try": 1})
    created, again = play(db, "alice", "hammer", {"try": 2}, now="2026-11-20 08:00+00")
    assert created is False
    assert again["id"] == first["id"] and again["playCount"] == 2
    assert again["playedAt"] == first["playedAt"]
    assert again["lastPlayedAt"] == "2026-11-20T08:00:00.000000Z"
    assert again["resultData"] == {"try": 2}
    assert db.execute("SELECT count(*) FROM game_sessions").fetchone()[0] == 1
    with pytest.raises(psycopg.errors.UniqueViolation):  # the table itself enforces it too
        db.execute("INSERT INTO game_sessions (user_id, game_type, week_start)"
                   " VALUES ('alice', 'hammer', '2026-11-16 00:00+00')")


def test_other_games_and_weeks_are_separate_sessions(db):
    play(db, "alice", "hammer")
    play(db, "alice", "slots")
    play(db, "alice", "hammer", week="2026-11-10")
    assert db.execute("SELECT count(*) FROM game_sessions").fetchone()[0] == 3


@pytest.mark.parametrize("bad", [[1, 2], "text", 5, None, {"blob": "x" * 5000},
                                 {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}])
def test_result_data_must_be_a_small_object(db, bad):
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT record_game_session('alice', 'slots', %s::jsonb, NULL, %s)",
                   (json.dumps(bad) if bad is not None else None, NOW))
    assert err.value.sqlstate == "LTG02"


def test_eight_levels_of_nesting_are_fine(db):
    created, _ = play(db, "alice", "slots", {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}})
    assert created


def test_future_week_cannot_be_played(db):
    with pytest.raises(psycopg.Error) as err:
        play(db, "alice", "slots", week="2026-11-23")
    assert err.value.sqlstate == "LTG03"


def test_play_after_the_draw_updates_game_played(db):  # spec 5.8.2 #9
    add_shares(db, ("alice", 5.0, "2026-11-10 00:00"))
    db.execute("SELECT run_lottery_draw('2026-11-09', '2026-11-16 00:01+00')")
    play(db, "alice", "scratch_card", week="2026-11-12")
    assert db.execute("SELECT game_played FROM lottery_results WHERE user_id = 'alice'").fetchone()[0] == "scratch_card"


def history(db, user, limit=20, offset=0, game_type=None):
    return db.execute("SELECT get_game_history(%s, %s, %s, %s)", (user, limit, offset, game_type)).fetchone()[0]


def test_history_is_own_newest_first_and_paginated(db):
    for i, g in enumerate(["hammer", "slots", "horse_race", "scratch_card"]):
        play(db, "alice", g, now=f"2026-11-19 1{i}:00+00")
    play(db, "bob", "hammer")
    got = history(db, "alice")
    assert [s["gameType"] for s in got] == ["scratch_card", "horse_race", "slots", "hammer"]
    assert [s["gameType"] for s in history(db, "alice", limit=2, offset=1)] == ["horse_race", "slots"]
    assert [s["gameType"] for s in history(db, "alice", game_type="slots")] == ["slots"]
    assert history(db, "alice", offset=10) == []
    assert len(history(db, "bob")) == 1


@pytest.mark.parametrize("limit, offset", [(0, 0), (101, 0), (-1, 0), (20, -1), (None, 0), (20, None)])
def test_history_pagination_bounds(db, limit, offset):
    with pytest.raises(psycopg.Error) as err:
        history(db, "alice", limit, offset)
    assert err.value.sqlstate == "LTP01"


def test_history_bad_game_type(db):
    with pytest.raises(psycopg.Error) as err:
        history(db, "alice", game_type="poker")
    assert err.value.sqlstate == "LTG01"


def test_game_session_json_is_the_stored_row(db):
    _, session = play(db, "alice", "horse_race", {"winner": "wed"})
    assert db.execute("SELECT game_session_json(s) FROM game_sessions s").fetchone()[0] == session
    assert set(session) == {"id", "gameType", "weekStart", "playedAt", "lastPlayedAt", "playCount", "resultData"}


def test_thirty_plays_a_minute_then_refused_with_the_wait(db):
    for i in range(30):
        play(db, "alice", ["hammer", "slots"][i % 2], now=f"2026-11-19 12:00:{i:02d}+00")
    play(db, "bob", "slots", now="2026-11-19 12:00:30+00")  # others are not affected
    with pytest.raises(psycopg.Error) as err:
        play(db, "alice", "slots", now="2026-11-19 12:00:45+00")
    assert err.value.sqlstate == "LTR01" and err.value.diag.message_detail == "15"
    db.rollback()


def test_the_window_runs_out(db):
    for i in range(30):
        play(db, "alice", "hammer", now=f"2026-11-19 12:00:{i:02d}+00")
    created, session = play(db, "alice", "hammer", now="2026-11-19 12:01:00+00")
    assert session["playCount"] == 31
