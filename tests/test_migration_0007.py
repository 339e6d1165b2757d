"""Migration 0007 on a deployment that aggregated with the statement trigger of
before: the daily rows fold into the participant-weeks, the trigger becomes the
row trigger, and events that arrive during the upgrade are folded by the apply step."""

import psycopg
import pytest

from db import apply as db_apply
from tests.helpers import database_without, share, utc

# The shape that 0001-0006 left, filled the way their statement trigger did.
OLD_TRIGGER = """
CREATE FUNCTION aggregate_share_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_weeks (week_start)
    SELECT DISTINCT date_trunc('week', ts AT TIME ZONE 'UTC')::date FROM new_events ON CONFLICT DO NOTHING;
    INSERT INTO share_daily_best AS d (user_id, day, best_difficulty, best_at, best_hash, share_count)
    SELECT DISTINCT ON (u, day) u, day, sdiff, ts, hash, count(*) OVER (PARTITION BY u, day)
    FROM (SELECT payload->>'user' AS u, (ts AT TIME ZONE 'UTC')::date AS day, (payload->>'sdiff')::float8 AS sdiff,
                 ts, payload->>'hash' AS hash FROM new_events) s
    ORDER BY u, day, sdiff DESC, ts
    ON CONFLICT (user_id, day) DO UPDATE SET share_count = d.share_count + excluded.share_count,
        best_difficulty = greatest(d.best_difficulty, excluded.best_difficulty);
    INSERT INTO share_weekly_best AS w (week_start, user_id, best_difficulty, best_at, best_hash, share_count)
    SELECT DISTINCT ON (u, wk) wk, u, sdiff, ts, hash, count(*) OVER (PARTITION BY u, wk)
    FROM (SELECT payload->>'user' AS u, date_trunc('week', ts AT TIME ZONE 'UTC')::date AS wk,
                 (payload->>'sdiff')::float8 AS sdiff, ts, payload->>'hash' AS hash FROM new_events) s
    ORDER BY u, wk, sdiff DESC, ts
    ON CONFLICT (week_start, user_id) DO UPDATE SET share_count = w.share_count + excluded.share_count,
        best_at = CASE WHEN excluded.best_difficulty > w.best_difficulty THEN excluded.best_at ELSE w.best_at END,
        best_difficulty = greatest(w.best_difficulty, excluded.best_difficulty);
    INSERT INTO share_rank_buckets AS b SELECT week_start, rank_bucket, count(*) FROM share_weekly_best
    GROUP BY 1, 2 ON CONFLICT (week_start, rank_bucket) DO UPDATE SET participants = excluded.participants;
    INSERT INTO share_rank_bucket_groups AS g SELECT week_start, rank_bucket >> 7, count(*) FROM share_weekly_best
    GROUP BY 1, 2 ON CONFLICT (week_start, bucket_group) DO UPDATE SET participants = excluded.participants;
    RETURN NULL;
END $$;
CREATE TRIGGER aggregate_shares AFTER INSERT ON mining_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION aggregate_share_events();
CREATE FUNCTION aggregate_share_event_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
"""


@pytest.fixture
def before_0007(pg_cluster):
    with database_without(pg_cluster, "0007_commit_time_aggregation", later_too=False) as (url, conn):
        conn.execute(OLD_TRIGGER)
        conn.commit()
        yield url, conn


def insert(conn, events):
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO mining_events (ts, event_type, payload) VALUES (%s, %s, %s::jsonb)",
                        [(ts, kind, psycopg.types.json.Jsonb(p)) for ts, kind, p in events])
    conn.commit()


def test_daily_rows_fold_into_the_weeks_and_no_event_of_the_upgrade_is_lost(before_0007):
    url, conn = before_0007
    insert(conn, [share("alice", 50.0, "2026-11-16 01:00"), share("alice", 70.0, "2026-11-18 01:00"),
                  share("alice", 60.0, "2026-11-18 02:00"), share("bob", 9.0, "2026-11-22 23:59")])
    assert conn.execute("SELECT count(*) FROM share_daily_best").fetchone()[0] == 3
    conn.rollback()  # no lock of ours in the migration's way

    db_apply.apply_migrations(url)  # 0007 and later (0015: the background fold), not yet the function files
    conn.rollback()
    rows = conn.execute("SELECT user_id, best_difficulty, share_count, day_best, day_shares FROM share_weekly_best"
                        " ORDER BY user_id").fetchall()
    assert rows == [("alice", 70.0, 3, [50.0, 0, 70.0, 0, 0, 0, 0], [1, 0, 2, 0, 0, 0, 0]),
                    ("bob", 9.0, 1, [0, 0, 0, 0, 0, 0, 9.0], [0, 0, 0, 0, 0, 0, 1])]
    assert conn.execute("SELECT to_regclass('share_daily_best'), to_regprocedure('aggregate_share_events()')"
                        ).fetchone() == (None, None)
    triggers = conn.execute("SELECT tgname, tgtype & 1 = 1 FROM pg_trigger WHERE tgrelid = 'mining_events'::regclass"
                            " AND NOT tgisinternal").fetchall()
    assert triggers == []  # 0007's row trigger, then nothing on the write path (0015)
    assert conn.execute("SELECT user_id, best_difficulty FROM share_user_best ORDER BY 1").fetchall() == \
        [("alice", 70.0), ("bob", 9.0)]
    assert conn.execute("SELECT accepted_shares FROM event_weeks").fetchone() == (4,)

    # A share that arrives before the function files are reloaded is numbered for the fold...
    insert(conn, [share("carol", 500.0, "2026-11-19 00:00")])
    assert conn.execute("SELECT seq IS NOT NULL FROM mining_events WHERE payload->>'user' = 'carol'").fetchone() == (True,)
    conn.rollback()
    lines = []
    db_apply.apply(url, schedule=False, log=lines.append)
    # ... and the apply step folds it.
    assert "fold: 1 pending events folded" in lines
    conn.rollback()
    assert conn.execute("SELECT best_difficulty, share_count FROM share_weekly_best WHERE user_id = 'carol'"
                        ).fetchone() == (500.0, 1)
    assert conn.execute("SELECT count(*) FROM share_upgrade_backlog").fetchone() == (0,)
    assert conn.execute("SELECT day, best_difficulty, share_count FROM share_daily_best WHERE user_id = 'alice'"
                        " ORDER BY day").fetchall() == [(utc("2026-11-16 00:00").date(), 50.0, 1),
                                                        (utc("2026-11-18 00:00").date(), 70.0, 2)]
    ranks = conn.execute("SELECT user_id, rank FROM ranked_week('2026-11-16') ORDER BY rank").fetchall()
    assert ranks == [("carol", 1), ("alice", 2), ("bob", 3)]
