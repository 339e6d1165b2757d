"""db/functions/80_views.sql: the BI views."""

from tests.helpers import add_shares

NOW = "2026-11-24 10:00+00"


def play(db, user, game, week):
    db.execute("SELECT record_game_session(%s, %s, '{}', %s, %s)", (user, game, week, NOW))


def test_game_popularity_per_week(db):
    for user in ("a", "b", "c"):
        play(db, user, "slots", "2026-11-16")
    play(db, "a", "slots", "2026-11-16")
    play(db, "a", "hammer", "2026-11-16")
    play(db, "a", "hammer", "2026-11-09")
    rows = db.execute("SELECT week_start::text, game_type, players, plays, pct_of_sessions"
                      " FROM game_popularity_weekly ORDER BY 1, 2").fetchall()
    assert [(w, g, p, n, str(pct)) for w, g, p, n, pct in rows] == [
        ("2026-11-09", "hammer", 1, 1, "100.0"),
        ("2026-11-16", "hammer", 1, 1, "25.0"),
        ("2026-11-16", "slots", 3, 4, "75.0")]


def test_engagement_compares_players_with_non_players_next_week(db):
    # Week of 11-09: p1, p2 play; n1, n2 do not. Next week players mine more.
    add_shares(db, *[(u, 1.0, "2026-11-10 00:00") for u in ("p1", "p2", "n1", "n2")])
    add_shares(db, *[("p1", 1.0, "2026-11-17 00:00")] * 4, *[("p2", 1.0, "2026-11-17 00:00")] * 2,
               ("n1", 1.0, "2026-11-17 00:00"))
    play(db, "p1", "slots", "2026-11-09")
    play(db, "p2", "hammer", "2026-11-09")
    rows = db.execute("SELECT played, miners, avg_shares, pct_mined_next_week, avg_shares_next_week"
                      " FROM game_engagement_weekly WHERE week_start = '2026-11-09' ORDER BY played").fetchall()
    assert [(p, m, str(a), str(pct), str(nxt)) for p, m, a, pct, nxt in rows] == [
        (False, 2, "1.0", "50.0", "0.5"),
        (True, 2, "1.0", "100.0", "3.0")]


def test_xp_total_is_the_sum_of_the_ledger(db):
    db.execute("INSERT INTO xp_transactions (user_id, amount, source, reference_id)"
               " VALUES ('a', 10, 'badge', 'b1'), ('a', 25, 'lottery', 'd1'), ('b', 5, 'lottery', 'd1')")
    assert db.execute("SELECT user_id, xp_total FROM user_xp_totals ORDER BY 1").fetchall() == [("a", 35), ("b", 5)]
