"""db/apply.py (`make migrate`): idempotent, adopts an existing mining_events, documents every function,
creates this week's event partitions at once and schedules the pg_cron jobs."""

import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db import apply as db_apply
from db import cluster
from tests.helpers import insert_events, share, add_shares

SCHEMA_SNAPSHOT = """
    SELECT 'function', p.oid::regprocedure::text || md5(pg_get_functiondef(p.oid)) FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
    UNION ALL SELECT 'relation', c.relname || ':' || c.relkind::text FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'trigger', tgname || ':' || tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal
    ORDER BY 1, 2"""


@pytest.fixture
def empty_database(pg_cluster):
    """A database made with CREATE DATABASE, not from the template."""
    name = f"apply_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_cluster.url(name)
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_apply_twice_changes_nothing(empty_database):
    lines = []
    db_apply.apply(empty_database, schedule=False, log=lines.append)
    with psycopg.connect(empty_database) as conn:
        before = conn.execute(SCHEMA_SNAPSHOT).fetchall()
    lines.clear()
    db_apply.apply(empty_database, schedule=False, log=lines.append)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute(SCHEMA_SNAPSHOT).fetchall() == before
    assert lines[0] == "migrations: 0 applied, none pending"
    assert any(line.startswith("functions: ") for line in lines)


def test_existing_mining_events_table_is_adopted(empty_database):
    with psycopg.connect(empty_database) as conn:
        conn.execute("CREATE TABLE mining_events (ts timestamptz NOT NULL, event_type text NOT NULL,"
                     " payload jsonb, source text)")
        insert_events(conn, [share("alice", 50.0, "2026-11-17 00:00"), share("alice", 70.0, "2026-11-18 00:00"),
                             share("bob", 60.0, "2026-11-18 00:00")], fold_now=False)  # nothing to fold with yet
    lines = []
    db_apply.apply(empty_database, schedule=False, log=lines.append)
    assert "aggregates: built from 3 existing events" in lines
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT user_id, best_difficulty, share_count FROM share_weekly_best"
                            " ORDER BY user_id").fetchall() == [("alice", 70.0, 2), ("bob", 60.0, 1)]
        assert [c for (c,) in conn.execute("SELECT column_name FROM information_schema.columns"
                                           " WHERE table_name = 'mining_events' ORDER BY ordinal_position")] == \
            ["ts", "event_type", "payload", "source", "seq"]
        # A plain table is partitioned by week in place, its extra columns kept.
        assert conn.execute("SELECT DISTINCT (SELECT relkind::text FROM pg_class WHERE oid = 'mining_events'::regclass),"
                            " e.tableoid::regclass::text FROM mining_events e").fetchall() == \
            [("p", "mining_events_p20261116")]
        add_shares(conn, ("carol", 1.0, "2026-11-19 00:00"))  # and the fold now follows new ones
        assert conn.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0] == 3


def test_apply_creates_missing_event_partitions_at_once(fresh_db, fresh_db_url):
    week = fresh_db.execute("SELECT lottery_week_at(now()) + 7").fetchone()[0]
    fresh_db.execute(f"DROP TABLE mining_events_p{week:%Y%m%d}")
    fresh_db.commit()
    lines = []
    db_apply.apply(fresh_db_url, schedule=False, log=lines.append)
    assert "partitions: 1 created, 0 dropped" in lines
    assert fresh_db.execute("SELECT count(*) FROM mining_events_partitions WHERE week_start = %s",
                            (week,)).fetchone() == (1,)


def test_every_cron_job_is_scheduled_with_its_own_command(fresh_db, fresh_db_url):
    dbname = fresh_db.info.dbname
    params = conninfo_to_dict(fresh_db_url)
    params["dbname"] = "postgres"
    try:
        assert db_apply.schedule_draws(fresh_db, fresh_db_url, lambda *_: None)
        with psycopg.connect(make_conninfo(**params)) as cron:
            jobs = cron.execute("SELECT jobname, schedule, command, database FROM cron.job"
                                " WHERE database = %s ORDER BY jobname", (dbname,)).fetchall()
        assert jobs == [(f"lottery-catchup:{dbname}", "11 * * * *", "CALL run_scheduled_job('lottery-catchup')", dbname),
                        (f"lottery-draw:{dbname}", "1 0 * * 1", "CALL run_scheduled_job('lottery-draw')", dbname),
                        (f"lottery-fold:{dbname}", "* * * * *", "CALL fold_events_for(55)", dbname),
                        (f"lottery-partitions:{dbname}", "7 0 * * *", "CALL run_scheduled_job('lottery-partitions')",
                         dbname)]
    finally:
        with psycopg.connect(make_conninfo(**params), autocommit=True) as cron:
            cron.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE database = %s", (dbname,))


def test_every_function_and_view_has_a_comment(db):
    missing = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
        UNION ALL
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
          AND obj_description(c.oid, 'pg_class') IS NULL""").fetchall()
    assert missing == []


def test_security_definer_functions_pin_search_path(db):
    unpinned = db.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
          AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')""").fetchall()
    assert unpinned == []
    assert db.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
                      " AND prosecdef").fetchone()[0] >= 10


IMMUTABLE_SQL_FUNCTIONS = """
    SELECT p.oid::regprocedure::text, p.proname, pg_get_function_arguments(p.oid),
           pg_get_function_result(p.oid), p.prosrc
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'sql'
    WHERE p.pronamespace = 'public'::regnamespace AND p.provolatile = 'i' AND p.prosqlbody IS NULL
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1"""

# Every function and operator a parse tree calls, by the oid of the function behind it.
CALLED_MUTABLE = r"""
    SELECT DISTINCT p.proname, c.oid::regprocedure::text,
           CASE c.provolatile WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END
    FROM pg_proc p
    CROSS JOIN LATERAL regexp_matches(p.prosqlbody::text, ':(?:funcid|opfuncid|aggfnoid|winfnoid) (\d+)', 'g') AS m
    JOIN pg_proc c ON c.oid = m[1]::oid
    WHERE p.pronamespace = pg_my_temp_schema() AND c.provolatile <> 'i'
    ORDER BY 1, 2"""


def test_no_immutable_sql_function_calls_a_stable_or_volatile_one(db):
    """PostgreSQL takes an IMMUTABLE label on trust: it may fold such a call into a
    constant (in a plan, an index) and will not inline it when the body is mutable. Each
    IMMUTABLE SQL function's body is compiled again as a BEGIN ATOMIC copy in pg_temp,
    whose stored parse tree names every function and operator it calls, built-ins included."""
    functions = db.execute(IMMUTABLE_SQL_FUNCTIONS).fetchall()
    assert len(functions) >= 20
    for _, name, arguments, result, body in functions:
        db.execute(sql.SQL("CREATE FUNCTION pg_temp.{}({}) RETURNS {} LANGUAGE sql BEGIN ATOMIC {}\n; END").format(
            sql.Identifier(name), sql.SQL(arguments), sql.SQL(result), sql.SQL(body.strip().rstrip(";"))))
    mislabelled = [f"{name} calls {called}, {volatility}" for name, called, volatility in db.execute(CALLED_MUTABLE)]
    assert mislabelled == [], "IMMUTABLE SQL functions calling mutable ones:\n" + "\n".join(mislabelled)


def test_web_role_may_execute_the_api_but_not_public(db):
    for fn in ("get_weekly_game_data(text, date, timestamptz)", "record_game_session(text, text, jsonb, date, timestamptz)",
               "get_current_lottery(text, timestamptz)", "run_lottery_draw(date, timestamptz)"):
        assert db.execute("SELECT has_function_privilege('lottery_web', %s, 'EXECUTE'),"
                          " has_function_privilege('public', %s, 'EXECUTE')", (fn, fn)).fetchone() == (True, False)


def test_a_dba_calls_the_draw_without_setting_search_path(db):
    db.execute("SET LOCAL search_path = DEFAULT")
    row = db.execute("SELECT week_start, status FROM run_lottery_draw('2026-11-16')").fetchone()
    assert row[1] == "completed"


def test_without_pg_cron_everything_else_applies_and_it_says_so(tmp_path):
    """A server without pg_cron in shared_preload_libraries: no schedule, said plainly."""
    datadir, port = tmp_path / "nocron", cluster.free_port()
    cluster.start(datadir, port, overrides={"shared_preload_libraries": "''"})
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        url = f"postgresql://postgres@127.0.0.1:{port}/app"
        lines = []
        db_apply.apply(url, schedule=True, log=lines.append)
        assert any("the weekly draw is NOT scheduled" in line for line in lines), lines
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT calculate_xp_for_rank(1)").fetchone()[0] == 100
    finally:
        cluster.stop(datadir, mode="immediate")
