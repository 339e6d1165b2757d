"""mining_events partitioned by ISO week (migration 0005, db/functions/25_event_partitions.sql):
partitions created ahead, events routed and still aggregated once, rows moved out of the
DEFAULT partition, expired weeks dropped only after their draw, and a table that must not
be converted (a TimescaleDB hypertable) left exactly as it is."""

from datetime import date, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from db import apply as db_apply
from tests.helpers import insert_events, share, add_shares, copy_events, database_without, share

WEEKLY = "SELECT week_start FROM mining_events_partitions WHERE week_start IS NOT NULL ORDER BY 1"


def partition_of(conn, user: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM mining_events"
                                       " WHERE payload->>'user' = %s ORDER BY ts", (user,))]


def weekly_best(conn, user: str):
    return conn.execute("SELECT week_start, best_difficulty, share_count FROM share_weekly_best"
                        " WHERE user_id = %s ORDER BY week_start", (user,)).fetchall()


def weeks(start: str, count: int) -> list[date]:
    first = date.fromisoformat(start)
    return [first + timedelta(days=7 * i) for i in range(count)]


def test_fresh_database_has_this_weeks_partition_and_weeks_ahead_more(db):
    assert db.execute("SELECT relkind FROM pg_class WHERE oid = 'mining_events'::regclass").fetchone() == ("p",)
    this_week, ahead = db.execute("SELECT lottery_week_at(now()), weeks_ahead FROM event_partition_policy").fetchone()
    assert ahead == 4
    present = {r[0] for r in db.execute(WEEKLY)}
    assert set(weeks(this_week.isoformat(), ahead + 1)) <= present
    assert db.execute("SELECT partition::text FROM mining_events_partitions WHERE is_default").fetchall() == \
        [("mining_events_default",)]
    name = db.execute("SELECT event_partition_name(%s)", (this_week + timedelta(days=3),)).fetchone()[0]
    assert name == f"mining_events_p{this_week:%Y%m%d}"
    assert db.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone() == (True,)
    # The parent keeps its indexes and the ingest grant; partitions stay private.
    assert db.execute("SELECT has_table_privilege('lottery_ingest', 'mining_events', 'INSERT'),"
                      " has_table_privilege('lottery_ingest', %s, 'INSERT')", (name,)).fetchone() == (True, False)
    assert {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'mining_events'")} == \
        {"mining_events_network_diff_idx", "mining_events_block_found_idx", "mining_events_seq_idx",
         "mining_events_user_seq_idx"}


def test_share_lands_in_its_weeks_partition_and_is_aggregated_once(db):
    monday = db.execute("SELECT lottery_week_at(now())").fetchone()[0]
    at = f"{monday.isoformat()} 01:00"
    add_shares(db, ("part_insert", 40.0, at))
    copy_events(db, [share("part_copy", 60.0, at)])
    for user, diff in (("part_insert", 40.0), ("part_copy", 60.0)):
        assert partition_of(db, user) == [f"mining_events_p{monday:%Y%m%d}"]
        assert weekly_best(db, user) == [(monday, diff, 1)]


def test_event_of_a_week_without_partition_waits_in_default_then_moves_to_its_new_partition(db):
    # A late share of a past week nobody made a partition for (a future one would be
    # more than a day ahead of the clock, and so count nowhere).
    add_shares(db, ("late", 77.0, "2025-06-10 10:00"))
    assert partition_of(db, "late") == ["mining_events_default"]
    assert weekly_best(db, "late") == [(date(2025, 6, 9), 77.0, 1)]  # aggregated on arrival

    created = db.execute("SELECT * FROM ensure_event_partitions('2025-06-11 12:00+00')").fetchall()
    assert created == [(f"mining_events_p{w:%Y%m%d}", w, 1 if i == 0 else 0)
                       for i, w in enumerate(weeks("2025-06-09", 5))]
    assert partition_of(db, "late") == ["mining_events_p20250609"]
    assert weekly_best(db, "late") == [(date(2025, 6, 9), 77.0, 1)]  # moved, not counted again
    add_shares(db, ("late", 5.0, "2025-06-12 10:00"))  # and the parent's trigger still follows
    assert weekly_best(db, "late") == [(date(2025, 6, 9), 77.0, 2)]


@pytest.mark.parametrize("zone, now", [("Europe/Berlin", "2027-10-20 12:00+00"),
                                       ("America/Los_Angeles", "2027-02-24 12:00+00")])
def test_weeks_around_a_clock_change_in_the_session_zone_are_utc_weeks(db, zone, now):
    """Clocks move on 2027-10-31 in Berlin and 2027-03-14 in Los Angeles: the partitions
    ahead are still one per UTC week, back to back, each 168 hours."""
    db.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
    created = [week for _, week, _ in db.execute("SELECT * FROM ensure_event_partitions(%s)", (now,)).fetchall()]
    first = db.execute("SELECT lottery_week_at(%s)", (now,)).fetchone()[0]
    assert created == weeks(first.isoformat(), 5)
    bounds = db.execute("SELECT week_start, extract(epoch FROM range_end - range_start) FROM mining_events_partitions"
                        " WHERE NOT is_default AND range_start >= lottery_week_start_ts(%s) ORDER BY range_start",
                        (first,)).fetchall()
    assert bounds == [(week, 7 * 86400) for week in created]


def test_a_week_overlapping_a_hand_made_partition_is_left_to_it(db):
    db.execute("CREATE TABLE hand_made PARTITION OF mining_events"
               " FOR VALUES FROM ('2028-01-05 00:00+00') TO ('2028-01-20 00:00+00')")
    created = db.execute("SELECT week_start FROM ensure_event_partitions('2028-01-03 00:00+00')").fetchall()
    assert [r[0] for r in created] == [date(2028, 1, 24), date(2028, 1, 31)]
    assert db.execute("SELECT week_start FROM mining_events_partitions WHERE partition = 'hand_made'::regclass"
                      ).fetchone() == (None,)


def test_missing_default_partition_is_recreated(db):
    db.execute("DROP TABLE mining_events_default")
    assert db.execute("SELECT count(*) FROM ensure_event_partitions()").fetchone() == (0,)
    assert db.execute("SELECT partition::text FROM mining_events_partitions WHERE is_default").fetchone() == \
        ("mining_events_default",)


@pytest.mark.parametrize("call", ["ensure_event_partitions(NULL)", "drop_expired_event_partitions('infinity')",
                                  "maintain_event_partitions('-infinity')"])
def test_null_or_infinite_now_is_refused(db, call):
    with pytest.raises(psycopg.Error) as err:
        db.execute(f"SELECT * FROM {call}")
    assert err.value.sqlstate == "LTW02"
    assert err.value.diag.message_hint


@pytest.fixture
def october(db):
    """Weekly partitions 2026-10-05 .. 2026-11-02: the first week drawn, the second with
    undrawn events, the others empty."""
    db.execute("SELECT ensure_event_partitions('2026-10-05 00:00+00')")
    add_shares(db, ("oct_drawn", 10.0, "2026-10-06 00:00"), ("oct_undrawn", 20.0, "2026-10-13 00:00"))
    assert db.execute("SELECT status FROM run_lottery_draw('2026-10-05', '2026-11-18 12:00+00')").fetchone() == \
        ("completed",)
    return db


def test_expired_weeks_go_only_once_drawn_or_empty(october):
    db = october
    db.execute("UPDATE event_partition_policy SET retention_weeks = 2")
    dropped = db.execute("SELECT * FROM drop_expired_event_partitions('2026-11-18 12:00+00')").fetchall()
    # 2026-11-02 ended 2026-11-09: not yet more than two weeks before the 18th.
    assert dropped == [(f"mining_events_p{w:%Y%m%d}", w) for w in weeks("2026-10-05", 4) if w != date(2026, 10, 12)]
    kept = {r[0] for r in db.execute(WEEKLY)}
    assert {date(2026, 10, 12), date(2026, 11, 2)} <= kept and date(2026, 10, 5) not in kept
    assert partition_of(db, "oct_undrawn") == ["mining_events_p20261012"]
    assert partition_of(db, "oct_drawn") == []
    stamps = dict(db.execute("SELECT week_start, raw_events_dropped_at IS NOT NULL FROM event_weeks"
                             " WHERE week_start IN ('2026-10-05', '2026-10-12')"))
    assert stamps == {date(2026, 10, 5): True, date(2026, 10, 12): False}
    assert weekly_best(db, "oct_drawn") == [(date(2026, 10, 5), 10.0, 1)]  # aggregates stay
    assert db.execute("SELECT count(*) FROM drop_expired_event_partitions('2026-11-18 12:00+00')").fetchone() == (0,)


def test_retention_null_keeps_every_week(october):
    db = october
    assert db.execute("SELECT retention_weeks FROM event_partition_policy").fetchone() == (None,)
    before = db.execute(WEEKLY).fetchall()
    assert db.execute("SELECT count(*) FROM drop_expired_event_partitions('2099-01-01 00:00+00')").fetchone() == (0,)
    assert db.execute(WEEKLY).fetchall() == before


def test_maintain_is_idempotent(october):
    db = october
    db.execute("UPDATE event_partition_policy SET retention_weeks = 1, weeks_ahead = 2")
    first = db.execute("SELECT maintain_event_partitions('2026-11-04 00:00+00')").fetchone()[0]
    assert first["partitioned"] is True
    assert first["created"] == [{"partition_name": f"mining_events_p{w:%Y%m%d}", "week_start": w.isoformat(),
                                 "moved_rows": 0} for w in weeks("2026-11-09", 2)]  # 11-02 exists
    # 10-26 ended 11-02, not more than a week before the 4th; 10-12 is not drawn.
    assert first["dropped"] == [{"partition_name": "mining_events_p20261005", "week_start": "2026-10-05"},
                                {"partition_name": "mining_events_p20261019", "week_start": "2026-10-19"}]
    after = db.execute(WEEKLY).fetchall()
    assert db.execute("SELECT maintain_event_partitions('2026-11-04 00:00+00')").fetchone()[0] == \
        {"partitioned": True, "created": [], "dropped": []}
    assert db.execute(WEEKLY).fetchall() == after


def test_functions_leave_an_unpartitioned_table_alone(db):
    db.execute("DROP TABLE mining_events")
    db.execute("CREATE TABLE mining_events (ts timestamptz NOT NULL, event_type text NOT NULL,"
               " payload jsonb NOT NULL DEFAULT '{}')")
    db.execute("UPDATE event_partition_policy SET retention_weeks = 0")
    assert db.execute("SELECT count(*) FROM ensure_event_partitions()").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM drop_expired_event_partitions()").fetchone() == (0,)
    assert db.execute("SELECT maintain_event_partitions()").fetchone()[0] == \
        {"partitioned": False, "created": [], "dropped": []}
    assert db.execute("SELECT count(*) FROM mining_events_partitions").fetchone() == (0,)
    assert db.execute("SELECT to_regclass('mining_events_default')").fetchone() == (None,)


# ---------------------------------------------------------------------------
# migration 0005 on a database deployed before it


@pytest.fixture
def before_0005(pg_cluster):
    """A deployment that predates partitioning: every migration but 0005. Yields (url, connection)."""
    with database_without(pg_cluster, "0005_partitioned_events") as pair:
        yield pair


def relkind(conn) -> str:
    return conn.execute("SELECT relkind FROM pg_class WHERE oid = 'mining_events'::regclass").fetchone()[0]


def test_migration_converts_a_plain_table_holding_rows(before_0005):
    url, conn = before_0005
    db_apply.load_functions(conn)
    add_shares(conn, ("alice", 50.0, "2026-10-06 00:00"), ("bob", 70.0, "2026-11-18 00:00"),
               ("alice", 90.0, "2026-11-19 00:00"))
    conn.execute("INSERT INTO mining_events VALUES ('infinity', 'share_submitted', '{}')")
    conn.commit()
    assert relkind(conn) == "r"
    aggregates = conn.execute("SELECT * FROM share_weekly_best ORDER BY 1, 2").fetchall()
    conn.rollback()  # no lock of ours in the migration's way

    lines = []
    db_apply.apply(url, schedule=False, log=lines.append)
    assert "migrations: 1 applied (0005_partitioned_events)" in lines

    conn.rollback()
    assert relkind(conn) == "p"
    assert partition_of(conn, "alice") == ["mining_events_p20261005", "mining_events_p20261116"]
    assert partition_of(conn, "bob") == ["mining_events_p20261116"]
    assert conn.execute("SELECT tableoid::regclass::text FROM mining_events WHERE ts = 'infinity'").fetchall() == \
        [("mining_events_default",)]
    this_week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
    assert set(weeks(this_week.isoformat(), 5)) <= {r[0] for r in conn.execute(WEEKLY)}
    assert conn.execute("SELECT to_regclass('mining_events_unpartitioned')").fetchone() == (None,)
    # Moved, not replayed: the aggregates are exactly what they were.
    assert conn.execute("SELECT * FROM share_weekly_best ORDER BY 1, 2").fetchall() == aggregates
    assert {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'mining_events'")} == \
        {"mining_events_network_diff_idx", "mining_events_block_found_idx", "mining_events_seq_idx",
         "mining_events_user_seq_idx"}
    assert conn.execute("SELECT has_table_privilege('lottery_ingest', 'mining_events', 'INSERT'),"
                        " has_table_privilege('lottery_ingest', 'mining_events', 'SELECT')").fetchone() == (True, False)
    assert conn.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'mining_events'::regclass"
                        " AND NOT tgisinternal").fetchall() == []  # nothing on the write path
    add_shares(conn, ("bob", 80.0, "2026-11-20 00:00"))
    assert weekly_best(conn, "bob") == [(date(2026, 11, 16), 80.0, 2)]


def test_migration_leaves_a_timescaledb_hypertable_alone(before_0005):
    """No TimescaleDB here: its catalog view is faked, which is all the migration,
    the functions and the trigger set-up look at."""
    url, conn = before_0005
    conn.execute("CREATE SCHEMA timescaledb_information")
    conn.execute("CREATE VIEW timescaledb_information.hypertables AS"
                 " SELECT 'public'::name AS hypertable_schema, 'mining_events'::name AS hypertable_name")
    conn.commit()
    db_apply.apply(url, schedule=False, log=lambda *_: None)
    assert relkind(conn) == "r"
    assert conn.execute("SELECT to_regclass('mining_events_default')").fetchone() == (None,)
    assert conn.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'mining_events'::regclass"
                        " AND NOT tgisinternal").fetchall() == []  # nothing on the write path, here either
    assert conn.execute("SELECT maintain_event_partitions()").fetchone()[0] == \
        {"partitioned": False, "created": [], "dropped": []}
    add_shares(conn, ("carol", 9.0, "2026-11-18 00:00"))
    assert weekly_best(conn, "carol") == [(date(2026, 11, 16), 9.0, 1)]


def test_migration_leaves_a_table_it_cannot_rebuild_alone(before_0005):
    url, conn = before_0005
    conn.execute("CREATE VIEW platform_recent_events AS SELECT * FROM mining_events WHERE ts > now() - interval '1 day'")
    insert_events(conn, [share("dave", 3.0, "2026-11-18 00:00")], fold_now=False)  # no functions to fold with yet
    conn.commit()
    db_apply.apply(url, schedule=False, log=lambda *_: None)
    assert relkind(conn) == "r"
    assert conn.execute("SELECT count(*) FROM mining_events").fetchone() == (1,)
    summary = conn.execute("SELECT maintain_event_partitions()").fetchone()[0]
    assert summary == {"partitioned": False, "created": [], "dropped": []}


def test_policy_is_one_row_with_sane_bounds(db):
    db.execute("SAVEPOINT s")
    for bad in ("INSERT INTO event_partition_policy (singleton) VALUES (true)",
                "INSERT INTO event_partition_policy (singleton) VALUES (false)",
                "UPDATE event_partition_policy SET weeks_ahead = -1",
                "UPDATE event_partition_policy SET retention_weeks = -1"):
        with pytest.raises(psycopg.errors.IntegrityError):
            db.execute(bad)
        db.execute("ROLLBACK TO SAVEPOINT s")
    row = db.cursor(row_factory=dict_row).execute("SELECT * FROM event_partition_policy").fetchall()
    assert row == [{"singleton": True, "weeks_ahead": 4, "retention_weeks": None}]
