"""db/functions/50_game_data.sql: WeeklyGameData and the four game views."""

import json

import psycopg
import pytest

from db import apply as db_apply
from tests.helpers import add_shares, database_without, hash_for, insert_events, utc

WEEK = "2026-11-16"
MIDWEEK = "2026-11-19 12:00+00"

# The seed's TypeScript interface WeeklyGameData, key by key.
TS_INTERFACE = {
    "weekStart": str, "weekEnd": str, "bestDifficulty": (int, float), "bestHash": str,
    "networkDifficulty": (int, float), "progressRatio": (int, float), "dailyBestDiffs": list,
    "totalShares": int, "weeklyRank": int, "percentile": (int, float), "blockFound": bool,
}


def game_data(db, user, week=WEEK, now=MIDWEEK):
    return db.execute("SELECT get_weekly_game_data(%s, %s, %s)", (user, week, now)).fetchone()[0]


def game(db, user, game_type, week=WEEK, now=MIDWEEK):
    return db.execute("SELECT get_game_data(%s, %s, %s, %s)", (user, game_type, week, now)).fetchone()[0]


def test_shape_matches_the_frontend_interface_exactly(db):  # spec 5.8.1 #24
    add_shares(db, ("alice", 5000.0, "2026-11-17 01:00"))
    data = game_data(db, "alice")
    assert list(data) == list(TS_INTERFACE)  # and in its order
    assert list(game(db, "alice", "slots")) == [*TS_INTERFACE, "game"]
    for key, kind in TS_INTERFACE.items():
        assert isinstance(data[key], kind) and not (kind is int and isinstance(data[key], bool)), key
    assert len(data["dailyBestDiffs"]) == 7
    assert all(isinstance(v, (int, float)) for v in data["dailyBestDiffs"])


def test_values_for_a_miner(db):
    add_shares(db, ("alice", 1000.0, "2026-11-16 01:00"), ("alice", 5000.0, "2026-11-17 01:00"),
               ("alice", 5000.0, "2026-11-17 02:00"), ("bob", 9000.0, "2026-11-18 00:00"))
    insert_events(db, [(utc("2026-11-18 00:00"), "new_block_network", {"diff": 1e14}),
                       (utc("2026-11-18 05:00"), "block_found", {"user": "alice"})])
    assert game_data(db, "alice") == {
        "weekStart": "2026-11-16T00:00:00Z", "weekEnd": "2026-11-22T23:59:59Z",
        "bestDifficulty": 5000, "bestHash": hash_for(5000.0), "networkDifficulty": 1e14,
        "progressRatio": pytest.approx(0.2642121431668585), "dailyBestDiffs": [1000, 5000, 0, 0, 0, 0, 0],
        "totalShares": 3, "weeklyRank": 2, "percentile": 50.0, "blockFound": True}


def test_no_shares_gives_zeros(db):  # spec 5.8.2 #8
    data = game_data(db, "nobody")
    assert data["bestDifficulty"] == 0 and data["bestHash"] == "" and data["totalShares"] == 0
    assert data["weeklyRank"] == 0 and data["percentile"] == 0 and data["progressRatio"] == 0
    assert data["dailyBestDiffs"] == [0] * 7 and data["blockFound"] is False
    assert data["networkDifficulty"] == 86388558925171


def test_missing_days_are_zero_and_all_days_present(db):  # spec 5.8.1 #19, #20
    add_shares(db, ("alice", 10.0, "2026-11-16 00:00"), ("alice", 30.0, "2026-11-18 23:59:59.999999"),
               ("alice", 70.0, "2026-11-22 23:59:59.999999"))
    assert game_data(db, "alice")["dailyBestDiffs"] == [10, 0, 30, 0, 0, 0, 70]
    add_shares(db, *[("bob", float(i + 1), f"2026-11-{16 + i} 12:00") for i in range(7)])
    assert game_data(db, "bob")["dailyBestDiffs"] == [1, 2, 3, 4, 5, 6, 7]


def test_rank_is_final_once_drawn(db):
    add_shares(db, ("a", 10.0, "2026-11-17 00:00"), ("b", 20.0, "2026-11-17 00:00"))
    db.execute("SELECT run_lottery_draw(%s, '2026-11-23 00:01+00')", (WEEK,))
    add_shares(db, ("a", 99.0, "2026-11-22 23:00"))  # arrives after the draw
    data = game_data(db, "a", now="2026-11-24 00:00+00")
    assert (data["weeklyRank"], data["percentile"]) == (2, 50.0)


def test_default_week_is_the_open_week_and_network_is_now(db):
    insert_events(db, [(utc("2026-11-24 00:00"), "new_block_network", {"diff": 1.2e14}),
                       (utc("2026-11-26 00:00"), "new_block_network", {"diff": 1.3e14})])
    data = db.execute("SELECT get_weekly_game_data('a', NULL, '2026-11-25 00:00+00')").fetchone()[0]
    assert data["weekStart"] == "2026-11-23T00:00:00Z" and data["networkDifficulty"] == 1.2e14


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
def test_game_data_is_identical_under_any_session_timezone(db, zone):
    add_shares(db, ("a", 10.0, "2026-11-16 00:00"), ("a", 20.0, "2026-11-22 23:59:59.999999"))
    db.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
    data = game_data(db, "a")
    assert data["weekStart"] == "2026-11-16T00:00:00Z" and data["dailyBestDiffs"] == [10, 0, 0, 0, 0, 0, 20]


def test_hammer_view(db):  # spec 5.8.2 #7
    add_shares(db, ("a", 1e7, "2026-11-17 00:00"))
    insert_events(db, [(utc("2026-11-16 00:00"), "new_block_network", {"diff": 1e14})])
    g = game(db, "a", "hammer")
    assert g["game"] == {"logBest": pytest.approx(7), "logNetwork": pytest.approx(14), "progressRatio": 0.5}
    assert g["progressRatio"] == 0.5


def test_horse_race_view_places_days(db):
    add_shares(db, ("a", 30.0, "2026-11-16 00:00"), ("a", 50.0, "2026-11-18 00:00"), ("a", 30.0, "2026-11-21 00:00"))
    race = game(db, "a", "horse_race")["game"]
    assert race["winner"] == "wed"
    assert [(h["day"], h["bestDifficulty"], h["place"]) for h in race["horses"]] == [
        ("mon", 30, 2), ("tue", 0, 4), ("wed", 50, 1), ("thu", 0, 5), ("fri", 0, 6), ("sat", 30, 3), ("sun", 0, 7)]


def test_slots_view_uses_the_best_hash(db):
    add_shares(db, ("a", 7.0, "2026-11-17 00:00"))
    g = game(db, "a", "slots")
    assert g["game"]["reels"] == db.execute("SELECT extract_slot_reels(%s)", (g["bestHash"],)).fetchone()[0]
    assert game(db, "nobody", "slots")["game"]["reels"] == ["0", "0", "0"]


def test_scratch_card_view(db):
    add_shares(db, *[(f"u{i}", float(100 - i), "2026-11-17 00:00") for i in range(12)])
    card = game(db, "u10", "scratch_card")["game"]
    assert card == {"bestDifficulty": 90, "weeklyRank": 11, "percentile": 16.7, "tier": "Top 50", "xp": 50}
    assert game(db, "nobody", "scratch_card")["game"]["tier"] == "Did not mine"


@pytest.mark.parametrize("bad", ["poker", "", "HAMMER", None, "hammer'; --"])
def test_invalid_game_type(db, bad):
    with pytest.raises(psycopg.Error) as err:
        game(db, "a", bad)
    assert err.value.sqlstate == "LTG01"


def test_game_view_works_on_any_weekly_data_object(db):
    data = {"bestDifficulty": 100, "networkDifficulty": 10000, "progressRatio": 0.5, "bestHash": "00ab12cd",
            "weeklyRank": 0, "percentile": 0, "dailyBestDiffs": [0, 0, 0, 0, 0, 0, 5]}
    view = lambda g: db.execute("SELECT game_view(%s, %s::jsonb)", (g, json.dumps(data))).fetchone()[0]
    assert view("hammer") == {"logBest": 2, "logNetwork": 4, "progressRatio": 0.5}
    assert view("slots") == {"reels": ["a", "1", "c"]}
    assert view("horse_race")["winner"] == "sun"
    assert view("scratch_card")["tier"] == "Did not mine"


def test_migration_0010_lets_the_json_versions_replace_the_jsonb_ones(pg_cluster):
    """CREATE OR REPLACE cannot change a return type: a deployment holding the jsonb versions
    gets the json ones (members in the interface's order) from the next apply."""
    with database_without(pg_cluster, "0010_weekly_game_data_json") as (url, conn):
        conn.execute("CREATE FUNCTION get_weekly_game_data(text, date DEFAULT NULL, timestamptz DEFAULT now())"
                     " RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$")
        conn.execute("CREATE FUNCTION get_game_data(text, text, date DEFAULT NULL, timestamptz DEFAULT now())"
                     " RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$")
        conn.commit()
        lines = []
        db_apply.apply(url, schedule=False, log=lines.append)
        assert "migrations: 1 applied (0010_weekly_game_data_json)" in lines
        assert list(conn.execute("SELECT get_weekly_game_data('alice', %s)", (WEEK,)).fetchone()[0]) == \
            list(TS_INTERFACE)


def test_network_difficulty_of_a_week_ends_with_it_under_a_clock_change(db):
    """Berlin moves its clocks back on 2026-10-25: the week still ends Monday 00:00 UTC, so a
    difficulty change half an hour later belongs to the next week."""
    insert_events(db, [(utc("2026-10-20 00:00"), "new_block_network", {"diff": 1e14}),
                       (utc("2026-10-26 00:30"), "new_block_network", {"diff": 2e14})])
    db.execute("SELECT set_config('TimeZone', 'Europe/Berlin', true)")
    assert game_data(db, "a", "2026-10-19", "2026-11-01 00:00+00")["networkDifficulty"] == 1e14
