"""Least privilege: the web, BI and ingest roles reach data only through their API.

Every relation (table, partition, view, materialized view, sequence) and function is
read from the catalog, so one that a migration adds is checked without touching this
file. What each role may do is in ALLOWED; the BI views are the ones docs/bi.md
lists (tests/test_views.py checks that list against the views themselves).
"""

import uuid

import psycopg
import pytest
from psycopg import sql

from tests.helpers import hash_for, readme_bi_views

GROUP_ROLES = ("lottery_web", "lottery_bi", "lottery_ingest")
BI_VIEWS = list(readme_bi_views())

# (relation, privilege) pairs each group role holds, and not one more.
ALLOWED = {
    "lottery_web": set(),  # the web app reads no table or view: it calls functions
    "lottery_bi": {(view, "SELECT") for view in BI_VIEWS},
    "lottery_ingest": {("mining_events", "INSERT"), ("mining_events_seq", "USAGE")},  # the seq default
}

# Every relation of the schema, extension members aside; partitions included.
RELATIONS = """
    SELECT c.oid, c.relname, c.relkind FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY c.relname"""

# Each privilege a role can hold on a relation: any column's counts as the table's.
HELD = """
    SELECT c.relname, p.privilege
    FROM (""" + RELATIONS + """) AS c
    CROSS JOIN LATERAL unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                              ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                                         'TRIGGER'] END) AS p(privilege)
    WHERE CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(%(role)s, c.oid, p.privilege)
               WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                    THEN has_any_column_privilege(%(role)s, c.oid, p.privilege)
               ELSE has_table_privilege(%(role)s, c.oid, p.privilege) END"""

PROJECT_FUNCTIONS = """
    SELECT p.oid, p.oid::regprocedure::text, p.prosecdef, p.provolatile FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')"""

WRITES = {
    "INSERT": "INSERT INTO {table} DEFAULT VALUES",
    "UPDATE": "UPDATE {table} SET {column} = {column} WHERE false",
    "DELETE": "DELETE FROM {table}",
    "TRUNCATE": "TRUNCATE {table}",
}


def relations(db, kinds: str) -> list[str]:
    return [name for _, name, kind in db.execute(RELATIONS).fetchall() if kind in kinds]


def tables_with_a_column(db) -> dict[str, str]:
    """Every table and partition, with its first column that an UPDATE may set (not an
    identity or generated one, which would be refused before the privilege check)."""
    return dict(db.execute(
        "SELECT DISTINCT ON (c.relname) c.relname, a.attname FROM (" + RELATIONS + ") AS c"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        "  AND a.attidentity = '' AND a.attgenerated = ''"
        " WHERE c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum").fetchall())


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


def test_the_readme_names_the_bi_views(db):
    views = set(relations(db, "vm"))
    assert len(BI_VIEWS) >= 5 and set(BI_VIEWS) <= views, set(BI_VIEWS) - views


def test_the_catalog_lists_every_kind_of_relation(db):
    """The lists below come from the catalog: it holds the tables every migration added."""
    kinds = {kind for _, _, kind in db.execute(RELATIONS).fetchall()}
    assert kinds >= {"r", "p", "v", "m", "S"}
    assert {"event_weeks", "share_rank_buckets", "share_rank_bucket_groups", "network_difficulty_changes",
            "blocks_found", "play_rate_limits", "event_partition_policy", "mining_events_default"} <= \
        set(relations(db, "r"))


@pytest.mark.parametrize("role", GROUP_ROLES)
def test_group_roles_hold_only_their_privileges(db, role):
    held = {tuple(row) for row in db.execute(HELD, {"role": role}).fetchall()}
    assert held == ALLOWED[role]
    assert db.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)).fetchone() == (False,)


def test_no_function_is_executable_by_public(db):
    executable = [sig for oid, sig, *_ in db.execute(PROJECT_FUNCTIONS).fetchall()
                  if db.execute("SELECT has_function_privilege('public', %s, 'EXECUTE')", (oid,)).fetchone()[0]]
    assert executable == []


@pytest.mark.parametrize("role, forbidden, allowed", [
    ("lottery_ingest", "a SECURITY DEFINER function but the fold it may ask for", ["fold_pending_events()"]),
    ("lottery_bi", "a SECURITY DEFINER function that may write (VOLATILE)", []),
])
def test_ingest_and_bi_cannot_run_the_owners_writes(db, role, forbidden, allowed):
    reachable = [sig for oid, sig, definer, volatility in db.execute(PROJECT_FUNCTIONS).fetchall()
                 if definer and (role == "lottery_ingest" or volatility == "v")
                 and db.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, oid)).fetchone()[0]]
    assert reachable == allowed, f"{role} may execute {forbidden}"


@pytest.mark.parametrize("group", ["lottery_web", "lottery_bi"])
def test_web_and_bi_roles_cannot_write_any_table_or_sequence(db, login_as, group):
    tables = tables_with_a_column(db)
    conn = login_as(group)
    outcomes = {(table, verb): refused(conn, sql.SQL(template).format(table=sql.Identifier(table),
                                                                     column=sql.Identifier(column)))
                for table, column in tables.items() for verb, template in WRITES.items()}
    outcomes.update({(sequence, "nextval"): refused(conn, sql.SQL("SELECT nextval({})").format(sql.Literal(sequence)))
                     for sequence in relations(db, "S")})
    assert len(outcomes) > 4 * 20
    assert set(outcomes.values()) == {"42501"}, {k: v for k, v in outcomes.items() if v != "42501"}


@pytest.mark.parametrize("group", GROUP_ROLES)
def test_each_role_reads_only_what_it_is_granted(db, login_as, group):
    readable = relations(db, "rpvm")
    conn = login_as(group)
    outcomes = {name: refused(conn, sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(name)))
                for name in readable}
    expected = {name: "allowed" if (name, "SELECT") in ALLOWED[group] else "42501" for name in readable}
    assert outcomes == expected


def test_every_api_function_works_for_the_web_role(login_as):
    conn = login_as("lottery_web")
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


def test_ingested_share_reaches_the_aggregates(db):
    """The insert runs with lottery_ingest's privileges only, and so may the fold it asks for
    (fold_pending_events runs as the owner). In the test's transaction, so nothing stays behind."""
    db.execute("SET LOCAL ROLE lottery_ingest")
    db.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES"
               " ('2026-11-17 00:00+00', 'share_submitted', '{\"user\": \"via_ingest\", \"sdiff\": 9, \"accepted\": true}')")
    assert db.execute("SELECT fold_pending_events()").fetchone() == (1,)
    db.execute("RESET ROLE")
    assert db.execute("SELECT best_difficulty FROM share_weekly_best WHERE user_id = 'via_ingest'").fetchone() == (9.0,)
    assert db.execute("SELECT count(*) FROM event_weeks WHERE week_start = '2026-11-16'").fetchone() == (1,)
