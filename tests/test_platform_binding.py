"""The platform binding (db/binding/platform.sql): the project applied to a database that
holds the original platform's tables (CONTRACT section 10), a week of shares written as
the platform's collector writes them, and the draw delivering XP into the platform's
xp_ledger and user_gamification exactly once (late registrations included) and its
top-10 notifications into the platform's notifications. Also: the binding's choice at
apply time, and a deployment's own binding file."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql

from db import apply as db_apply
from tests.api.conftest import asgi_client
from tests.api.support import make_settings
from tests.helpers import run_at_once, utc
from tests.test_plpgsql_check import CHECK_OPTIONS, PLPGSQL_FUNCTIONS, Finding, allowed_by, load_allow_list

# The platform's tables as its earlier phases create them (CONTRACT section 10).
PLATFORM_SCHEMA = """
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    btc_address   varchar(62) NOT NULL UNIQUE,
    display_name  varchar(64),
    country_code  char(2),
    created_at    timestamptz DEFAULT now(),
    last_seen     timestamptz,
    is_verified   boolean DEFAULT false
);
CREATE TABLE xp_ledger (
    id               bigserial PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amount           integer NOT NULL,
    source           varchar(32) NOT NULL,
    source_id        varchar(128),
    description      varchar(256),
    created_at       timestamptz NOT NULL DEFAULT now(),
    idempotency_key  varchar(256) UNIQUE
);
CREATE INDEX idx_xp_ledger_user ON xp_ledger (user_id);
CREATE TABLE user_gamification (
    user_id      bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    total_xp     bigint NOT NULL DEFAULT 0,
    level        integer NOT NULL DEFAULT 1,
    level_title  varchar(64) NOT NULL DEFAULT 'Nocoiner',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE notifications (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type          varchar(32) NOT NULL,
    subtype       varchar(64) NOT NULL,
    title         varchar(256) NOT NULL,
    description   text,
    action_url    varchar(256),
    action_label  varchar(64),
    read          boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_notifications_user ON notifications (user_id, created_at DESC);
CREATE TABLE mining_events (
    ts          timestamptz NOT NULL,
    event_type  text NOT NULL,
    source      varchar(16) DEFAULT 'hosted',
    payload     jsonb NOT NULL
);
CREATE INDEX idx_events_type_ts ON mining_events (event_type, ts DESC);
CREATE INDEX idx_events_user ON mining_events ((payload->>'user'));
"""

WEEK = "2026-11-16"
AFTER = "2026-11-23 00:01:00+00"     # the scheduled draw time of WEEK
MINERS = 120
TIERS = [100] * 10 + [50] * 40 + [25] * 50 + [10] * 20   # XP of ranks 1..120
LATE = 10                             # index of the miner (rank 11) who registers after the draw


def address(i: int) -> str:
    """Miner i's BTC address: ckpool's username, the `user` of its shares."""
    return f"bc1qminer{i:03d}" + "x" * 29


def registered(i: int) -> bool:
    """The top 10 and every third miner after them have a platform account."""
    return i < 10 or i % 3 == 0


def had_xp(i: int) -> bool:
    """Registered miners who already hold XP from the platform's other awards."""
    return i in (0, 30, 60)


def collector_events(miners: int = MINERS):
    """(ts, event_type, source, payload) rows as the platform's collector inserts them:
    share payloads {user, worker, client_id, diff, sdiff, accepted, reject_reason, ip}, no
    hash. Miner i's best is 1,000,000 - 1,000 i, so rank i + 1; a rejected share with a
    huge sdiff never counts."""
    start = utc(f"{WEEK} 00:00")
    rows = [(start + timedelta(hours=1), "new_block_network", "hosted",
             {"height": 925000, "hash": "00" * 32, "diff": 1.5e14, "prev_hash": "00" * 32})]
    for i in range(miners):
        for n, sdiff in enumerate((1_000_000.0 - 1_000 * i, 700.0 + i)):
            rows.append((start + timedelta(days=n + 1, minutes=i), "share_submitted", "hosted",
                         {"user": address(i), "worker": f"{address(i)}.rig1", "client_id": i, "diff": 512.0,
                          "sdiff": sdiff, "accepted": True, "reject_reason": None, "ip": "10.0.0.7"}))
        rows.append((start + timedelta(days=4, minutes=i), "share_submitted", "hosted",
                     {"user": address(i), "worker": f"{address(i)}.rig1", "client_id": i, "diff": 512.0,
                      "sdiff": 9e12, "accepted": False, "reject_reason": "Stale", "ip": "10.0.0.7"}))
    return rows


def insert_like_the_collector(conn, rows) -> None:
    """executemany of single-row INSERTs, the collector's flush."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO mining_events (ts, event_type, source, payload) VALUES (%s, %s, %s, %s::jsonb)",
                        [(ts, kind, source, json.dumps(payload)) for ts, kind, source, payload in rows])


def register(conn, i: int) -> int:
    return conn.execute("INSERT INTO users (btc_address, display_name) VALUES (%s, %s) RETURNING id",
                        (address(i), f"Miner {i}")).fetchone()[0]


@pytest.fixture(scope="module")
def platform_template(pg_cluster):
    """A database with the platform's schema and the project applied on it; cloned per test."""
    name = f"platform_tmpl_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    with psycopg.connect(url) as conn:
        conn.execute(PLATFORM_SCHEMA)
    lines: list[str] = []
    db_apply.apply(url, schedule=False, log=lines.append)
    yield name, lines
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def platform_url(platform_template, pg_cluster):
    with pg_cluster.clone(platform_template[0], f"platform_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture
def platform(platform_url):
    """A connection to this test's clone, with the platform's users registered and a week
    of collector events inserted (committed)."""
    with psycopg.connect(platform_url) as conn:
        for i in range(MINERS):
            if registered(i):
                user = register(conn, i)
                if had_xp(i):
                    conn.execute("INSERT INTO xp_ledger (user_id, amount, source, source_id, idempotency_key)"
                                 " VALUES (%s, 1000, 'badge', 'first_share', %s)", (user, f"badge:first_share:{user}"))
                    conn.execute("INSERT INTO user_gamification (user_id, total_xp, level, level_title)"
                                 " VALUES (%s, 1000, 3, 'Hash Pupil')", (user,))
        conn.commit()
        insert_like_the_collector(conn, collector_events())
        conn.commit()
        yield conn


def draw(conn, week=WEEK, now=AFTER):
    return conn.execute("SELECT id, status, total_participants FROM run_lottery_draw(%s, %s)", (week, now)).fetchone()


def platform_xp(conn):
    """{btc_address: (ledger rows of the lottery, their amounts, total_xp)} of every platform user."""
    return {addr: (rows, amount, total) for addr, rows, amount, total in conn.execute("""
        SELECT u.btc_address, count(l.id), coalesce(sum(l.amount), 0), g.total_xp
        FROM users u
        LEFT JOIN xp_ledger l ON l.user_id = u.id AND l.source = 'lottery'
        LEFT JOIN user_gamification g ON g.user_id = u.id
        GROUP BY u.btc_address, g.total_xp""")}


def platform_state(conn):
    """Every count the draw's platform side writes."""
    return conn.execute("""
        SELECT (SELECT count(*) FROM xp_ledger), (SELECT sum(amount) FROM xp_ledger),
               (SELECT count(*) FROM user_gamification), (SELECT sum(total_xp) FROM user_gamification),
               (SELECT count(*) FROM notifications), (SELECT count(*) FROM xp_pending_deliveries),
               (SELECT count(*) FROM xp_transactions)""").fetchone()


# ---------------------------------------------------------------------------
# the binding's choice


def test_apply_chooses_the_platform_binding_from_the_catalog_and_says_what_it_found(platform_template, platform_url):
    _, lines = platform_template
    assert "binding: platform (chosen from the catalog; found users(id bigint), xp_ledger(user_id bigint), " \
           "user_gamification(user_id bigint), notifications(user_id bigint))" in lines
    again: list[str] = []
    db_apply.apply(platform_url, schedule=False, log=again.append)   # a second apply: the same choice
    assert any(line.startswith("binding: platform (chosen from the catalog;") for line in again), again
    assert again[0] == "migrations: 0 applied, none pending"
    with psycopg.connect(platform_url) as conn:
        assert conn.execute("SELECT lottery_binding()").fetchone()[0] == "platform"
        # The platform's own tables are used as they are; the lottery's ledger is its own.
        assert conn.execute("SELECT format_type(atttypid, NULL) FROM pg_attribute"
                            " WHERE attrelid = 'users'::regclass AND attname = 'id'").fetchone()[0] == "bigint"
        assert conn.execute("SELECT to_regclass('xp_transactions') IS NOT NULL,"
                            " to_regclass('notifications_user_idx') IS NULL").fetchone() == (True, True)


def test_an_empty_database_gets_the_standalone_binding(db):
    assert db.execute("SELECT lottery_binding()").fetchone()[0] == "standalone"


def test_part_of_the_platform_is_refused_before_anything_is_written(pg_cluster):
    name = f"half_platform_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    try:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE users (id bigserial PRIMARY KEY, btc_address varchar(62) NOT NULL UNIQUE,"
                         " display_name varchar(64))")
        with pytest.raises(SystemExit) as refused:
            db_apply.apply(url, schedule=False, log=lambda *_: None)
        message = str(refused.value)
        assert "neither fits this database, nothing was applied" in message
        assert "xp_ledger.user_id" in message and "notifications.subtype" in message
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                                " AND relkind = 'r'").fetchone()[0] == 1   # users alone, no migration ran
    finally:
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_deployment_names_its_own_binding_file(fresh_db, fresh_db_url, tmp_path):
    own = tmp_path / "members.sql"
    own.write_text(db_apply.BINDING_INTERFACE.read_text()
                   .replace("SELECT 'standalone'::text", "SELECT 'members'::text")
                   .replace("SELECT display_name FROM users WHERE id = p_user_id",
                            "SELECT upper(display_name) FROM users WHERE id = p_user_id"))
    fresh_db.execute("INSERT INTO users (id, display_name) VALUES ('alice', 'Alice')")
    fresh_db.commit()
    lines: list[str] = []
    db_apply.apply(fresh_db_url, schedule=False, log=lines.append, binding=str(own))
    assert any(line.startswith("binding: members (named by LOTTERY_BINDING;") for line in lines), lines
    assert fresh_db.execute("SELECT lottery_binding(), user_display_name('alice')").fetchone() == ("members", "ALICE")

    lacking = tmp_path / "lacking.sql"
    lacking.write_text("CREATE OR REPLACE FUNCTION lottery_binding() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;")
    with pytest.raises(SystemExit, match=r"does not define .*deliver_draw_xp.*write_notification"):
        db_apply.apply(fresh_db_url, schedule=False, log=lambda *_: None, binding=str(lacking))
    with pytest.raises(SystemExit, match=r"LOTTERY_BINDING='cloud' is neither standalone nor platform nor a \.sql file"):
        db_apply.apply(fresh_db_url, schedule=False, log=lambda *_: None, binding="cloud")


# ---------------------------------------------------------------------------
# the draw on the platform


def test_a_week_of_collector_events_delivers_xp_and_notifications_into_the_platform(platform):
    conn = platform
    draw_id, status, participants = draw(conn)
    assert (status, participants) == ("completed", MINERS)   # registered or not, every miner is ranked

    ranked = conn.execute("SELECT user_id, rank, xp_awarded FROM lottery_results WHERE draw_id = %s ORDER BY rank",
                          (draw_id,)).fetchall()
    assert ranked == [(address(i), i + 1, TIERS[i]) for i in range(MINERS)]
    # The lottery's own ledger holds every award, registered miners or not.
    assert conn.execute("SELECT count(*), sum(amount) FROM xp_transactions WHERE reference_id = %s",
                        (str(draw_id),)).fetchone() == (MINERS, sum(TIERS))

    # One xp_ledger row per registered participant, with the tier's XP; totals moved by it.
    xp = platform_xp(conn)
    for i in range(MINERS):
        if registered(i):
            before = 1000 if had_xp(i) else 0
            assert xp[address(i)] == (1, TIERS[i], before + TIERS[i]), i
    assert len(xp) == sum(registered(i) for i in range(MINERS))
    keys = conn.execute("SELECT idempotency_key, source_id, description FROM xp_ledger l JOIN users u"
                        " ON u.id = l.user_id WHERE u.btc_address = %s AND l.source = 'lottery'",
                        (address(0),)).fetchone()
    assert keys == (f"lottery:{draw_id}:{address(0)}", str(draw_id), f"Weekly Lottery Rank #1 (week of {WEEK})")
    # The platform's other awards keep their rows.
    assert conn.execute("SELECT count(*) FROM xp_ledger WHERE source = 'badge'").fetchone()[0] == 3
    # Unregistered miners' awards wait for their registration.
    assert conn.execute("SELECT count(*) FROM xp_pending_deliveries").fetchone()[0] == \
        sum(not registered(i) for i in range(MINERS))

    # Ten lottery_result notifications, one to each of the top 10.
    notes = conn.execute("""
        SELECT u.btc_address, n.type, n.subtype, n.title, n.description, n.action_url, n.action_label
        FROM notifications n JOIN users u ON u.id = n.user_id ORDER BY n.id""").fetchall()
    assert [n[0] for n in notes] == [address(i) for i in range(10)]
    assert {n[1:3] for n in notes} == {("gamification", "lottery_result")}
    assert notes[0][3:] == ("Top 10 Weekly Lottery!",
                            f"You ranked #1 in the week of {WEEK} with difficulty 1000000.00. +100 XP!",
                            "/games", "View Results")

    # A second draw call and the catch-up add nothing.
    conn.commit()
    state = platform_state(conn)
    assert draw(conn)[0] == draw_id
    assert conn.execute("SELECT count(*) FROM run_due_draws()").fetchone()[0] == 0
    assert platform_state(conn) == state
    assert platform_xp(conn) == xp

    # A miner who registers after the draw gets their XP from the next catch-up, once.
    late = register(conn, LATE)
    conn.commit()
    conn.execute("SELECT run_due_draws()")
    conn.commit()
    assert platform_xp(conn)[address(LATE)] == (1, TIERS[LATE], TIERS[LATE])
    assert conn.execute("SELECT count(*) FROM xp_pending_deliveries WHERE user_id = %s",
                        (address(LATE),)).fetchone()[0] == 0
    state = platform_state(conn)
    conn.execute("SELECT run_due_draws()")
    assert platform_state(conn) == state
    assert conn.execute("SELECT count(*) FROM notifications WHERE user_id = %s", (late,)).fetchone()[0] == 0

    # The lottery's reads show the platform's display names and the miner's own result.
    current = conn.execute("SELECT get_current_lottery(%s, %s)", (address(3), AFTER)).fetchone()[0]
    assert [r["displayName"] for r in current["top10"]] == [f"Miner {i}" for i in range(10)]
    assert (current["myResult"]["rank"], current["myResult"]["xpAwarded"]) == (4, 100)
    unregistered = conn.execute("SELECT get_lottery_by_week(%s, %s, %s)", (address(11), WEEK, AFTER)).fetchone()[0]
    assert unregistered["myResult"]["displayName"] == address(11)   # no account: no name
    weekly = conn.execute("SELECT get_weekly_game_data(%s, %s, %s)", (address(3), WEEK, AFTER)).fetchone()[0]
    assert (weekly["weeklyRank"], weekly["bestDifficulty"], weekly["totalShares"]) == (4, 997000, 2)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_api_serves_a_miner_of_the_platform_with_the_platforms_tokens(platform, platform_url):
    """The app, unchanged, on the platform's database, configured as the platform signs its
    tokens (RS256, the miner in `address`, issuer thebitcoingame.com): the miner's week and
    result and the top 10's names; a refresh token, another issuer or no address is 401."""
    draw(platform)
    platform.commit()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    user_id = platform.execute("SELECT id FROM users WHERE btc_address = %s", (address(12),)).fetchone()[0]
    now = int(time.time())
    access = {"sub": str(user_id), "address": address(12), "auth_method": "wallet", "iat": now, "exp": now + 3600,
              "iss": "thebitcoingame.com", "type": "access"}

    def bearer(**changes):
        claims = {k: v for k, v in {**access, **changes}.items() if v is not None}
        return {"Authorization": "Bearer " + jwt.encode(claims, private, algorithm="RS256")}

    settings = make_settings(platform_url, jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=public,
                             jwt_user_claim="address", jwt_issuer="thebitcoingame.com")
    async with asgi_client(settings) as http:
        reply = await http.get(f"/api/lottery/week/{WEEK}", headers=bearer())
        weekly = await http.get(f"/api/games/weekly-data?week={WEEK}", headers=bearer())
        refused = [(await http.get(f"/api/games/weekly-data?week={WEEK}", headers=bearer(**bad))).status_code
                   for bad in ({"type": "refresh"}, {"iss": "elsewhere.example"}, {"address": None})]
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["myResult"]["rank"], body["myResult"]["displayName"]) == (13, "Miner 12")
    assert [r["displayName"] for r in body["top10"]] == [f"Miner {i}" for i in range(10)]
    assert weekly.status_code == 200 and weekly.json()["weeklyRank"] == 13
    assert refused == [401, 401, 401]


def test_an_unregistered_miner_in_the_top_10_is_ranked_but_not_notified(platform_url):
    with psycopg.connect(platform_url) as conn:
        register(conn, 1)
        register(conn, 2)
        insert_like_the_collector(conn, [e for e in collector_events(3)])
        draw_id = draw(conn)[0]
        assert conn.execute("SELECT user_id FROM lottery_results WHERE draw_id = %s ORDER BY rank",
                            (draw_id,)).fetchall() == [(address(0),), (address(1),), (address(2),)]
        assert conn.execute("SELECT u.btc_address FROM notifications n JOIN users u ON u.id = n.user_id"
                            " ORDER BY n.id").fetchall() == [(address(1),), (address(2),)]
        assert conn.execute("SELECT write_notification(%s, 'gamification', 'x', 'title', 'body')",
                            (address(0),)).fetchone()[0] is None


def test_notifications_reach_the_websocket_channel_addressed_by_the_mining_user(platform):
    conn = platform
    conn.execute("LISTEN lottery_events")
    conn.commit()
    draw(conn)
    # The platform's own notifications are relayed the same way.
    conn.execute("INSERT INTO notifications (user_id, type, subtype, title, description)"
                 " SELECT id, 'gamification', 'level_up', 'Level Up!', 'Level 4' FROM users WHERE btc_address = %s",
                 (address(5),))
    conn.commit()
    events = [json.loads(n.payload) for n in conn.notifies(timeout=2, stop_after=12)]
    notes = [e for e in events if e["event"] == "notification"]
    assert [n["userId"] for n in notes] == [address(i) for i in range(10)] + [address(5)]
    first = notes[0]["data"]
    assert (first["type"], first["subtype"], first["category"], first["title"], first["actionUrl"],
            first["actionLabel"]) == ("gamification", "lottery_result", "gamification", "Top 10 Weekly Lottery!",
                                      "/games", "View Results")
    assert first["body"].startswith("You ranked #1 in the week of")
    assert (notes[-1]["data"]["subtype"], notes[-1]["data"]["body"]) == ("level_up", "Level 4")
    assert sum(e["event"] == "lottery_drawn" for e in events) == 1


def test_a_draw_whose_xp_the_platform_refuses_lands_nothing(platform):
    conn = platform
    conn.execute("ALTER TABLE xp_ledger ADD CONSTRAINT no_big_awards CHECK (amount < 100) NOT VALID")
    conn.commit()
    before = platform_state(conn)
    with pytest.raises(psycopg.errors.CheckViolation):
        draw(conn)
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM lottery_draws").fetchone()[0] == 0
    assert platform_state(conn) == before


def test_concurrent_catch_ups_deliver_a_late_award_once(platform, platform_url):
    conn = platform
    draw(conn)
    register(conn, LATE)
    conn.commit()
    # Two catch-ups at once: the second waits on the first's queue rows, then finds them gone.
    delivered = run_at_once(platform_url, 2, "SELECT deliver_pending_xp()", timeout=30)
    assert sorted(delivered) == [0, 1]
    conn.rollback()
    assert platform_xp(conn)[address(LATE)] == (1, TIERS[LATE], TIERS[LATE])


def test_standalone_draws_leave_no_pending_delivery(db):
    db.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES (%s, 'share_submitted', %s)",
               (utc(f"{WEEK} 12:00"), json.dumps({"user": "alice", "sdiff": 5.0, "accepted": True})))
    draw(db)
    assert db.execute("SELECT count(*) FROM xp_pending_deliveries").fetchone()[0] == 0
    assert db.execute("SELECT deliver_pending_xp(), deliver_draw_xp(gen_random_uuid())").fetchone() == (0, 0)
    assert db.execute("SELECT user_id, category, title FROM notifications").fetchall() == \
        [("alice", "gamification", "Top 10 Weekly Lottery!")]


def test_the_platform_bindings_plpgsql_passes_plpgsql_check(platform_url):
    """tests/test_plpgsql_check.py checks the standalone binding; this, the platform's."""
    ours = db_apply.functions_defined(db_apply.BINDING_DIR / "platform.sql")
    entries = load_allow_list()
    with psycopg.connect(platform_url) as conn:
        conn.execute("CREATE SCHEMA plpgsql_check_test")
        conn.execute("CREATE EXTENSION plpgsql_check SCHEMA plpgsql_check_test")
        check = sql.SQL("SELECT level, sqlstate, message FROM plpgsql_check_test.plpgsql_check_function_tb("
                        "%s::oid::regprocedure, %s::regclass, {}, oldtable := %s, newtable := %s)").format(CHECK_OPTIONS)
        checked, unlisted = set(), []
        for oid, name, signature, _, relation, oldtable, newtable, *_ in conn.execute(PLPGSQL_FUNCTIONS).fetchall():
            if name not in ours:
                continue
            checked.add(name)
            for level, sqlstate, message in conn.execute(check, (oid, relation or 0, oldtable, newtable)).fetchall():
                finding = Finding(name, signature, level, f"{sqlstate} {message}", None)
                if allowed_by(finding, entries) is None:
                    unlisted.append(str(finding))
        conn.rollback()
    assert checked == {"deliver_pending_xp", "deliver_draw_xp", "write_notification", "notify_new_notifications"}
    assert not unlisted, unlisted
