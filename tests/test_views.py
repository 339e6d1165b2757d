"""db/functions/80_views.sql: the BI views."""

from datetime import date

from db import apply as db_apply
from tests.helpers import add_shares, database_without, readme_bi_views

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


def test_engagement_leaves_out_a_week_whose_next_week_is_still_open(db):
    """Only whole next weeks compare: last week's miners are not yet counted against this one."""
    open_week, last_week, week_before = db.execute(
        "SELECT w, w - 7, w - 14 FROM lottery_week_at(now()) AS w").fetchone()
    for week in (week_before, last_week, open_week):
        add_shares(db, ("m", 1.0, f"{week} 00:00"))
    weeks = [w for (w,) in db.execute("SELECT DISTINCT week_start FROM game_engagement_weekly").fetchall()]
    assert weeks == [week_before]


def bi_columns(db) -> dict[str, dict[str, str]]:
    """view -> {column: type} of every relation lottery_bi may read."""
    columns: dict[str, dict[str, str]] = {}
    for view, column, type_name in db.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class c"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE c.relnamespace = 'public'::regnamespace AND has_table_privilege('lottery_bi', c.oid, 'SELECT')"
            " ORDER BY c.relname, a.attnum").fetchall():
        columns.setdefault(view, {})[column] = type_name
    return columns


def test_the_readme_documents_each_bi_view_and_its_columns(db):
    documented = readme_bi_views()
    assert {view: set(cols) for view, cols in bi_columns(db).items()} == documented


def test_every_bi_view_names_its_week_by_a_date(db):
    weeks = {view: cols["week_start"] for view, cols in bi_columns(db).items() if "week_start" in cols}
    assert set(weeks) == {"weekly_rankings", "lottery_draw_results", "game_popularity_weekly",
                          "game_engagement_weekly"}
    assert set(weeks.values()) == {"date"}, weeks


def test_migration_0009_makes_weekly_rankings_week_a_date_for_bi_alone(pg_cluster):
    with database_without(pg_cluster, "0009_weekly_rankings_week_date") as (url, conn):
        # A deployment drawn before 0009, with the grants the views file gave then.
        draw = conn.execute("INSERT INTO lottery_draws (week_start, week_end, status) VALUES"
                            " ('2026-11-16 00:00+00', '2026-11-23 00:00+00', 'completed') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO lottery_results (draw_id, user_id, rank, best_difficulty, best_share_at, xp_awarded)"
                     " VALUES (%s, 'a', 1, 5, '2026-11-17 00:00+00', 100)", (draw,))
        conn.execute("REFRESH MATERIALIZED VIEW weekly_rankings")
        conn.execute("GRANT SELECT ON weekly_rankings TO lottery_bi, lottery_web")
        assert conn.execute("SELECT pg_typeof(week_start)::text FROM weekly_rankings").fetchone() == \
            ("timestamp with time zone",)
        conn.commit()
        lines = []
        db_apply.apply(url, schedule=False, log=lines.append)
        assert "migrations: 1 applied (0009_weekly_rankings_week_date)" in lines
        assert conn.execute("SELECT week_start, user_id, rank, xp_awarded FROM weekly_rankings").fetchall() == \
            [(date(2026, 11, 16), "a", 1, 100)]
        assert conn.execute("SELECT has_table_privilege('lottery_bi', 'weekly_rankings', 'SELECT'),"
                            " has_table_privilege('lottery_web', 'weekly_rankings', 'SELECT')").fetchone() == \
            (True, False)
