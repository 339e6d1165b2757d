"""Rank buckets and their groups (migrations 0004 and 0006, db/functions/20_share_ingest.sql and
30_ranking.sql): the live rank sums whole groups of buckets, then whole buckets, and counts inside
one bucket; it must equal a plain count."""

import math
import random
import threading
from datetime import date

import psycopg

from db import apply as db_apply
from tests.helpers import fold, add_shares, database_without, hash_for, insert_events, rank_bucket_counts, share

WEEK = "2026-11-16"

# Sorted as the draw sorts: best DESC, first reached ASC, user id ASC.
BRUTE_FORCE_RANKS = """
    SELECT user_id, row_number() OVER (ORDER BY best_difficulty DESC, best_at, user_id)
    FROM share_weekly_best WHERE week_start = %s"""


def live_ranks(db, week=WEEK):
    users = [u for (u,) in db.execute("SELECT user_id FROM share_weekly_best WHERE week_start = %s", (week,))]
    return {u: db.execute("SELECT rank, participants FROM get_live_rank(%s, %s)", (u, week)).fetchone()
            for u in users}


def test_live_rank_equals_a_plain_count_across_bucket_edges_and_ties(db):
    rng = random.Random(11)
    # Difficulties on both sides of bucket edges (exp(k/2000)), exact ties, and
    # improvements that move users between buckets over several batches.
    edges = [math.exp(k / 2000) for k in range(13800, 13820)]
    values = [e * f for e in edges for f in (0.999999999, 1.0, 1.000000001)] + [5000.0] * 5
    for batch in range(6):
        insert_events(db, [share(f"u{rng.randrange(90)}", rng.choice(values),
                                 f"2026-11-{16 + batch} {rng.randrange(24):02d}:{rng.randrange(60):02d}")
                           for _ in range(120)])
    kept, counted = rank_bucket_counts(db)
    assert kept == counted and len(counted) >= 8
    expected = dict(db.execute(BRUTE_FORCE_RANKS, (WEEK,)).fetchall())
    ranks = live_ranks(db)
    assert {u: r for u, (r, _) in ranks.items()} == expected
    assert {n for _, n in ranks.values()} == {len(expected)}


def test_live_rank_sums_whole_groups_then_buckets_then_counts(db):
    """Bests spread over many bucket groups (128 buckets, 6.6% wide each), with
    neighbours on both sides of group edges, negative buckets (best < 1) and
    users sharing a bucket: every live rank is the plain count's."""
    rng = random.Random(5)
    group_edges = [math.exp(128 * g / 2000) for g in range(-30, 400, 40)]  # bucket 128g starts group g
    values = [e * f for e in group_edges for f in (0.99, 0.999999999, 1.0, 1.000000001, 1.2)] + [0.5, 0.01]
    insert_events(db, [share(f"u{i}", value, f"2026-11-{16 + i % 7} {i % 24:02d}:00")
                       for i, value in enumerate(rng.sample(values, len(values)))])
    # floor(bucket / 128), negative buckets included
    assert db.execute("SELECT rank_bucket_group(-129), rank_bucket_group(-128), rank_bucket_group(-1),"
                      " rank_bucket_group(0), rank_bucket_group(127), rank_bucket_group(128)").fetchone() == \
        (-2, -1, -1, 0, 0, 1)
    kept, counted = rank_bucket_counts(db)
    groups = {key for level, _, key, _ in counted if level == "group"}
    assert kept == counted and len(groups) >= 20 and min(groups) < 0
    expected = dict(db.execute(BRUTE_FORCE_RANKS, (WEEK,)).fetchall())
    assert {u: r for u, (r, _) in live_ranks(db).items()} == expected


def test_a_better_share_moves_the_user_to_its_new_bucket(db):
    add_shares(db, ("alice", 10.0, "2026-11-16 00:00"), ("bob", 20.0, "2026-11-16 00:00"))
    assert db.execute("SELECT rank FROM get_live_rank('alice', %s)", (WEEK,)).fetchone() == (2,)
    add_shares(db, ("alice", 30.0, "2026-11-17 00:00"))
    assert db.execute("SELECT rank FROM get_live_rank('alice', %s)", (WEEK,)).fetchone() == (1,)
    kept, counted = rank_bucket_counts(db)
    buckets = [math.floor(math.log(20.0) * 2000), math.floor(math.log(30.0) * 2000)]  # 5991 and 6802
    assert kept == counted == [("bucket", date(2026, 11, 16), buckets[0], 1),
                               ("bucket", date(2026, 11, 16), buckets[1], 1),
                               ("group", date(2026, 11, 16), buckets[0] // 128, 1),
                               ("group", date(2026, 11, 16), buckets[1] // 128, 1)]


def test_rebuild_and_truncate_keep_the_buckets(db):
    add_shares(db, *[(f"u{i}", float(i + 1), "2026-11-18 00:00") for i in range(30)])
    db.execute("UPDATE share_weekly_best SET best_difficulty = 1")  # a skew only rebuild can mend
    db.execute("SELECT rebuild_share_aggregates()")
    kept, counted = rank_bucket_counts(db)
    assert kept == counted and sum(n for level, *_, n in kept if level == "group") == 30
    db.execute("TRUNCATE share_weekly_best")
    assert db.execute("SELECT (SELECT count(*) FROM share_rank_buckets),"
                      " (SELECT count(*) FROM share_rank_bucket_groups)").fetchone() == (0, 0)


def test_concurrent_batches_keep_exact_buckets(fresh_db, fresh_db_url):
    """Four writers with overlapping users, each folding after every batch it commits
    (as the background fold, a draw and `lottery fold` may all at once): folds wait
    for each other, bucket rows are taken in key order, and the counts end exact."""
    errors = []

    def writer(seed):
        rng = random.Random(seed)
        try:
            with psycopg.connect(fresh_db_url) as conn:
                for _ in range(15):
                    insert_events(conn, [share(f"u{rng.randrange(40)}", float(rng.randrange(1, 10**6)),
                                               f"2026-11-{rng.randrange(16, 23)} 12:00")
                                         for _ in range(50)], fold_now=False)
                    conn.commit()
                    fold(conn)
                    conn.commit()
        except psycopg.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    kept, counted = rank_bucket_counts(fresh_db)
    assert kept == counted and sum(n for level, *_, n in kept if level == "group") == 40


def test_every_claim_is_hash_checked_not_only_a_user_days_best(db):
    """A forged claim below the user-day's best honest share counts nowhere either:
    not in the share count, not as a ticket; it is tallied like a forged top claim."""
    insert_events(db, [share("carol", 1e6, "2026-11-16 01:00"),
                       share("carol", 10.0, "2026-11-16 02:00", hash=hash_for(5.0)),     # forged, not the top
                       share("dave", 1e9, "2026-11-16 01:00", hash=hash_for(50.0)),      # forged top
                       share("dave", 40.0, "2026-11-16 02:00")])
    rows = dict((u, (b, n)) for u, b, n in db.execute(
        "SELECT user_id, best_difficulty, share_count FROM share_weekly_best WHERE week_start = %s", (WEEK,)))
    assert rows == {"carol": (1e6, 1), "dave": (40.0, 1)}
    assert db.execute("SELECT forged_shares FROM event_weeks WHERE week_start = %s", (WEEK,)).fetchone() == (2,)


def test_network_changes_and_blocks_are_kept_apart_and_adopted(db):
    insert_events(db, [(share("x", 1.0, "2026-11-16 00:00")[0], "new_block_network", {"diff": 7e13}),
                       (share("x", 1.0, "2026-11-17 00:00")[0], "block_found", {"user": "erin"}),
                       (share("x", 1.0, "2026-11-18 00:00")[0], "block_found", {"user": ""})])
    facts = db.execute("SELECT (SELECT array_agg(difficulty) FROM network_difficulty_changes),"
                       " (SELECT array_agg(user_id || ':' || blocks) FROM blocks_found)").fetchone()
    assert facts == ([7e13], ["erin:1"])
    # Tables that predate them (migration 0004) are filled once from raw events.
    db.execute("DELETE FROM network_difficulty_changes")
    db.execute("DELETE FROM blocks_found")
    assert db.execute("SELECT adopt_existing_events()").fetchone() == (3,)
    assert db.execute("SELECT network_difficulty_at('2026-11-20'), user_found_block('erin', %s)",
                      (WEEK,)).fetchone() == (7e13, True)
    assert db.execute("SELECT adopt_existing_events()").fetchone() == (0,)


def test_migration_0006_groups_the_buckets_a_deployment_already_keeps(pg_cluster):
    with database_without(pg_cluster, "0006_rank_bucket_groups", later_too=False) as (url, conn):
        # Aggregates as 0004's trigger left them: weekly bests and their bucket counts.
        conn.execute("""INSERT INTO share_weekly_best (week_start, user_id, best_difficulty, best_at, share_count)
                        SELECT '2026-11-16', 'u' || i, exp(i / 20.0), '2026-11-16 12:00+00', 1
                        FROM generate_series(-40, 600) AS i""")
        conn.execute("""INSERT INTO share_rank_buckets (week_start, rank_bucket, participants)
                        SELECT week_start, rank_bucket, count(*) FROM share_weekly_best GROUP BY 1, 2""")
        conn.commit()
        lines = []
        db_apply.apply(url, schedule=False, log=lines.append)
        assert lines[0].startswith("migrations: ") and "(0006_rank_bucket_groups, " in lines[0]
        kept, counted = rank_bucket_counts(conn)
        assert kept == counted and len([k for k in kept if k[0] == "group"]) >= 15
        assert conn.execute("SELECT rank, participants FROM get_live_rank('u300', %s)", (WEEK,)).fetchone() == \
            (301, 641)
