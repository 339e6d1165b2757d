-- Share ingest: mining_events -> the aggregates the draw and every read use.
--
-- Two steps, whatever writes the events (one COPY of a million rows, the
-- collector's single-row INSERTs, a TimescaleDB hypertable's chunks):
--   1. aggregate_share_event_row(), a row trigger, judges each event by the
--      rules of 20_share_rules.sql and appends what counts to a per-session
--      queue (a temporary table: no WAL, no locks, seen by nobody else);
--   2. fold_pending_shares(), called once per transaction by a deferred
--      trigger on that queue, folds the whole queue into share_weekly_best,
--      the rank buckets, share_user_best, event_weeks, network difficulty
--      changes and found blocks, set-based and in key order, at commit.
-- So every figure is exact once the loading transaction commits, a share
-- costs one queue append plus its share of one upsert per participant-week,
-- and concurrent loads meet only at commit, where they lock in one order.

CREATE OR REPLACE FUNCTION greatest_each(p_a double precision[], p_b double precision[])
RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ARRAY[greatest(p_a[1], p_b[1]), greatest(p_a[2], p_b[2]), greatest(p_a[3], p_b[3]),
                 greatest(p_a[4], p_b[4]), greatest(p_a[5], p_b[5]), greatest(p_a[6], p_b[6]),
                 greatest(p_a[7], p_b[7])]
$$;
COMMENT ON FUNCTION greatest_each(double precision[], double precision[]) IS
    'Element-wise greatest of two 7-day arrays (share_weekly_best.day_best).';

CREATE OR REPLACE FUNCTION add_each(p_a integer[], p_b integer[])
RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ARRAY[p_a[1] + p_b[1], p_a[2] + p_b[2], p_a[3] + p_b[3], p_a[4] + p_b[4],
                 p_a[5] + p_b[5], p_a[6] + p_b[6], p_a[7] + p_b[7]]
$$;
COMMENT ON FUNCTION add_each(integer[], integer[]) IS
    'Element-wise sum of two 7-day arrays (share_weekly_best.day_shares).';

-- The daily rows, for BI and repairs: one row per user and UTC day with shares.
CREATE OR REPLACE VIEW share_daily_best AS
SELECT w.user_id, w.week_start + (d.n - 1)::integer AS day,
       w.day_best[d.n] AS best_difficulty, w.day_shares[d.n] AS share_count
FROM share_weekly_best w
CROSS JOIN LATERAL generate_series(1, 7) AS d(n)
WHERE w.day_shares[d.n] > 0;
COMMENT ON VIEW share_daily_best IS
    'Each user''s best share difficulty and share count per UTC day (from share_weekly_best.day_best / day_shares).';
GRANT SELECT ON share_daily_best TO lottery_bi;

CREATE OR REPLACE FUNCTION open_share_queue()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- Once per session: the events of the transaction as the ingest trigger
    -- judged them (kind: s share that counts, f forged share, n network
    -- difficulty, b block found, e any other well-timed event, which only
    -- names its week). first marks the first row since the last fold: the only
    -- row whose insert queues the fold at commit. Owned by the owner of the lottery: only the
    -- ingest trigger (SECURITY DEFINER) writes it, and the fold checks that.
    CREATE TEMP TABLE IF NOT EXISTS lottery_share_queue (
        first    boolean          NOT NULL,
        kind     text             NOT NULL,
        week     date             NOT NULL,
        dow      integer,
        user_id  text COLLATE "C",  -- "C": locale-aware sorting would double the fold's sort
        diff     double precision,
        ts       timestamptz      NOT NULL,
        hash     text
    ) ON COMMIT DELETE ROWS;
    CREATE CONSTRAINT TRIGGER fold_at_commit AFTER INSERT ON pg_temp.lottery_share_queue
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW WHEN (NEW.first) EXECUTE FUNCTION fold_shares_at_commit();
END
$$;
COMMENT ON FUNCTION open_share_queue() IS
    'Creates this session''s share queue (a temporary table emptied at every commit) and the deferred trigger that folds it at commit. Called by the ingest trigger the first time it needs the queue.';

CREATE OR REPLACE FUNCTION aggregate_share_event_row()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_kind text := 'e';
    v_user text;
    v_diff double precision;
    v_hash text;
BEGIN
    -- Per event: judge it (20_share_rules.sql) and append it to this session's
    -- queue; the fold does the rest at commit. The judging is PL/pgSQL
    -- assignments, whose expression state lives for the transaction, and one
    -- INSERT of plain values: one SQL statement carrying the same expressions
    -- cost twice as much, rebuilding them for every row.
    IF event_time_problem(NEW.ts) IS NOT NULL THEN
        RETURN NULL;  -- before the first block or a day ahead: no figure, no week
    END IF;
    IF NEW.event_type = 'share_submitted' THEN
        IF NEW.payload->'accepted' = 'true'::jsonb THEN
            v_user := share_user(NEW.payload);
            v_diff := share_claimed_difficulty(NEW.payload);
            IF v_user IS NOT NULL AND v_diff IS NOT NULL THEN
                v_hash := clean_hash(NEW.payload->>'hash');
                v_kind := CASE WHEN claim_exceeds_hash(v_diff, v_hash) THEN 'f' ELSE 's' END;
            END IF;
        END IF;
    ELSIF NEW.event_type = 'new_block_network' THEN
        v_diff := json_difficulty(NEW.payload->'diff');
        IF v_diff IS NOT NULL THEN
            v_kind := 'n';
        END IF;
    ELSIF NEW.event_type = 'block_found' THEN
        v_user := share_user(NEW.payload);
        IF v_user IS NOT NULL THEN
            v_kind := 'b';
        END IF;
    END IF;
    -- A transaction-local flag marks the first row since the last fold, whose
    -- deferred trigger runs the fold (fold_shares_at_commit clears the flag):
    -- asking the queue whether it is empty cost a third of the row. Only that
    -- first row looks for the queue: while the flag is on, the queue exists.
    IF current_setting('lottery.fold_queued', true) IS DISTINCT FROM 'on' THEN
        IF to_regclass('pg_temp.lottery_share_queue') IS NULL THEN
            PERFORM open_share_queue();
        END IF;
        PERFORM set_config('lottery.fold_queued', 'on', true);
        INSERT INTO pg_temp.lottery_share_queue (first, kind, week, dow, user_id, diff, ts, hash)
        VALUES (true, v_kind, lottery_week_at(NEW.ts), extract(isodow FROM NEW.ts AT TIME ZONE 'UTC')::integer,
                v_user, v_diff, NEW.ts, v_hash);
    ELSE
        INSERT INTO pg_temp.lottery_share_queue (first, kind, week, dow, user_id, diff, ts, hash)
        VALUES (false, v_kind, lottery_week_at(NEW.ts), extract(isodow FROM NEW.ts AT TIME ZONE 'UTC')::integer,
                v_user, v_diff, NEW.ts, v_hash);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION aggregate_share_event_row() IS
    'Row trigger on mining_events (plain, partitioned or a TimescaleDB hypertable) and share_replay: queues each event in the session''s share queue for fold_pending_shares(), which judges and folds them at commit.';

CREATE OR REPLACE FUNCTION fold_pending_shares()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
-- The queue has no statistics: a nested loop planned for a handful of rows
-- would run over a million-row COPY.
SET enable_nestloop = off
AS $$
DECLARE
    v_require_hash boolean := coalesce((SELECT s.require_share_hash FROM lottery_settings s), false);
    v_events bigint;
    v_weeks date[];
    v_buckets integer[];
    v_deltas bigint[];
    v_notice_users text[];
    v_notice_bests double precision[];
    v_notice_weeks date[];
BEGIN
    IF to_regclass('pg_temp.lottery_share_queue') IS NULL THEN
        RETURN 0::bigint;
    END IF;
    -- Only a queue this function's owner made (open_share_queue) is folded: a
    -- session's own table of that name, filled by hand, is not events.
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid = to_regclass('pg_temp.lottery_share_queue'))
       <> (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE SQLSTATE 'LTQ01' USING
            MESSAGE = 'the share queue of this session was not made by the ingest trigger',
            HINT = 'Drop the temporary table lottery_share_queue: the ingest trigger makes its own.';
    END IF;
    -- The week rows first: every fold takes them, so concurrent folds queue up
    -- here and never meet later in another order.
    INSERT INTO event_weeks AS e (week_start, accepted_shares, unverified_shares, forged_shares)
    SELECT q.week, count(*) FILTER (WHERE q.kind = 's'), count(*) FILTER (WHERE q.kind = 's' AND q.hash IS NULL),
           count(*) FILTER (WHERE q.kind = 'f')
    FROM pg_temp.lottery_share_queue q
    GROUP BY 1 ORDER BY 1
    ON CONFLICT (week_start) DO UPDATE SET
        accepted_shares = e.accepted_shares + excluded.accepted_shares,
        unverified_shares = e.unverified_shares + excluded.unverified_shares,
        forged_shares = e.forged_shares + excluded.forged_shares;
    GET DIAGNOSTICS v_events = ROW_COUNT;
    IF v_events = 0 THEN
        RETURN 0::bigint;  -- an empty queue (folded already)
    END IF;

    -- The rare event types weekly-data needs, kept apart so that no request
    -- reads raw events.
    INSERT INTO network_difficulty_changes (ts, difficulty)
    SELECT q.ts, q.diff FROM pg_temp.lottery_share_queue q WHERE q.kind = 'n';
    INSERT INTO blocks_found AS b (week_start, user_id, first_found_at, blocks)
    SELECT q.week, q.user_id, min(q.ts), count(*) FROM pg_temp.lottery_share_queue q
    WHERE q.kind = 'b' GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, week_start) DO UPDATE SET
        first_found_at = least(b.first_found_at, excluded.first_found_at),
        blocks = b.blocks + excluded.blocks;

    WITH shares AS (
        -- A share without a usable hash never makes a best while the policy asks for one.
        SELECT q.week, q.user_id, q.dow, q.ts, q.hash,
               CASE WHEN v_require_hash AND q.hash IS NULL THEN 0 ELSE q.diff END AS diff
        FROM pg_temp.lottery_share_queue q WHERE q.kind = 's'
    ), candidates AS (
        -- One row per participant-week of the queue: its best share (share_beats'
        -- order: difficulty DESC, then earliest), share count and seven days.
        SELECT DISTINCT ON (week, user_id)
               week, user_id, diff AS best, ts AS best_at, hash AS best_hash,
               count(*) OVER w AS shares,
               ARRAY[coalesce(max(diff) FILTER (WHERE dow = 1) OVER w, 0),
                     coalesce(max(diff) FILTER (WHERE dow = 2) OVER w, 0),
                     coalesce(max(diff) FILTER (WHERE dow = 3) OVER w, 0),
                     coalesce(max(diff) FILTER (WHERE dow = 4) OVER w, 0),
                     coalesce(max(diff) FILTER (WHERE dow = 5) OVER w, 0),
                     coalesce(max(diff) FILTER (WHERE dow = 6) OVER w, 0),
                     coalesce(max(diff) FILTER (WHERE dow = 7) OVER w, 0)] AS day_best,
               ARRAY[count(*) FILTER (WHERE dow = 1) OVER w, count(*) FILTER (WHERE dow = 2) OVER w,
                     count(*) FILTER (WHERE dow = 3) OVER w, count(*) FILTER (WHERE dow = 4) OVER w,
                     count(*) FILTER (WHERE dow = 5) OVER w, count(*) FILTER (WHERE dow = 6) OVER w,
                     count(*) FILTER (WHERE dow = 7) OVER w]::integer[] AS day_shares
        FROM shares
        WINDOW w AS (PARTITION BY week, user_id)
        ORDER BY week, user_id, diff DESC, ts, hash
    ), upserted AS (
        INSERT INTO share_weekly_best AS w
               (week_start, user_id, best_difficulty, best_at, best_hash, share_count, day_best, day_shares)
        SELECT week, user_id, best, best_at, best_hash, shares, day_best, day_shares
        FROM candidates ORDER BY week, user_id
        ON CONFLICT (week_start, user_id) DO UPDATE SET
            prev_rank_bucket = w.rank_bucket,
            share_count = w.share_count + excluded.share_count,
            day_best = greatest_each(w.day_best, excluded.day_best),
            day_shares = add_each(w.day_shares, excluded.day_shares),
            best_difficulty = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, w.best_difficulty, w.best_at)
                                   THEN excluded.best_difficulty ELSE w.best_difficulty END,
            best_at = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, w.best_difficulty, w.best_at)
                           THEN excluded.best_at ELSE w.best_at END,
            best_hash = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, w.best_difficulty, w.best_at)
                             THEN excluded.best_hash ELSE w.best_hash END
        RETURNING w.week_start, w.user_id, w.rank_bucket, w.prev_rank_bucket,  -- prev is NULL for an inserted row
                  w.best_difficulty, w.best_at, w.best_hash
    ), new_bests AS (
        -- The participant-weeks whose best is now a share of this queue.
        SELECT u.* FROM upserted u JOIN candidates c
          ON c.week = u.week_start AND c.user_id = u.user_id
         AND c.best = u.best_difficulty AND c.best_at = u.best_at
    ), all_time AS (
        INSERT INTO share_user_best AS a (user_id, best_difficulty, best_at, best_hash, week_start)
        SELECT DISTINCT ON (user_id) user_id, best_difficulty, best_at, best_hash, week_start
        FROM new_bests ORDER BY user_id, best_difficulty DESC, best_at
        ON CONFLICT (user_id) DO UPDATE SET
            best_difficulty = excluded.best_difficulty, best_at = excluded.best_at,
            best_hash = excluded.best_hash, week_start = excluded.week_start,
            notified_at = CASE WHEN a.notified_at > now() - interval '1 minute' THEN a.notified_at ELSE now() END
        WHERE share_beats(excluded.best_difficulty, excluded.best_at, a.best_difficulty, a.best_at)
        RETURNING a.user_id, a.best_difficulty, a.week_start, a.notified_at, NOT (a.xmax = 0) AS beaten
    ), moves AS (
        -- Participants move between rank buckets: +1 where a row was inserted
        -- or its bucket changed, -1 in the bucket it left.
        SELECT week_start, rank_bucket AS bucket, 1::bigint AS delta FROM upserted
        WHERE rank_bucket IS DISTINCT FROM prev_rank_bucket
        UNION ALL
        SELECT week_start, prev_rank_bucket, -1 FROM upserted
        WHERE rank_bucket <> prev_rank_bucket
    )
    SELECT (SELECT array_agg(week_start) FROM moves), (SELECT array_agg(bucket) FROM moves),
           (SELECT array_agg(delta) FROM moves),
           -- A share that beats the user's best of all time: at most one notice a minute.
           (SELECT array_agg(user_id ORDER BY user_id) FROM all_time WHERE beaten AND notified_at = now()),
           (SELECT array_agg(best_difficulty ORDER BY user_id) FROM all_time WHERE beaten AND notified_at = now()),
           (SELECT array_agg(week_start ORDER BY user_id) FROM all_time WHERE beaten AND notified_at = now())
    INTO v_weeks, v_buckets, v_deltas, v_notice_users, v_notice_bests, v_notice_weeks;

    PERFORM move_rank_buckets(v_weeks, v_buckets, v_deltas);
    PERFORM write_notification(n.user_id, 'gamification', 'personal_best', 'New personal best!',
                               format('Your best share ever: difficulty %s, in the week of %s.',
                                      round(n.best::numeric, 2), n.week),
                               '/games', 'View')
    FROM unnest(v_notice_users, v_notice_bests, v_notice_weeks) AS n(user_id, best, week);
    DELETE FROM pg_temp.lottery_share_queue;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION fold_pending_shares() IS
    'Folds this session''s queued events into every aggregate (see 22_share_fold.sql) and empties the queue; returns the number of weeks touched (0 when nothing was queued). Runs by itself at commit; rebuild_share_aggregates() calls it between batches.';

CREATE OR REPLACE FUNCTION fold_shares_at_commit()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM fold_pending_shares();
    PERFORM set_config('lottery.fold_queued', '', true);  -- the next event queues a fold again
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION fold_shares_at_commit() IS
    'Deferred constraint trigger on the session''s share queue: runs fold_pending_shares() at commit, once per fold.';

CREATE OR REPLACE FUNCTION mining_events_is_hypertable()
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_found boolean := false;
BEGIN
    IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
        EXECUTE $q$SELECT EXISTS (SELECT FROM timescaledb_information.hypertables
                                 WHERE hypertable_name = 'mining_events')$q$ INTO v_found;
    END IF;
    RETURN v_found;
END
$$;
COMMENT ON FUNCTION mining_events_is_hypertable() IS
    'Whether mining_events is a TimescaleDB hypertable (then partition upkeep leaves it to TimescaleDB).';

-- The same row trigger on every kind of mining_events, and on share_replay.
CREATE OR REPLACE TRIGGER aggregate_shares
    AFTER INSERT ON mining_events
    FOR EACH ROW EXECUTE FUNCTION aggregate_share_event_row();
CREATE OR REPLACE TRIGGER aggregate_shares
    AFTER INSERT ON share_replay
    FOR EACH ROW EXECUTE FUNCTION aggregate_share_event_row();

CREATE OR REPLACE FUNCTION fold_pending_events()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- Events fold at their own commit: what this session queued is all that can be pending.
    RETURN fold_pending_shares();
END
$$;
COMMENT ON FUNCTION fold_pending_events() IS
    'Folds every event committed before the call into the aggregates and returns how many it folded (0 when nothing was pending). Safe beside ingest and the background fold. `lottery fold` calls it.';
GRANT EXECUTE ON FUNCTION fold_pending_events() TO lottery_ingest;
