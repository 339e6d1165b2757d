"""db/functions/20_share_rules.sql and 22_share_fold.sql: the aggregates the draw and game data read."""

import json

import pytest

from tests.helpers import add_shares, copy_events, hash_for, insert_events, rank_bucket_counts, share, utc


def weekly(db, week="2026-11-16"):
    return {r[0]: r[1:] for r in db.execute(
        "SELECT user_id, best_difficulty, best_at, best_hash, share_count FROM share_weekly_best"
        " WHERE week_start = %s ORDER BY user_id", (week,))}


# Every column but prev_rank_bucket, which only records how a row got there.
WEEKLY_ROWS = ("SELECT week_start, user_id, best_difficulty, best_at, best_hash, share_count, rank_bucket"
               " FROM share_weekly_best ORDER BY 1, 2")


def daily(db, user):
    return db.execute("SELECT day::text, best_difficulty, share_count FROM share_daily_best"
                      " WHERE user_id = %s ORDER BY day", (user,)).fetchall()


def test_best_share_count_and_hash_per_week_and_day(db):
    add_shares(db, ("alice", 100.0, "2026-11-16 01:00"), ("alice", 900.0, "2026-11-17 01:00"),
               ("alice", 300.0, "2026-11-17 02:00"), ("bob", 50.0, "2026-11-18 00:00"))
    got = weekly(db)
    assert got["alice"] == (900.0, utc("2026-11-17 01:00"), hash_for(900.0), 3)
    assert got["bob"][0] == 50.0 and got["bob"][3] == 1
    assert daily(db, "alice") == [("2026-11-16", 100.0, 1), ("2026-11-17", 900.0, 2)]


def test_rejected_and_malformed_shares_never_count(db):
    good = share("alice", 10.0, "2026-11-16 01:00")
    events = [good,
              share("alice", 1e9, "2026-11-16 02:00", accepted=False),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "alice", "sdiff": 1e9, "accepted": "true"}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "alice", "sdiff": 1e9}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "alice", "sdiff": "1e9", "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "alice", "sdiff": -5, "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "alice", "sdiff": 0, "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "alice", "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "", "sdiff": 1e9, "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": 42, "sdiff": 1e9, "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"user": "x" * 129, "sdiff": 1e9, "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", {"sdiff": 1e9, "accepted": True}),
              (utc("2026-11-16 03:00"), "share_submitted", [1, 2, 3]),
              (utc("2026-11-16 03:00"), "share_best_diff", {"user": "alice", "sdiff": 1e9, "accepted": True})]
    insert_events(db, events)
    # Numbers JSON cannot carry through psycopg's dumper: written as raw JSON text.
    db.execute("""INSERT INTO mining_events (ts, event_type, payload) VALUES
        ('2026-11-16 04:00Z', 'share_submitted', '{"user":"alice","sdiff":1e400,"accepted":true}'),
        ('2026-11-16 04:00Z', 'share_submitted', '{"user":"alice","sdiff":1e-400,"accepted":true}'),
        ('2026-11-16 04:00Z', 'share_submitted', '{"user":"alice","sdiff":{"v":1},"accepted":true}')""")
    assert weekly(db) == {"alice": (10.0, utc("2026-11-16 01:00"), hash_for(10.0), 1)}
    assert db.execute("SELECT count(*) FROM mining_events").fetchone()[0] == len(events) + 3


def test_share_at_the_last_microsecond_of_sunday_counts_for_that_week(db):
    add_shares(db, ("alice", 5.0, "2026-11-22 23:59:59.999999"), ("bob", 5.0, "2026-11-23 00:00:00"))
    assert set(weekly(db, "2026-11-16")) == {"alice"}
    assert set(weekly(db, "2026-11-23")) == {"bob"}
    assert daily(db, "alice") == [("2026-11-22", 5.0, 1)]


def test_tie_keeps_the_time_the_best_was_first_reached_even_out_of_order(db):
    add_shares(db, ("alice", 500.0, "2026-11-18 12:00"))
    add_shares(db, ("alice", 500.0, "2026-11-17 09:00"), ("alice", 500.0, "2026-11-19 09:00"))
    best = weekly(db)["alice"]
    assert best[1] == utc("2026-11-17 09:00") and best[3] == 3


def test_one_batch_equals_many_single_inserts_and_copy(db):
    rows = [share(f"u{i % 7}", float((i * 7919) % 1000 + 1), f"2026-11-{16 + i % 7} {i % 24:02d}:00")
            for i in range(300)]
    insert_events(db, rows)
    batch = weekly(db)
    daily_batch = db.execute("SELECT * FROM share_daily_best ORDER BY user_id, day").fetchall()
    db.execute("TRUNCATE share_weekly_best")
    for row in rows:
        insert_events(db, [row])
    assert weekly(db) == batch
    db.execute("TRUNCATE share_weekly_best")
    copy_events(db, rows)
    assert weekly(db) == batch
    assert db.execute("SELECT * FROM share_daily_best ORDER BY user_id, day").fetchall() == daily_batch
    kept, counted = rank_bucket_counts(db)
    assert kept == counted and sum(n for level, *_, n in counted if level == "bucket") == 7


def test_rebuild_from_raw_events_equals_live_aggregates(db):
    rows = [share(f"u{i % 5}", float((i * 104729) % 5000 + 1), f"2026-11-{16 + i % 14:02d} {i % 24:02d}:30")
            for i in range(200)]
    rows.append(share("u0", 99.0, "2026-11-17 00:00", accepted=False))
    insert_events(db, rows)
    before = db.execute(WEEKLY_ROWS).fetchall()
    before_days = db.execute("SELECT * FROM share_daily_best ORDER BY 1, 2").fetchall()
    db.execute("UPDATE share_weekly_best SET share_count = 1, best_difficulty = 1")
    replayed = db.execute("SELECT rebuild_share_aggregates()").fetchone()[0]
    assert replayed == len(rows)
    assert db.execute(WEEKLY_ROWS).fetchall() == before
    assert db.execute("SELECT * FROM share_daily_best ORDER BY 1, 2").fetchall() == before_days
    kept, counted = rank_bucket_counts(db)
    assert kept == counted and len(counted) > 5
    # Nothing left pending or queued: a second fold finds no event.
    assert db.execute("SELECT fold_pending_events()").fetchone()[0] == 0


def test_existing_events_are_adopted_once(db):
    # Events of a table that was there before this project: never numbered, never folded.
    db.execute("ALTER TABLE mining_events ALTER COLUMN seq DROP DEFAULT")
    add_shares(db, ("alice", 42.0, "2026-11-16 01:00"))
    db.execute("ALTER TABLE mining_events ALTER COLUMN seq SET DEFAULT nextval('mining_events_seq')")
    assert weekly(db) == {}
    assert db.execute("SELECT adopt_existing_events()").fetchone()[0] == 1
    assert weekly(db)["alice"][0] == 42.0
    assert db.execute("SELECT adopt_existing_events()").fetchone()[0] == 0


def test_every_event_records_its_week(db):
    insert_events(db, [(utc("2026-11-10 00:00"), "new_block_network", {"diff": 1e14}),
                       share("alice", 1.0, "2026-11-18 00:00", accepted=False)])
    weeks = [str(r[0]) for r in db.execute("SELECT week_start FROM event_weeks ORDER BY 1")]
    assert weeks == ["2026-11-09", "2026-11-16"]


def test_an_unpartitioned_mining_events_like_a_hypertable_folds_the_same(db):
    # A TimescaleDB hypertable is, to the fold, a table numbered by the seq default
    # and read by seq: the same as a plain table standing in for it.
    rows = [share(f"u{i % 4}", float((i * 7919) % 1000 + 1), f"2026-11-{16 + i % 7} {i % 24:02d}:00")
            for i in range(60)]
    insert_events(db, rows)
    expected = db.execute(WEEKLY_ROWS).fetchall()
    db.execute("TRUNCATE share_weekly_best")
    assert db.execute("SELECT mining_events_is_hypertable()").fetchone()[0] is False
    db.execute("ALTER TABLE mining_events RENAME TO mining_events_partitioned")
    db.execute("CREATE TABLE mining_events (LIKE mining_events_partitioned INCLUDING DEFAULTS)")
    db.execute("CREATE INDEX ON mining_events (seq)")
    assert db.execute("SELECT count(*) FROM mining_events").fetchone()[0] == 0
    insert_events(db, rows)
    assert db.execute(WEEKLY_ROWS).fetchall() == expected
    kept, counted = rank_bucket_counts(db)
    assert kept == counted
    assert db.execute("SELECT fold_pending_events()").fetchone()[0] == 0


@pytest.mark.parametrize("event_type, payload, problem", [
    ("share_submitted", {"user": "a", "sdiff": 5, "accepted": True}, None),
    ("share_submitted", {"user": "a", "sdiff": 5, "accepted": False}, None),  # rejected, not malformed
    ("share_submitted", {"sdiff": 5, "accepted": True}, "user is missing, not a string, empty or longer than 128"),
    ("share_submitted", {"user": "a", "sdiff": -1, "accepted": True}, "sdiff is not a positive finite number"),
    ("share_submitted", {"user": "a", "sdiff": "5", "accepted": True}, "sdiff is not a positive finite number"),
    ("share_submitted", {"user": "a", "sdiff": 5, "accepted": "yes"}, "accepted is not true or false"),
    ("share_submitted", [], "payload is not a JSON object"),
    ("new_block_network", {"diff": 0}, "diff is not a positive finite number"),
    ("block_found", {"height": 1}, "user is missing, not a string, empty or longer than 128"),
    ("something_else", {}, None),
    ("", {}, "event_type is missing"),
])
def test_share_event_problem_names_what_the_trigger_skips(db, event_type, payload, problem):
    assert db.execute("SELECT share_event_problem(%s, %s::jsonb)",
                      (event_type, json.dumps(payload))).fetchone()[0] == problem
    if event_type == "share_submitted":
        insert_events(db, [(utc("2026-11-16 00:00"), event_type, payload)])
        counted = db.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0]
        assert counted == (1 if problem is None and payload.get("accepted") is True else 0)


@pytest.mark.parametrize("diff, at, best, best_at, beats", [
    (10.0, "2026-11-17", 5.0, "2026-11-16", True),     # higher wins whenever it came
    (5.0, "2026-11-15", 5.0, "2026-11-16", True),      # same, reached earlier
    (5.0, "2026-11-16", 5.0, "2026-11-16", False),     # exact tie keeps the incumbent
    (4.0, "2026-11-15", 5.0, "2026-11-16", False),
])
def test_share_beats(db, diff, at, best, best_at, beats):
    assert db.execute("SELECT share_beats(%s, %s::timestamptz, %s, %s::timestamptz)",
                      (diff, at, best, best_at)).fetchone()[0] is beats


def test_share_user_and_claimed_difficulty(db):
    row = db.execute("""SELECT share_user('{"user": "bc1qxyz"}'), share_user('{"user": ""}'),
                               share_user('{"user": 7}'), share_claimed_difficulty('{"sdiff": 12.5}'),
                               share_claimed_difficulty('{"sdiff": "12.5"}')""").fetchone()
    assert row == ("bc1qxyz", None, None, 12.5, None)
