"""db/functions/70_lottery_read.sql: draws for the frontend and all-time stats."""

import hashlib

import psycopg
import pytest

from tests.helpers import add_shares

NOW = "2026-11-24 10:00+00"


def draw_week(db, week, *shares):
    add_shares(db, *shares)
    db.execute("SELECT run_lottery_draw(%s, %s)", (week, NOW))


def test_current_draw_with_my_result_and_top10(db):  # spec 5.8.2 #10
    draw_week(db, "2026-11-09", ("a", 1.0, "2026-11-10 00:00"))
    draw_week(db, "2026-11-16", *[(f"u{i:02d}", float(100 - i), "2026-11-17 00:00") for i in range(15)])
    db.execute("INSERT INTO users VALUES ('u00', 'Satoshi')")
    got = db.execute("SELECT get_current_lottery('u12', %s)", (NOW,)).fetchone()[0]
    assert got["weekStart"] == "2026-11-16T00:00:00Z" and got["weekEnd"] == "2026-11-22T23:59:59Z"
    assert got["totalParticipants"] == 15 and got["status"] == "completed"
    assert got["nextDrawAt"] == "2026-11-30T00:01:00Z"
    mine = got["myResult"]
    salt = mine.pop("pseudonymSalt")
    assert mine.pop("pseudonym") == hashlib.sha256(bytes.fromhex(salt) + b"u12").hexdigest()
    assert mine == {"rank": 13, "userId": "u12", "displayName": "u12", "bestDifficulty": 88,
                    "xpAwarded": 50, "gamePlayed": None}
    assert [r["rank"] for r in got["top10"]] == list(range(1, 11))
    # Others by display name, else a shortened id that never shows a short id whole; no ids.
    assert [r["displayName"] for r in got["top10"]] == ["Satoshi"] + ["…"] * 9
    assert not any({"userId", "pseudonym", "pseudonymSalt"} & set(r) for r in got["top10"])


def test_my_result_is_null_for_a_non_participant(db):
    draw_week(db, "2026-11-16", ("a", 1.0, "2026-11-17 00:00"))
    assert db.execute("SELECT get_current_lottery('stranger', %s)", (NOW,)).fetchone()[0]["myResult"] is None


def test_draw_by_week_any_day_names_it(db):  # spec 5.8.2 #11
    draw_week(db, "2026-11-09", ("a", 1.0, "2026-11-10 00:00"))
    draw_week(db, "2026-11-16", ("b", 1.0, "2026-11-17 00:00"))
    got = db.execute("SELECT get_lottery_by_week('a', '2026-11-15', %s)", (NOW,)).fetchone()[0]
    assert got["weekStart"] == "2026-11-09T00:00:00Z" and got["myResult"]["rank"] == 1


def test_missing_draws_raise_not_found(db):
    for sql in ("SELECT get_current_lottery('a')", "SELECT get_lottery_by_week('a', '2020-01-01')"):
        with pytest.raises(psycopg.Error) as err:
            db.execute(sql)
        assert err.value.sqlstate == "LTN01" and err.value.diag.message_hint
        db.rollback()


def test_stats_all_time(db):  # spec 5.8.2 #12
    # alice: 3 consecutive weeks up to the latest draw, after a gap.
    draw_week(db, "2026-10-19", ("alice", 1.0, "2026-10-20 00:00"))
    draw_week(db, "2026-11-02", ("alice", 5.0, "2026-11-03 00:00"), *[(f"x{i}", 9.0, "2026-11-03 00:00") for i in range(60)])
    draw_week(db, "2026-11-09", ("alice", 1.0, "2026-11-10 00:00"))
    draw_week(db, "2026-11-16", ("alice", 1.0, "2026-11-17 00:00"), ("bob", 2.0, "2026-11-17 00:00"))
    db.execute("SELECT record_game_session('alice', 'slots', '{}', '2026-11-16', %s)", (NOW,))
    db.execute("SELECT record_game_session('alice', 'slots', '{}', '2026-11-16', %s)", (NOW,))
    db.execute("SELECT record_game_session('alice', 'hammer', '{}', '2026-11-16', %s)", (NOW,))
    stats = db.execute("SELECT get_lottery_stats('alice')").fetchone()[0]
    assert stats == {"totalWeeksParticipated": 4, "bestRank": 1, "averageRank": 16.25,
                     "totalXpFromLottery": 100 + 25 + 100 + 100, "mostPlayedGame": "slots",
                     "weeksInTop10": 3, "weeksInTop50": 3, "weeksInTop100": 4, "currentStreak": 3}


def test_stats_for_a_newcomer(db):
    assert db.execute("SELECT get_lottery_stats('new')").fetchone()[0] == {
        "totalWeeksParticipated": 0, "bestRank": 0, "averageRank": 0, "totalXpFromLottery": 0,
        "mostPlayedGame": None, "weeksInTop10": 0, "weeksInTop50": 0, "weeksInTop100": 0, "currentStreak": 0}


def test_streak_is_zero_when_the_latest_week_was_missed(db):
    draw_week(db, "2026-11-09", ("alice", 1.0, "2026-11-10 00:00"))
    draw_week(db, "2026-11-16", ("bob", 1.0, "2026-11-17 00:00"))
    assert db.execute("SELECT get_lottery_stats('alice')").fetchone()[0]["currentStreak"] == 0


def test_draw_and_result_json_from_rows(db):
    draw_week(db, "2026-11-16", ("a", 2.0, "2026-11-17 00:00"), ("b", 1.0, "2026-11-17 00:00"))
    result = db.execute("SELECT lottery_result_json(r, 'b') FROM lottery_results r WHERE user_id = 'b'").fetchone()[0]
    assert {k: result[k] for k in ("rank", "userId", "displayName", "bestDifficulty", "xpAwarded", "gamePlayed")} \
        == {"rank": 2, "userId": "b", "displayName": "b", "bestDifficulty": 1, "xpAwarded": 100, "gamePlayed": None}
    seen_by_a = db.execute("SELECT lottery_result_json(r, 'a') FROM lottery_results r WHERE user_id = 'b'").fetchone()[0]
    assert seen_by_a == {"rank": 2, "displayName": "…", "bestDifficulty": 1, "xpAwarded": 100, "gamePlayed": None}
    draw = db.execute("SELECT lottery_draw_json(d, 'b', %s) FROM lottery_draws d", (NOW,)).fetchone()[0]
    assert draw["myResult"] == result and len(draw["top10"]) == 2 and draw["nextDrawAt"] == "2026-11-30T00:01:00Z"
    assert draw["rankingFormat"] == 2 and draw["top10"][1] == result
