"""db/functions/30_ranking.sql: live rank, network difficulty, found blocks."""

import random

import psycopg
import pytest

from tests.helpers import add_shares, insert_events, share, utc

WEEK = "2026-11-16"


def live(db, user, week=WEEK):
    return db.execute("SELECT rank, participants FROM get_live_rank(%s, %s)", (user, week)).fetchone()


def test_live_rank_equals_final_rank_for_the_same_data(db):
    rng = random.Random(7)
    events = []
    for i in range(400):
        user = f"u{rng.randrange(60)}"
        diff = float(rng.choice([10, 20, 30, 40, 50]))  # many ties on purpose
        ts = f"2026-11-{rng.randrange(16, 23)} {rng.randrange(24):02d}:{rng.randrange(2) * 30:02d}"
        events.append(share(user, diff, ts))
    insert_events(db, events)
    users = [r[0] for r in db.execute("SELECT user_id FROM share_weekly_best WHERE week_start = %s", (WEEK,))]
    live_ranks = {u: live(db, u) for u in users}
    db.execute("SELECT run_lottery_draw(%s, '2026-11-23 00:01+00')", (WEEK,))
    final = dict(db.execute("SELECT user_id, rank FROM lottery_results").fetchall())
    assert {u: r for u, (r, _) in live_ranks.items()} == final
    assert {n for _, n in live_ranks.values()} == {len(users)}


def test_live_rank_without_shares_is_zero(db):
    add_shares(db, ("a", 5.0, "2026-11-17 00:00"))
    assert live(db, "nobody") == (0, 1)
    assert live(db, "a") == (1, 1)


def test_live_rank_defaults_to_the_open_week(db):
    add_shares(db, ("a", 5.0, "2026-11-24 00:00"))
    assert db.execute("SELECT rank FROM get_live_rank('a', NULL, '2026-11-25 00:00+00')").fetchone()[0] == 1


@pytest.mark.parametrize("user", ["", "x" * 129, None])
def test_invalid_user_id_is_rejected(db, user):
    with pytest.raises(psycopg.Error) as err:
        live(db, user)
    assert err.value.sqlstate == "LTU01"


def test_network_difficulty_is_latest_valid_value_at_or_before(db):
    assert db.execute("SELECT network_difficulty_at('2026-11-20')").fetchone()[0] == 86388558925171
    insert_events(db, [(utc("2026-11-10 00:00"), "new_block_network", {"diff": 9e13}),
                       (utc("2026-11-18 00:00"), "new_block_network", {"diff": 1.1e14}),
                       (utc("2026-11-19 00:00"), "new_block_network", {"diff": "garbage"}),
                       (utc("2026-11-25 00:00"), "new_block_network", {"diff": 1.3e14})])
    assert db.execute("SELECT network_difficulty_at('2026-11-17 23:59:59Z')").fetchone()[0] == 9e13
    assert db.execute("SELECT network_difficulty_at('2026-11-22 23:59:59Z')").fetchone()[0] == 1.1e14
    assert db.execute("SELECT network_difficulty_at('2026-11-26')").fetchone()[0] == 1.3e14


def test_block_found_only_in_its_week_and_for_its_user(db):
    insert_events(db, [(utc("2026-11-22 23:59:59.999999"), "block_found", {"user": "lucky", "height": 900000})])
    assert db.execute("SELECT user_found_block('lucky', '2026-11-16'), user_found_block('lucky', '2026-11-23'),"
                      " user_found_block('other', '2026-11-16')").fetchone() == (True, False, False)
