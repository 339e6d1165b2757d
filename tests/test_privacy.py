"""db/functions/35_privacy.sql: how other users appear on public lists, and the opt-out."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import add_shares

ADDRESS = "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"
NOW = "2026-11-24 10:00+00"


@pytest.mark.parametrize("user_id, shown", [
    (ADDRESS, "bc1qxy…0wlh"), ("alice", "a…e"), ("abcdefgh", "ab…gh"), ("abc", "…"), ("x", "…"),
    ("bc1qshort0123", "bc1…123"), ("ünïcødé-ñame-0123", "ünïc…0123"),
])
def test_a_shortened_id_never_shows_an_id_whole(db, user_id, shown):
    got = db.execute("SELECT short_user_id(%s)", (user_id,)).fetchone()[0]
    assert got == shown
    assert len(got.replace("…", "")) <= len(user_id) // 2  # at least half of any id stays hidden


def names_seen_by(db, viewer, *users):
    return [db.execute("SELECT public_name(%s, %s)", (user, viewer)).fetchone()[0] for user in users]


def test_others_see_a_display_name_else_a_short_id_and_everyone_sees_their_own_id(db):
    db.execute("INSERT INTO users (id, display_name) VALUES ('satoshi-nakamoto', 'Satoshi')")
    assert names_seen_by(db, "bob", "satoshi-nakamoto", ADDRESS) == ["Satoshi", "bc1qxy…0wlh"]
    assert names_seen_by(db, ADDRESS, ADDRESS) == [ADDRESS]
    assert names_seen_by(db, "satoshi-nakamoto", "satoshi-nakamoto") == ["Satoshi"]
    assert names_seen_by(db, None, ADDRESS) == ["bc1qxy…0wlh"]  # nobody in particular


def test_opting_out_hides_the_name_from_everyone_but_the_user(db):
    db.execute("INSERT INTO users (id, display_name) VALUES ('satoshi-nakamoto', 'Satoshi')")
    assert db.execute("SELECT get_lottery_privacy('satoshi-nakamoto')").fetchone()[0] == {
        "public": True, "shownAs": "Satoshi", "updatedAt": None}
    got = db.execute("SELECT set_lottery_privacy('satoshi-nakamoto', false, %s)", (NOW,)).fetchone()[0]
    assert got == {"public": False, "shownAs": "Anonymous miner", "updatedAt": "2026-11-24T10:00:00.000000Z"}
    assert db.execute("SELECT get_lottery_privacy('satoshi-nakamoto')").fetchone()[0] == got
    assert names_seen_by(db, "bob", "satoshi-nakamoto") == ["Anonymous miner"]
    assert names_seen_by(db, "satoshi-nakamoto", "satoshi-nakamoto") == ["Satoshi"]
    again = db.execute("SELECT set_lottery_privacy('satoshi-nakamoto', true)").fetchone()[0]
    assert again["public"] is True and again["shownAs"] == "Satoshi"
    assert db.execute("SELECT count(*) FROM lottery_privacy").fetchone()[0] == 1


def test_an_opted_out_user_is_anonymous_on_every_public_list_but_their_own(db):
    add_shares(db, (ADDRESS, 9.0, "2026-11-17 00:00"), ("bob", 5.0, "2026-11-17 00:00"))
    db.execute("SELECT set_lottery_privacy(%s, false)", (ADDRESS,))
    db.execute("SELECT run_lottery_draw('2026-11-16', %s)", (NOW,))
    for viewer, shown in (("bob", "Anonymous miner"), (ADDRESS, ADDRESS)):
        draw = db.execute("SELECT get_current_lottery(%s, %s)", (viewer, NOW)).fetchone()[0]
        board = db.execute("SELECT get_leaderboard(%s, '2026-11-16', 25, 0, %s)", (viewer, NOW)).fetchone()[0]
        near = db.execute("SELECT get_leaderboard_around(%s, '2026-11-16', 5, %s)", (viewer, NOW)).fetchone()[0]
        for rows in (draw["top10"], board["rows"], near["rows"]):
            assert rows[0]["displayName"] == shown, viewer
            assert ("userId" in rows[0]) is (viewer == ADDRESS)
    text = db.execute("SELECT get_leaderboard('bob', '2026-11-16', 25, 0, %s)::text", (NOW,)).fetchone()[0]
    assert ADDRESS not in text


def test_a_privacy_setting_needs_true_or_false(db):
    with pytest.raises(psycopg.Error) as err:
        db.execute("SELECT set_lottery_privacy('alice', NULL)")
    assert err.value.sqlstate == "LTV01" and err.value.diag.message_hint
