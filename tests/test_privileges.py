"""Least privilege: the web, BI and ingest roles reach data only through their API."""

import uuid

import psycopg
import pytest
from psycopg import sql

from tests.helpers import hash_for

# Each table with a column to UPDATE.
TABLES = {"mining_events": "ts", "share_daily_best": "day", "share_weekly_best": "week_start",
          "event_weeks": "week_start", "lottery_draws": "status", "lottery_results": "rank",
          "game_sessions": "play_count", "users": "display_name", "xp_transactions": "amount",
          "notifications": "title"}
WRITES = {
    "INSERT": "INSERT INTO {table} DEFAULT VALUES",
    "UPDATE": "UPDATE {table} SET {column} = {column} WHERE false",
    "DELETE": "DELETE FROM {table}",
    "TRUNCATE": "TRUNCATE {table}",
}


@pytest.fixture
def login_as(pg_cluster, shared_db_name):
    """Connect with a fresh LOGIN role that is a member of the given group role."""
    made = []

    def connect(group: str) -> psycopg.Connection:
        name = f"t_{group}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(pg_cluster.url(shared_db_name), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(name), sql.Identifier(group)))
        made.append(name)
        conn = psycopg.connect(f"postgresql://{name}@{pg_cluster.host}:{pg_cluster.port}/{shared_db_name}")
        made.append(conn)
        return conn

    yield connect
    for item in reversed(made):
        if isinstance(item, psycopg.Connection):
            item.close()
        else:
            with psycopg.connect(pg_cluster.url(shared_db_name), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(item)))


def refused(conn, statement) -> str:
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        conn.rollback()
        return exc.sqlstate
    conn.rollback()
    return "allowed"


@pytest.mark.parametrize("group", ["lottery_web", "lottery_bi"])
def test_web_and_bi_roles_cannot_write_any_table(login_as, group):
    conn = login_as(group)
    outcomes = {(table, verb): refused(conn, sql.SQL(template).format(table=sql.Identifier(table),
                                                                     column=sql.Identifier(column)))
                for table, column in TABLES.items() for verb, template in WRITES.items()}
    assert set(outcomes.values()) == {"42501"}, outcomes


def test_web_role_cannot_read_tables_but_every_api_function_works(login_as):
    conn = login_as("lottery_web")
    assert {t: refused(conn, sql.SQL("SELECT * FROM {}").format(sql.Identifier(t))) for t in TABLES} == \
        {t: "42501" for t in TABLES}
    week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
    assert conn.execute("SELECT get_weekly_game_data('alice')").fetchone()[0]["weeklyRank"] == 0
    assert conn.execute("SELECT get_game_data('alice', 'slots')").fetchone()[0]["game"]["reels"] == ["0", "0", "0"]
    assert conn.execute("SELECT created FROM record_game_session('alice', 'hammer', '{}')").fetchone()[0] is True
    assert len(conn.execute("SELECT get_game_history('alice')").fetchone()[0]) == 1
    assert conn.execute("SELECT get_lottery_stats('alice')").fetchone()[0]["totalWeeksParticipated"] == 0
    drawn = conn.execute("SELECT run_lottery_draw_json(%s::date - 7, 'alice')", (week,)).fetchone()[0]
    assert drawn["status"] == "completed"
    assert conn.execute("SELECT get_current_lottery('alice')").fetchone()[0]["id"] == drawn["id"]
    assert conn.execute("SELECT * FROM get_live_rank('alice')").fetchone() == (0, 0)
    conn.rollback()


def test_ingest_role_may_only_insert_events(login_as):
    conn = login_as("lottery_ingest")
    payload = f'{{"user": "ingested", "sdiff": 5, "accepted": true, "hash": "{hash_for(5.0)}"}}'
    with conn.cursor().copy("COPY mining_events (ts, event_type, payload) FROM STDIN") as copy:
        copy.write_row(("2026-11-17 00:00+00", "share_submitted", payload))
    assert refused(conn, "SELECT count(*) FROM share_weekly_best") == "42501"
    assert refused(conn, "SELECT count(*) FROM mining_events") == "42501"


def test_ingested_share_reaches_the_aggregates(login_as, db):
    conn = login_as("lottery_ingest")
    conn.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES"
                 " ('2026-11-17 00:00+00', 'share_submitted', '{\"user\": \"via_ingest\", \"sdiff\": 9, \"accepted\": true}')")
    conn.commit()
    try:
        assert db.execute("SELECT best_difficulty FROM share_weekly_best WHERE user_id = 'via_ingest'").fetchone() == (9.0,)
    finally:
        db.rollback()
        db.execute("DELETE FROM mining_events WHERE payload->>'user' = 'via_ingest'")
        db.execute("DELETE FROM share_weekly_best WHERE user_id = 'via_ingest'")
        db.execute("DELETE FROM share_daily_best WHERE user_id = 'via_ingest'")
        db.commit()


def test_bi_role_reads_the_views(login_as):
    conn = login_as("lottery_bi")
    for view in ("weekly_rankings", "lottery_draw_results", "game_popularity_weekly",
                 "game_engagement_weekly", "user_xp_totals"):
        conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(view)))
