-- Share ingest: mining_events -> the aggregates the draw and every read use.
--
-- Nothing of this project runs on the write path: an event costs its number
-- from mining_events_seq (the seq default) and the table's indexes. Folding
-- happens after commit, in three steps:
--   1. fold_pending_events() reads the highest number handed out, waits for
--      every writer that could still commit a lower one (wait_for_event_writers),
--      so that no late-committing writer is skipped;
--   2. queue_events() judges the events above the watermark set-based by the
--      rules of 20_share_rules.sql (event_fields, event_kind) into a per-session
--      queue (a temporary table: no WAL, seen by nobody else);
--   3. fold_pending_shares() folds the queue into share_weekly_best, the rank
--      buckets, share_user_best, event_weeks, network difficulty changes and
--      found blocks, in key order, and the watermark (event_fold) moves in the
--      same transaction: a fold killed half-way leaves nothing half-counted.
-- Reads add a user's own events above the watermark (own_week_figures), so a
-- user's own figures are exact before the fold reaches them; others' show up
-- in the live rank and leaderboards once folded. pg_cron's lottery-fold job
-- (fold_events_for, looping within its minute) or `lottery fold --follow` folds.

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

CREATE OR REPLACE FUNCTION event_fields(p_ts timestamptz, p_event_type text, p_user jsonb, p_accepted jsonb,
                                        p_sdiff jsonb, p_diff jsonb, p_hash text)
RETURNS TABLE (bad_time boolean, user_id text, accepted jsonb, diff double precision,
               network_diff double precision, hash text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- What the rules of 20_share_rules.sql make of an event's members (payload's
    -- user, accepted, sdiff, diff and hash). A function in FROM, so that the
    -- planner inlines it; callers judging many rows take the members out once,
    -- and put this under an OFFSET 0 barrier whose columns event_kind reads.
    SELECT event_time_problem(p_ts) IS NOT NULL, json_user(p_user), p_accepted,
           CASE WHEN p_event_type = 'share_submitted' THEN json_difficulty(p_sdiff) END,
           CASE WHEN p_event_type = 'new_block_network' THEN json_difficulty(p_diff) END,
           CASE WHEN p_event_type = 'share_submitted' THEN clean_hash(p_hash) END
$$;
COMMENT ON FUNCTION event_fields(timestamptz, text, jsonb, jsonb, jsonb, jsonb, text) IS
    'The fields the ingest rules judge an event by, from its time, type and payload members user, accepted, sdiff, diff and hash (as text): whether its time is unbelievable, its user, accepted flag, claimed sdiff (shares), network diff (new_block_network) and usable hash (shares).';
GRANT EXECUTE ON FUNCTION event_fields(timestamptz, text, jsonb, jsonb, jsonb, jsonb, text) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION event_kind(p_event_type text, p_bad_time boolean, p_user text, p_accepted jsonb,
                                      p_diff double precision, p_network_diff double precision, p_hash text,
                                      p_payload jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- s a share that counts, f a forged share, n a network difficulty, b a found
    -- block, e any other well-formed event (a rejected share, another type), x an
    -- event share_event_problem() would report. Only s, f, n and b count; every
    -- event with a believable time names its week.
    SELECT CASE
        WHEN p_bad_time THEN 'x'
        WHEN p_event_type = 'share_submitted' THEN CASE
            WHEN p_user IS NULL OR jsonb_typeof(p_accepted) IS DISTINCT FROM 'boolean' THEN 'x'
            WHEN p_accepted <> 'true'::jsonb THEN 'e'
            WHEN p_diff IS NULL THEN 'x'
            WHEN claim_exceeds_hash(p_diff, p_hash) THEN 'f'
            ELSE 's' END
        WHEN p_event_type = 'new_block_network' THEN CASE WHEN p_network_diff IS NULL THEN 'x' ELSE 'n' END
        WHEN p_event_type = 'block_found' THEN CASE WHEN p_user IS NULL THEN 'x' ELSE 'b' END
        WHEN p_event_type IS NULL OR p_event_type = '' OR jsonb_typeof(p_payload) IS DISTINCT FROM 'object' THEN 'x'
        ELSE 'e' END
$$;
COMMENT ON FUNCTION event_kind(text, boolean, text, jsonb, double precision, double precision, text, jsonb) IS
    'The kind of an event from its event_fields: s counting share, f forged share, n network difficulty, b found block, e other well-formed event, x malformed (what share_event_problem reports).';
GRANT EXECUTE ON FUNCTION event_kind(text, boolean, text, jsonb, double precision, double precision, text, jsonb)
    TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION judge_event(p_ts timestamptz, p_event_type text, p_payload jsonb)
RETURNS TABLE (kind text, week date, dow integer, user_id text, diff double precision, hash text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT event_kind(p_event_type, f.bad_time, f.user_id, f.accepted, f.diff, f.network_diff, f.hash, p_payload),
           CASE WHEN NOT f.bad_time THEN lottery_week_at(p_ts) END,
           extract(isodow FROM p_ts AT TIME ZONE 'UTC')::integer, f.user_id, coalesce(f.diff, f.network_diff), f.hash
    -- OFFSET 0: event_kind then reads plain columns and is inlined; given the
    -- fields' expressions it would run as a function call of its own per row.
    FROM (SELECT * FROM event_fields(p_ts, p_event_type, p_payload->'user', p_payload->'accepted',
                                     p_payload->'sdiff', p_payload->'diff', p_payload->>'hash') OFFSET 0) AS f
$$;
COMMENT ON FUNCTION judge_event(timestamptz, text, jsonb) IS
    'One event judged: its kind (event_kind), ISO week (NULL for an unbelievable time), ISO day of week, user, difficulty (sdiff or network diff) and usable hash. For a handful of rows (a user''s unfolded events); queue_events judges many the same way, computing each field once.';
GRANT EXECUTE ON FUNCTION judge_event(timestamptz, text, jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION open_share_queue()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- The session's queue: the fold's input, judged. Owned by the owner of the
    -- lottery (this function is SECURITY DEFINER).
    CREATE TEMP TABLE IF NOT EXISTS lottery_share_queue (
        kind     text             NOT NULL,
        week     date,
        dow      integer,
        user_id  text COLLATE "C",  -- "C": locale-aware sorting would double the fold's sort
        diff     double precision,
        ts       timestamptz      NOT NULL,
        hash     text
    ) ON COMMIT DELETE ROWS;
    -- Only a queue made here holds events: a session's own table of that name,
    -- filled by hand, is never folded.
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid = to_regclass('pg_temp.lottery_share_queue'))
       <> (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE SQLSTATE 'LTQ01' USING
            MESSAGE = 'the share queue of this session was not made by the fold',
            HINT = 'Drop the temporary table lottery_share_queue: the fold makes its own.';
    END IF;
END
$$;
COMMENT ON FUNCTION open_share_queue() IS
    'Creates this session''s share queue (pg_temp.lottery_share_queue, emptied at every commit) when missing; raises LTQ01 when a table of that name belongs to another role.';
REVOKE EXECUTE ON FUNCTION open_share_queue() FROM PUBLIC;

CREATE OR REPLACE FUNCTION queue_events(p_after bigint, p_upto bigint,
                                        p_from timestamptz DEFAULT NULL, p_to timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET jit = off  -- compiling the judging expressions costs more than a batch's run of them
AS $$
DECLARE
    v_rows bigint;
BEGIN
    PERFORM open_share_queue();
    -- Events numbered in (p_after, p_upto]; or, for replays, timed in [p_from,
    -- p_to) and numbered up to p_upto (or unnumbered) when p_after is NULL. Each
    -- OFFSET 0 barrier turns the level below into plain values: the payload's
    -- members are taken out once, and event_fields' columns computed once for
    -- event_kind to read as often as it likes.
    EXECUTE format($q$
        INSERT INTO pg_temp.lottery_share_queue (kind, week, dow, user_id, diff, ts, hash)
        SELECT event_kind(a.event_type, a.bad_time, a.user_id, a.accepted, a.diff, a.network_diff, a.hash, a.payload),
               CASE WHEN NOT a.bad_time THEN lottery_week_at(a.ts) END,
               extract(isodow FROM a.ts AT TIME ZONE 'UTC')::integer, a.user_id,
               coalesce(a.diff, a.network_diff), coalesce(a.ts, '-infinity'), a.hash
        FROM (SELECT r.ts, r.event_type, r.payload, f.*
              FROM (SELECT e.ts, e.event_type, e.payload, e.payload->'user' AS u, e.payload->'accepted' AS acc,
                           e.payload->'sdiff' AS sdiff, e.payload->'diff' AS diff, e.payload->>'hash' AS hash
                    FROM mining_events e WHERE %s OFFSET 0) AS r
              CROSS JOIN LATERAL event_fields(r.ts, r.event_type, r.u, r.acc, r.sdiff, r.diff, r.hash) AS f
              OFFSET 0) AS a$q$,
        CASE WHEN p_after IS NOT NULL THEN 'e.seq > $1 AND e.seq <= $2'
             WHEN p_upto IS NULL THEN 'e.ts >= $3 AND e.ts < $4'
             ELSE 'e.ts >= $3 AND e.ts < $4 AND (e.seq IS NULL OR e.seq <= $2)' END)
        USING p_after, p_upto, p_from, p_to;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION queue_events(bigint, bigint, timestamptz, timestamptz) IS
    'Judges the events of mining_events numbered in (p_after, p_upto]; with p_after NULL, those timed in [p_from, p_to) and, unless p_upto is NULL too, unnumbered or numbered up to p_upto; into this session''s queue for fold_pending_shares(). Returns how many it queued.';
REVOKE EXECUTE ON FUNCTION queue_events(bigint, bigint, timestamptz, timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION fold_pending_shares()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
-- The queue has no statistics: a nested loop planned for a handful of rows
-- would run over a million-row COPY.
SET enable_nestloop = off
-- Sorts of a batch stay in memory; compiling its expressions would cost more than running them.
SET work_mem = '256MB' SET jit = off
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
    PERFORM open_share_queue();  -- ours, or LTQ01
    -- The week rows first: every fold takes them, so concurrent folds queue up
    -- here and never meet later in another order.
    INSERT INTO event_weeks AS e (week_start, accepted_shares, unverified_shares, forged_shares)
    SELECT q.week, count(*) FILTER (WHERE q.kind = 's'), count(*) FILTER (WHERE q.kind = 's' AND q.hash IS NULL),
           count(*) FILTER (WHERE q.kind = 'f')
    FROM pg_temp.lottery_share_queue q
    WHERE q.week IS NOT NULL
    GROUP BY 1 ORDER BY 1
    ON CONFLICT (week_start) DO UPDATE SET
        accepted_shares = e.accepted_shares + excluded.accepted_shares,
        unverified_shares = e.unverified_shares + excluded.unverified_shares,
        forged_shares = e.forged_shares + excluded.forged_shares;
    GET DIAGNOSTICS v_events = ROW_COUNT;
    IF v_events = 0 THEN
        DELETE FROM pg_temp.lottery_share_queue;  -- at most events that name no week
        RETURN 0::bigint;
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
    'Folds this session''s queue (queue_events) into every aggregate and empties it; returns the number of weeks touched (0 when nothing was queued). fold_events() and rebuild_share_aggregates() call it.';

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


CREATE OR REPLACE FUNCTION event_relations()
RETURNS oid[]
LANGUAGE sql STABLE
AS $$
    -- Partitions and TimescaleDB chunks alike hang below it in pg_inherits.
    WITH RECURSIVE tree (relid) AS (
        SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass('public.mining_events')
        UNION ALL
        SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid)
    SELECT array_agg(relid) FROM tree
$$;
COMMENT ON FUNCTION event_relations() IS
    'mining_events and every relation below it (partitions, TimescaleDB chunks): what a writer of events locks.';

CREATE OR REPLACE FUNCTION wait_for_event_writers(p_timeout interval DEFAULT interval '30 seconds')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_relations oid[] := event_relations();
    v_deadline timestamptz := clock_timestamp() + p_timeout;
    v_writers text[];
    v_waited integer;
BEGIN
    -- Every writer that drew a number up to now holds RowExclusiveLock on an
    -- event relation until its transaction ends (the lock comes before the
    -- column default). Wait for exactly those transactions, not for the table:
    -- writers that start meanwhile draw higher numbers and go on unhindered.
    SELECT array_agg(DISTINCT l.virtualtransaction) INTO v_writers
    FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.relation = ANY (v_relations) AND l.mode = 'RowExclusiveLock'
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
      AND l.pid IS DISTINCT FROM pg_backend_pid();
    v_waited := coalesce(array_length(v_writers, 1), 0);
    WHILE v_writers IS NOT NULL LOOP
        SELECT array_agg(DISTINCT l.virtualtransaction) INTO v_writers
        FROM pg_locks l
        WHERE l.locktype = 'relation' AND l.relation = ANY (v_relations) AND l.mode = 'RowExclusiveLock'
          AND l.virtualtransaction = ANY (v_writers);
        EXIT WHEN v_writers IS NULL;
        IF clock_timestamp() > v_deadline THEN
            RAISE SQLSTATE 'LTF01' USING
                MESSAGE = format('a writer of mining_events has kept its transaction open for over %s (%s)',
                                 p_timeout, array_to_string(v_writers, ', ')),
                HINT = 'Its events cannot be folded before it commits or rolls back: see pg_stat_activity (state "idle in transaction") for that virtual transaction.';
        END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
    RETURN v_waited;
END
$$;
COMMENT ON FUNCTION wait_for_event_writers(interval) IS
    'Waits until every transaction that was writing mining_events when called has ended (new writers are not waited for); returns how many it waited for. Raises LTF01 when one stays open longer than p_timeout.';
REVOKE EXECUTE ON FUNCTION wait_for_event_writers(interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION fold_events(p_limit bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_read_at timestamptz := clock_timestamp();
    -- The highest number handed out so far (NULL before the first event).
    v_drawn bigint := (SELECT s.last_value FROM mining_events_seq s WHERE s.is_called);
    v_from bigint;
    v_upto bigint;
    v_events bigint := 0::bigint;
    v_malformed bigint := 0::bigint;
BEGIN
    IF v_drawn IS NULL THEN
        RETURN 0::bigint;
    END IF;
    PERFORM wait_for_event_writers();  -- now every event numbered up to v_drawn is committed or gone
    -- One folder at a time: a second waits here, then finds the watermark moved.
    SELECT f.folded_upto INTO v_from FROM event_fold f FOR UPDATE;
    v_upto := greatest(v_from, least(v_drawn, v_from + p_limit));
    IF v_upto > v_from THEN
        v_events := queue_events(v_from, v_upto);
        SELECT count(*) INTO v_malformed FROM pg_temp.lottery_share_queue q WHERE q.kind = 'x';
        PERFORM fold_pending_shares();
    END IF;
    -- folded_at: everything written before it is folded, when this fold reached
    -- the last number handed out (a batch cut short by p_limit leaves it).
    UPDATE event_fold SET
        folded_upto = v_upto,
        folded_at = CASE WHEN v_upto = v_drawn THEN v_read_at ELSE folded_at END,
        events_folded = events_folded + v_events,
        malformed = malformed + v_malformed
    WHERE singleton;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION fold_events(bigint) IS
    'One fold: waits for the writers that could still commit an event numbered up to the sequence''s last value, then judges and folds the events above the watermark (at most p_limit of their numbers; all with NULL) and moves the watermark, in this transaction. Returns the number of events folded.';
REVOKE EXECUTE ON FUNCTION fold_events(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION fold_pending_events()
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT fold_events(NULL) $$;
COMMENT ON FUNCTION fold_pending_events() IS
    'Folds every event committed before the call (and this transaction''s own) into the aggregates and returns how many it folded (0 when nothing was pending). Safe beside ingest and the background fold. `lottery fold` calls it; so does every draw.';
GRANT EXECUTE ON FUNCTION fold_pending_events() TO lottery_ingest;

CREATE OR REPLACE PROCEDURE fold_events_for(p_seconds integer DEFAULT 55, p_batch integer DEFAULT 100000,
                                            p_idle_ms integer DEFAULT 200)
LANGUAGE plpgsql
-- Not SECURITY DEFINER and no SET clause: either forbids the COMMITs below.
-- pg_cron runs it as the owner; names are qualified.
AS $$
DECLARE
    v_until timestamptz := clock_timestamp() + make_interval(secs => p_seconds);
    v_folded bigint;
BEGIN
    -- One loop at a time: pg_cron starts one a minute, and one may still be at work.
    IF NOT pg_try_advisory_lock(hashtext('lottery-fold')) THEN
        RETURN;
    END IF;
    LOOP
        v_folded := public.fold_events(p_batch);
        COMMIT;
        EXIT WHEN clock_timestamp() >= v_until;
        IF v_folded = 0 THEN
            PERFORM pg_sleep(p_idle_ms / 1000.0);
        END IF;
    END LOOP;
    PERFORM pg_advisory_unlock(hashtext('lottery-fold'));
END
$$;
COMMENT ON PROCEDURE fold_events_for(integer, integer, integer) IS
    'The background fold (pg_cron job lottery-fold, every minute): folds batches of at most p_batch event numbers, committing after each, for p_seconds; sleeps p_idle_ms when nothing was pending. A second loop started while one runs returns at once. Needs a non-atomic CALL (autocommit, as pg_cron runs it).';
REVOKE EXECUTE ON PROCEDURE fold_events_for(integer, integer, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION event_fold_lag()
RETURNS TABLE (events bigint, seconds double precision, folded_upto bigint, folded_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    -- Events: numbers handed out above the watermark (an upper bound: aborted
    -- writers leave gaps). Seconds: how long ago the fold last had everything
    -- written before it, while events are pending: the oldest pending event is
    -- at most that old. 0 and 0 when nothing is pending.
    SELECT p.pending, CASE WHEN p.pending > 0
                           THEN coalesce(extract(epoch FROM clock_timestamp() - f.folded_at)::double precision, 0)
                           ELSE 0 END,
           f.folded_upto, f.folded_at
    FROM event_fold f
    CROSS JOIN LATERAL (SELECT greatest(coalesce((SELECT s.last_value FROM mining_events_seq s WHERE s.is_called), 0)
                                        - f.folded_upto, 0) AS pending) AS p
$$;
COMMENT ON FUNCTION event_fold_lag() IS
    'How far the background fold is behind: events numbered above its watermark (an upper bound), and how many seconds old the oldest of them can be (0 and 0 when none is pending). /metrics and lottery status read it.';
GRANT EXECUTE ON FUNCTION event_fold_lag() TO lottery_web, lottery_bi;
