"""db/functions/22_share_fold.sql: every write pattern folds into the same aggregates,
at commit, and forged, hashless and badly timed events count as the rules say."""

import json
import threading
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.helpers import copy_events, fold, hash_for, insert_events, rank_bucket_counts, share, utc, wait_for

WEEK = "2026-11-16"
AFTER = "2026-11-23 00:01+00"

# Every column of a participant-week but prev_rank_bucket, which only records how a row got there.
WEEKLY_ROWS = ("SELECT week_start, user_id, best_difficulty, best_at, best_hash, share_count, day_best, day_shares,"
               " rank_bucket FROM share_weekly_best ORDER BY 1, 2")


def collector_events(n=600):
    """Shares as the platform's collector writes them (no hash), plus ckpool-style ones with a
    hash, rejects, a network difficulty change and a found block, over two weeks."""
    events = []
    for i in range(n):
        user = f"bc1q{i % 37:04d}"
        ts = utc(f"2026-11-{16 + i % 12:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}")
        sdiff = float(1 + (i * 7919) % 100_003)
        payload = {"user": user, "worker": f"{user}.rig{i % 3}", "client_id": i, "diff": 1000, "sdiff": sdiff,
                   "accepted": i % 41 != 0, "reject_reason": None if i % 41 else "Stale", "ip": "10.0.0.7"}
        if i % 3 == 0:
            payload["hash"] = hash_for(sdiff)
        events.append((ts, "share_submitted", payload))
    events.append((utc("2026-11-18 12:00"), "new_block_network", {"height": 900_000, "diff": 1.2e14}))
    events.append((utc("2026-11-19 08:00"), "block_found", {"user": "bc1q0005", "height": 900_001}))
    return events


def aggregates(conn):
    """Everything the fold writes, as comparable values."""
    return {
        "weekly": conn.execute(WEEKLY_ROWS).fetchall(),
        "buckets": rank_bucket_counts(conn),
        "users": conn.execute("SELECT user_id, best_difficulty, best_at, week_start FROM share_user_best"
                              " ORDER BY 1").fetchall(),
        "weeks": conn.execute("SELECT week_start, accepted_shares, unverified_shares, forged_shares FROM event_weeks"
                              " ORDER BY 1").fetchall(),
        "blocks": conn.execute("SELECT * FROM blocks_found ORDER BY 1, 2").fetchall(),
        "network": conn.execute("SELECT * FROM network_difficulty_changes ORDER BY 1").fetchall(),
        "ranks": conn.execute("SELECT u.user_id, l.rank, l.participants FROM share_weekly_best u,"
                              " get_live_rank(u.user_id, u.week_start) l ORDER BY u.week_start, u.user_id").fetchall(),
    }


def draw_digest(conn):
    """The draw's counts, whether its stored digest verifies, and its ranked results by user id
    (the digest itself differs between two draws of the same data: each result has a random salt)."""
    draw_id, *counts = conn.execute("SELECT id, total_participants, total_shares FROM run_lottery_draw(%s, %s)",
                                    (WEEK, AFTER)).fetchone()
    verifies = conn.execute("SELECT results_digest = lottery_results_digest(id) FROM lottery_draws WHERE id = %s",
                            (draw_id,)).fetchone()[0]
    results = conn.execute("SELECT rank, user_id, best_difficulty, best_hash, best_share_at FROM lottery_results"
                           " WHERE draw_id = %s ORDER BY rank", (draw_id,)).fetchall()
    return verifies, *counts, results


def load_single_row_inserts(conn, events, per_commit=500):
    """The collector's flush: executemany of single-row INSERTs with a source column, 500 a transaction."""
    conn.execute("ALTER TABLE mining_events ADD COLUMN IF NOT EXISTS source varchar(16) DEFAULT 'hosted'")
    conn.commit()
    with conn.cursor() as cur:
        for i in range(0, len(events), per_commit):
            cur.executemany("INSERT INTO mining_events (ts, event_type, source, payload) VALUES (%s, %s, 'hosted', %s)",
                            [(ts, kind, Jsonb(payload)) for ts, kind, payload in events[i:i + per_commit]])
            conn.commit()


@pytest.mark.parametrize("how", ["single-row INSERTs", "one multi-row INSERT", "replay"])
def test_every_write_pattern_folds_into_what_one_copy_does(pg_cluster, lottery_proc, how):
    events = collector_events()
    results = {}
    for pattern in ("COPY", how):
        with pg_cluster.clone(lottery_proc.template_dbname, "fold_" + pattern.split()[0].lower().replace("-", "")) as url, \
                psycopg.connect(url) as conn:
            if pattern == "COPY":
                copy_events(conn, events, fold_now=False)
            elif pattern == "single-row INSERTs":
                load_single_row_inserts(conn, events)
            elif pattern == "one multi-row INSERT":
                insert_events(conn, events, fold_now=False)
            else:  # events already in the table, never numbered: aggregates rebuilt from them
                conn.execute("ALTER TABLE mining_events ALTER COLUMN seq DROP DEFAULT")
                copy_events(conn, events, fold_now=False)
                conn.commit()
                assert conn.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0] == 0
                assert conn.execute("SELECT rebuild_share_aggregates()").fetchone()[0] == len(events)
            conn.commit()
            conn.execute("SELECT fold_pending_events()")
            conn.commit()
            results[pattern] = (aggregates(conn), draw_digest(conn))
            conn.commit()
    assert results[how] == results["COPY"]
    folded, (verifies, participants, shares, ranked) = results["COPY"]
    assert participants == 37 == len(ranked) and verifies
    assert sum(n for _, accepted, _, _ in folded["weeks"] for n in [accepted]) == sum(
        1 for _, kind, p in events if kind == "share_submitted" and p["accepted"])
    assert folded["buckets"][0] == folded["buckets"][1]


def test_nothing_runs_on_the_write_path_and_own_figures_are_exact_before_the_fold(fresh_db, fresh_db_url):
    assert fresh_db.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY (event_relations())"
                            " AND NOT tgisinternal").fetchone()[0] == 0
    insert_events(fresh_db, [share("alice", 500.0, "2026-11-17 10:00"), share("alice", 700.0, "2026-11-18 10:00"),
                             share("alice", 9e9, "2026-11-18 11:00", hash=hash_for(10.0))], fold_now=False)
    fresh_db.commit()
    with psycopg.connect(fresh_db_url) as reader:
        assert reader.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0] == 0
        own = reader.execute("SELECT get_weekly_game_data('alice', %s, %s)::jsonb", (WEEK, AFTER)).fetchone()[0]
        assert (own["bestDifficulty"], own["totalShares"], own["weeklyRank"]) == (700.0, 2, 1)
        assert own["dailyBestDiffs"] == [0, 500.0, 700.0, 0, 0, 0, 0]
        assert reader.execute("SELECT events FROM event_fold_lag()").fetchone()[0] == 3
        assert reader.execute("SELECT fold_pending_events()").fetchone()[0] == 3
        reader.commit()
        folded = reader.execute("SELECT get_weekly_game_data('alice', %s, %s)::jsonb", (WEEK, AFTER)).fetchone()[0]
        assert folded == own
        assert reader.execute("SELECT best_difficulty, share_count FROM share_weekly_best").fetchall() == [(700.0, 2)]
        assert reader.execute("SELECT events, seconds FROM event_fold_lag()").fetchone() == (0, 0)


def test_a_transaction_that_rolls_back_folds_nothing(fresh_db):
    insert_events(fresh_db, [share("alice", 500.0, "2026-11-17 10:00")], fold_now=False)
    fresh_db.rollback()
    insert_events(fresh_db, [share("bob", 7.0, "2026-11-17 10:00")], fold_now=False)
    fresh_db.commit()
    assert fold(fresh_db) == 1
    assert fresh_db.execute("SELECT user_id FROM share_weekly_best").fetchall() == [("bob",)]


def test_the_fold_waits_for_a_writer_that_drew_a_lower_number_and_commits_late(fresh_db, fresh_db_url):
    with psycopg.connect(fresh_db_url) as slow, psycopg.connect(fresh_db_url) as folder:
        insert_events(slow, [share("slow", 5.0, "2026-11-17 10:00")], fold_now=False)  # number 1, open
        insert_events(fresh_db, [share("fast", 7.0, "2026-11-17 10:00")], fold_now=False)  # number 2
        fresh_db.commit()
        folded = []
        worker = threading.Thread(target=lambda: folded.append(fold(folder)))
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive() and folded == []  # waiting for the slow writer, not skipping it
        slow.commit()
        worker.join(10)
        folder.commit()
    assert folded == [2]
    assert fresh_db.execute("SELECT user_id FROM share_weekly_best ORDER BY 1").fetchall() == [("fast",), ("slow",)]


def test_a_fold_killed_half_way_leaves_nothing_half_counted(fresh_db, fresh_db_url):
    insert_events(fresh_db, [share(f"u{i}", 10.0 + i, "2026-11-17 10:00") for i in range(50)], fold_now=False)
    fresh_db.commit()
    with psycopg.connect(fresh_db_url) as blocker, psycopg.connect(fresh_db_url) as folder:
        blocker.execute("LOCK TABLE share_rank_buckets IN EXCLUSIVE MODE")  # the fold stops there, half-way
        pid = folder.info.backend_pid
        worker = threading.Thread(target=lambda: pytest.raises(psycopg.Error, fold, folder))
        worker.start()
        assert wait_for(lambda: blocker.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                                (pid,)).fetchone()[0] == "Lock", 10)
        blocker.execute("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.rollback()
        worker.join(10)
    assert fresh_db.execute("SELECT folded_upto, count(*) FROM event_fold, share_weekly_best GROUP BY 1"
                            ).fetchall() == []
    assert fold(fresh_db) == 50
    fresh_db.commit()
    assert fresh_db.execute("SELECT count(*), sum(share_count) FROM share_weekly_best").fetchone() == (50, 50)
    kept, counted = rank_bucket_counts(fresh_db)
    assert kept == counted


def test_a_malformed_event_is_counted_as_such_and_blocks_nothing(fresh_db):
    insert_events(fresh_db, [share("alice", 5.0, "2026-11-17 10:00"),
                             ("2026-11-17 10:00+00", "share_submitted", {"user": "bob", "sdiff": "NaN", "accepted": True}),
                             ("2026-11-17 10:00+00", "share_submitted", {"user": "bob", "sdiff": -1, "accepted": True}),
                             ("2026-11-17 10:00+00", "new_block_network", {"diff": "x"}),
                             share("carol", 6.0, "2026-11-17 10:00")], fold_now=False)
    fresh_db.commit()
    assert fold(fresh_db) == 5
    assert fresh_db.execute("SELECT malformed FROM event_fold").fetchone() == (3,)
    assert fresh_db.execute("SELECT user_id FROM share_weekly_best ORDER BY 1").fetchall() == [("alice",), ("carol",)]


def test_concurrent_loads_of_the_same_miners_in_opposite_orders_never_deadlock(fresh_db_url):
    """Two collectors flushing the same miners in opposite orders, each folding after
    its commit: nothing is locked on the write path, folds take locks in one order."""
    users = [f"m{i:03d}" for i in range(200)]
    orders = [users, users[::-1]]
    barrier = threading.Barrier(2)
    errors = []

    def flush(order):
        try:
            with psycopg.connect(fresh_db_url) as conn:
                for rep in range(5):
                    with conn.cursor() as cur:
                        cur.executemany("INSERT INTO mining_events (ts, event_type, payload) VALUES (%s, %s, %s)",
                                        [(ts, kind, Jsonb(p)) for ts, kind, p in
                                         (share(u, 10.0 + rep, f"2026-11-17 10:{rep:02d}") for u in order)])
                    barrier.wait(timeout=30)
                    conn.commit()
                    fold(conn)
                    conn.commit()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(order,)) for order in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute("SELECT count(*), sum(share_count), min(best_difficulty) FROM share_weekly_best").fetchone()
        kept, counted = rank_bucket_counts(conn)
    assert rows == (200, 2000, 14.0)
    assert kept == counted


def test_forged_and_hashless_shares_count_as_the_rules_say(db):
    honest = share("alice", 1000.0, "2026-11-17 00:00")
    forged_below = share("alice", 800.0, "2026-11-17 01:00", hash=hash_for(10.0))   # under the honest best
    forged_above = share("alice", 1e12, "2026-11-17 02:00", hash=hash_for(10.0))    # would win
    zero_hash = share("bob", 5e11, "2026-11-17 03:00", hash="0" * 64)
    short_hash = share("carol", 4e11, "2026-11-17 04:00", hash="00000000ffff")
    insert_events(db, [honest, forged_below, forged_above, zero_hash, short_hash])
    weekly = {u: (b, n, h) for u, b, n, h in db.execute(
        "SELECT user_id, best_difficulty, share_count, best_hash FROM share_weekly_best")}
    # Forged shares count nowhere; shares without a usable hash are shares without a hash.
    assert weekly == {"alice": (1000.0, 1, hash_for(1000.0)), "bob": (5e11, 1, None), "carol": (4e11, 1, None)}
    assert db.execute("SELECT accepted_shares, unverified_shares, forged_shares FROM event_weeks").fetchone() == (3, 2, 2)
    data = db.execute("SELECT get_weekly_game_data('alice', %s, %s)", (WEEK, "2026-11-20 00:00+00")).fetchone()[0]
    assert data["totalShares"] == 1 and data["bestDifficulty"] == 1000.0 and data["dailyBestDiffs"][1] == 1000.0
    draw = db.execute("SELECT total_shares, forged_shares, unverified_results FROM run_lottery_draw(%s, %s)",
                      (WEEK, AFTER)).fetchone()
    assert draw == (3, 2, 2)
    assert db.execute("SELECT ticket_count FROM lottery_results WHERE user_id = 'alice'").fetchone() == (1,)


def test_require_share_hash_keeps_hashless_shares_from_ever_being_a_best(db):
    db.execute("UPDATE lottery_settings SET require_share_hash = true")
    insert_events(db, [share("alice", 9e9, "2026-11-17 00:00", hash="zz"), share("alice", 50.0, "2026-11-17 05:00"),
                       share("bob", 8e9, "2026-11-18 00:00", hash="")])
    rows = db.execute("SELECT user_id, best_difficulty, best_hash IS NULL, share_count, day_best"
                      " FROM share_weekly_best ORDER BY 1").fetchall()
    assert rows == [("alice", 50.0, False, 2, [0, 50.0, 0, 0, 0, 0, 0]), ("bob", 0.0, True, 1, [0] * 7)]
    ranked = db.execute("SELECT user_id, rank FROM ranked_week(%s)", (WEEK,)).fetchall()
    assert ranked == [("alice", 1), ("bob", 2)]
    draw = db.execute("SELECT total_participants, unverified_results FROM run_lottery_draw(%s, %s)",
                      (WEEK, AFTER)).fetchone()
    assert draw == (2, 1)


@pytest.mark.parametrize("ts", ["0001-01-01 00:00+00", "2008-12-31 23:59:59+00", "9999-12-31 00:00+00",
                                "infinity", "-infinity"])
def test_events_outside_the_believable_time_count_nowhere_and_name_no_week(db, ts):
    db.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES (%s, 'share_submitted', %s)",
               (ts, json.dumps({"user": "alice", "sdiff": 5.0, "accepted": True})))
    assert db.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM event_weeks").fetchone()[0] == 0
    problem = db.execute("SELECT share_event_problem('share_submitted', '{}', %s)", (ts,)).fetchone()[0]
    assert problem.startswith("ts is")


def test_an_event_two_days_ahead_counts_nowhere_and_one_a_few_hours_ahead_does(db):
    db.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES"
               " (now() + interval '2 days', 'share_submitted', '{\"user\": \"late\", \"sdiff\": 5, \"accepted\": true}'),"
               " (now() + interval '3 hours', 'share_submitted', '{\"user\": \"early\", \"sdiff\": 5, \"accepted\": true}')")
    fold(db)
    assert db.execute("SELECT user_id FROM share_weekly_best").fetchall() == [("early",)]


def test_personal_best_of_all_time_and_its_notice_at_most_once_a_minute(fresh_db):
    def add(sdiff, ts):
        insert_events(fresh_db, [share("alice", sdiff, ts)])
        fresh_db.commit()

    add(100.0, "2026-11-10 00:00")   # a first share beats nothing: no notice
    add(50.0, "2026-11-17 00:00")    # below the best of all time
    add(500.0, "2026-11-18 00:00")   # a new best of all time: one notice
    add(900.0, "2026-11-18 01:00")   # another, in the same minute of the server clock: none
    best = fresh_db.execute("SELECT best_difficulty, week_start::text FROM share_user_best").fetchone()
    notices = fresh_db.execute("SELECT subtype, body FROM notifications WHERE user_id = 'alice'").fetchall()
    assert best == (900.0, "2026-11-16")
    assert [c for c, _ in notices] == ["personal_best"] and "500" in notices[0][1]
    fresh_db.execute("UPDATE share_user_best SET notified_at = now() - interval '61 seconds'")
    fresh_db.commit()
    add(1000.0, "2026-11-18 02:00")
    assert fresh_db.execute("SELECT count(*) FROM notifications WHERE subtype = 'personal_best'").fetchone()[0] == 2


def test_the_draw_folds_what_its_own_transaction_queued(fresh_db):
    insert_events(fresh_db, [share("alice", 5.0, "2026-11-17 00:00")], fold_now=False)
    draw = fresh_db.execute("SELECT total_participants FROM run_lottery_draw(%s, %s)", (WEEK, AFTER)).fetchone()
    assert draw == (1,)
