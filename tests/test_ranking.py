"""db/functions/30_ranking.sql: live rank, network difficulty, found blocks."""

import json
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


def test_rank_page_is_ranked_weeks_order_from_any_offset(db):
    rng = random.Random(11)
    insert_events(db, [share(f"p{rng.randrange(150):03d}", float(rng.choice([3, 7, 7, 50, 1e4, 1e4, 2e9])),
                             f"2026-11-{rng.randrange(16, 23)} {rng.randrange(2):02d}:00") for _ in range(600)])
    ranked = db.execute("SELECT rank, user_id, best_difficulty, best_at FROM ranked_week(%s)", (WEEK,)).fetchall()
    for offset in range(len(ranked) + 2):
        page = db.execute("SELECT * FROM rank_page(%s, %s, 4)", (WEEK, offset)).fetchall()
        assert page == ranked[offset:offset + 4], offset


def scanned_rows(db, query, params) -> int:
    """The most rows any scan of share_weekly_best read (returned or filtered out) in the
    plans of `query` and of every statement it runs inside (auto_explain, nested)."""
    notices = []

    def handler(diagnostic) -> None:
        notices.append(diagnostic.message_primary or "")  # read now: it is gone once the handler returns

    db.add_notice_handler(handler)
    db.execute("LOAD 'auto_explain'")
    for name, value in (("log_min_duration", "0"), ("log_analyze", "on"), ("log_nested_statements", "on"),
                        ("log_format", "json"), ("log_level", "notice"), ("log_timing", "off")):
        db.execute(f"SET LOCAL auto_explain.{name} = {value}")
    try:
        db.execute(query, params).fetchall()
    finally:
        db.execute("SET LOCAL auto_explain.log_min_duration = -1")
        db.remove_notice_handler(handler)
    nodes = [json.loads(n.split("plan:", 1)[1])["Plan"] for n in notices if "plan:" in n]
    assert nodes, "no plan was logged"
    most = 0
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node.get("Relation Name") == "share_weekly_best":
            most = max(most, node["Actual Rows"] + node.get("Rows Removed by Filter", 0))
    return most


def test_a_live_rank_and_a_page_read_one_bucket_not_the_week(db):
    """The bucket bounds of ranked_week are ranges of the rank index: a rank reads the
    user's bucket, a page the rows from its first bucket on, never the whole week."""
    insert_events(db, [share(f"w{i:04d}", 1000.0 * 1.01 ** i, "2026-11-17 00:00") for i in range(3000)])
    assert scanned_rows(db, "SELECT * FROM get_live_rank('w1500', %s)", (WEEK,)) < 10
    assert scanned_rows(db, "SELECT * FROM rank_page(%s, 1500, 10)", (WEEK,)) < 30
    assert scanned_rows(db, "SELECT count(*) FROM ranked_week(%s)", (WEEK,)) == 3000  # what a scan would read
