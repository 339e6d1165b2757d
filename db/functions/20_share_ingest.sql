-- Share ingest: the per-user-per-day and per-user-per-week aggregates are kept
-- current by one statement-level trigger per INSERT/COPY batch on mining_events,
-- so neither the draw nor a request ever scans raw events.
-- A share counts when it is accepted (JSON true), has a user (string, 1-128
-- characters) and a finite positive numeric sdiff. Anything else is skipped
-- silently: one malformed event never blocks the rest of its batch.

CREATE OR REPLACE FUNCTION share_user(p_payload jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(p_payload->'user') = 'string'
                 AND length(p_payload->>'user') BETWEEN 1 AND 128
                THEN p_payload->>'user' END
$$;
COMMENT ON FUNCTION share_user(jsonb) IS
    'The user of a share event payload, or NULL when missing, not a string, empty or longer than 128 characters.';
GRANT EXECUTE ON FUNCTION share_user(jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_claimed_difficulty(p_payload jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT json_difficulty(p_payload->'sdiff') $$;
COMMENT ON FUNCTION share_claimed_difficulty(jsonb) IS
    'The sdiff of a share event payload as json_difficulty reads it: NULL when missing, not a JSON number or not a sane positive value.';
GRANT EXECUTE ON FUNCTION share_claimed_difficulty(jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_event_problem(p_event_type text, p_payload jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- Built on the very functions the aggregate trigger filters with, so that
    -- an ingest report and the aggregates cannot disagree.
    SELECT CASE
        WHEN p_event_type IS NULL OR p_event_type = '' THEN 'event_type is missing'
        WHEN jsonb_typeof(p_payload) IS DISTINCT FROM 'object' THEN 'payload is not a JSON object'
        WHEN p_event_type = 'share_submitted' THEN CASE
            WHEN share_user(p_payload) IS NULL THEN 'user is missing, not a string, empty or longer than 128'
            WHEN share_claimed_difficulty(p_payload) IS NULL THEN 'sdiff is not a positive finite number'
            WHEN jsonb_typeof(p_payload->'accepted') IS DISTINCT FROM 'boolean' THEN 'accepted is not true or false'
            END
        WHEN p_event_type = 'new_block_network' AND json_difficulty(p_payload->'diff') IS NULL
            THEN 'diff is not a positive finite number'
        WHEN p_event_type = 'block_found' AND share_user(p_payload) IS NULL
            THEN 'user is missing, not a string, empty or longer than 128'
    END
$$;
COMMENT ON FUNCTION share_event_problem(text, jsonb) IS
    'Why an event would be ignored by the aggregates (a share with a bad user, sdiff or accepted flag; a network event without a sane diff; a block without a user), or NULL when it is well-formed. Ingest tools report lines with it.';
GRANT EXECUTE ON FUNCTION share_event_problem(text, jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_is_forged(p_sdiff double precision, p_hash text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- ckpool logs sdiff from the hash it checked, so an honest sdiff never
    -- exceeds what the hash proves; 0.1% absorbs rounding in the log.
    SELECT coalesce(p_sdiff > share_difficulty_from_hash(p_hash) * 1.001, false)
$$;
COMMENT ON FUNCTION share_is_forged(double precision, text) IS
    'Whether a share claims more difficulty (sdiff) than its hash proves, beyond 0.1%. Such shares never count and are tallied per week. A share without a valid hash cannot be checked and is not called forged.';
GRANT EXECUTE ON FUNCTION share_is_forged(double precision, text) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_beats(p_diff double precision, p_at timestamptz,
                                       p_best_diff double precision, p_best_at timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_diff > p_best_diff OR (p_diff = p_best_diff AND p_at < p_best_at) $$;
COMMENT ON FUNCTION share_beats(double precision, timestamptz, double precision, timestamptz) IS
    'Whether a share (difficulty, time) replaces a best (difficulty, time): higher difficulty, or the same reached earlier.';
GRANT EXECUTE ON FUNCTION share_beats(double precision, timestamptz, double precision, timestamptz)
    TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION aggregate_share_events()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_group_weeks  date[];
    v_groups       integer[];
    v_group_moves  bigint[];
BEGIN
    INSERT INTO event_weeks (week_start)
    SELECT DISTINCT lottery_week_at(ts) FROM new_events WHERE isfinite(ts)
    ON CONFLICT (week_start) DO NOTHING;

    -- The rare event types weekly-data needs, kept apart so that no request
    -- reads raw events: network difficulty changes and found blocks.
    INSERT INTO network_difficulty_changes (ts, difficulty)
    SELECT ts, json_difficulty(payload->'diff') FROM new_events
    WHERE event_type = 'new_block_network' AND isfinite(ts) AND json_difficulty(payload->'diff') IS NOT NULL;
    INSERT INTO blocks_found AS b (week_start, user_id, first_found_at, blocks)
    SELECT lottery_week_at(ts), share_user(payload), min(ts), count(*) FROM new_events
    WHERE event_type = 'block_found' AND isfinite(ts) AND share_user(payload) IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (user_id, week_start) DO UPDATE SET
        first_found_at = least(b.first_found_at, excluded.first_found_at),
        blocks = b.blocks + excluded.blocks;

    -- Batch first (one sort), then one upsert per (user, day) and per (user, week).
    -- User ids sort in "C" order: locale-aware comparison would double the sort.
    -- Hash checks cost more than the rest of the parsing together, so only the
    -- best claim of each user-day is checked. When that claim is forged, every
    -- share of the user-day is checked: the forged ones are tallied per week
    -- and neither counted nor kept, and the best honest one (if any) wins.
    WITH shares AS (
        -- No join anywhere: a transition table has no statistics, and a join
        -- planned for one row would run as a nested loop over the whole batch.
        SELECT *, bool_or(CASE WHEN pos = 1 THEN share_is_forged(sdiff, raw_hash) END)
                      OVER (PARTITION BY user_id, day) AS top_forged
        FROM (SELECT user_id, day, sdiff, ts, raw_hash,
                     row_number() OVER (PARTITION BY user_id, day ORDER BY sdiff DESC, ts, raw_hash) AS pos,
                     count(*) OVER (PARTITION BY user_id, day) AS shares
              FROM (SELECT share_user(payload) COLLATE "C" AS user_id,
                           (ts AT TIME ZONE 'UTC')::date AS day,
                           share_claimed_difficulty(payload) AS sdiff,
                           ts,
                           payload->>'hash' AS raw_hash
                    FROM new_events
                    WHERE event_type = 'share_submitted'
                      AND payload->'accepted' = 'true'::jsonb
                      AND isfinite(ts)) AS s
              WHERE user_id IS NOT NULL AND sdiff IS NOT NULL) AS ranked
    ), tops AS MATERIALIZED (
        SELECT user_id, day, sdiff, ts, raw_hash, shares FROM shares WHERE pos = 1 AND NOT top_forged
    ), suspects AS MATERIALIZED (
        SELECT user_id, day, sdiff, ts, raw_hash, share_is_forged(sdiff, raw_hash) AS forged
        FROM shares WHERE top_forged
    ), forged_tally AS (
        UPDATE event_weeks e SET forged_shares = e.forged_shares + f.forged
        FROM (SELECT lottery_week(day) AS week, count(*) AS forged FROM suspects
              WHERE forged GROUP BY 1) AS f
        WHERE e.week_start = f.week
    ), daily AS MATERIALIZED (
        SELECT user_id, day, sdiff, ts, clean_hash(raw_hash) AS hash, shares FROM tops
        UNION ALL
        SELECT user_id, day, sdiff, ts, clean_hash(raw_hash), shares
        FROM (SELECT DISTINCT ON (user_id, day)
                     user_id, day, sdiff, ts, raw_hash,
                     count(*) OVER (PARTITION BY user_id, day) AS shares
              FROM suspects
              WHERE NOT forged
              ORDER BY user_id, day, sdiff DESC, ts, raw_hash) AS best_honest
    ), daily_upsert AS (
        INSERT INTO share_daily_best AS d
               (user_id, day, best_difficulty, best_at, best_hash, share_count)
        SELECT user_id, day, sdiff, ts, hash, shares FROM daily
        ON CONFLICT (user_id, day) DO UPDATE SET
            share_count = d.share_count + excluded.share_count,
            best_difficulty = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, d.best_difficulty, d.best_at)
                                   THEN excluded.best_difficulty ELSE d.best_difficulty END,
            best_at = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, d.best_difficulty, d.best_at)
                           THEN excluded.best_at ELSE d.best_at END,
            best_hash = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, d.best_difficulty, d.best_at)
                             THEN excluded.best_hash ELSE d.best_hash END
    ), weekly_upsert AS (
        INSERT INTO share_weekly_best AS w
               (week_start, user_id, best_difficulty, best_at, best_hash, share_count)
        SELECT DISTINCT ON (user_id, lottery_week(day))
               lottery_week(day), user_id, sdiff, ts, hash,
               sum(shares) OVER (PARTITION BY user_id, lottery_week(day))
        FROM daily
        ORDER BY user_id, lottery_week(day), sdiff DESC, ts, hash
        ON CONFLICT (week_start, user_id) DO UPDATE SET
            prev_rank_bucket = w.rank_bucket,
            share_count = w.share_count + excluded.share_count,
            best_difficulty = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, w.best_difficulty, w.best_at)
                                   THEN excluded.best_difficulty ELSE w.best_difficulty END,
            best_at = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, w.best_difficulty, w.best_at)
                           THEN excluded.best_at ELSE w.best_at END,
            best_hash = CASE WHEN share_beats(excluded.best_difficulty, excluded.best_at, w.best_difficulty, w.best_at)
                             THEN excluded.best_hash ELSE w.best_hash END
        RETURNING w.week_start, w.rank_bucket, w.prev_rank_bucket  -- prev is NULL for an inserted row
    ), moves AS MATERIALIZED (
        -- Participants move between rank buckets: +1 where a row was inserted
        -- or its bucket changed, -1 in the bucket it left.
        SELECT week_start, bucket, sum(delta) AS delta
        FROM (SELECT week_start, rank_bucket AS bucket, 1 AS delta FROM weekly_upsert
              WHERE rank_bucket IS DISTINCT FROM prev_rank_bucket
              UNION ALL
              SELECT week_start, prev_rank_bucket, -1 FROM weekly_upsert
              WHERE rank_bucket <> prev_rank_bucket) AS m
        GROUP BY 1, 2
        HAVING sum(delta) <> 0
    ), bucket_upsert AS (
        INSERT INTO share_rank_buckets AS b (week_start, rank_bucket, participants)
        SELECT week_start, bucket, delta FROM moves ORDER BY 1, 2
        ON CONFLICT (week_start, rank_bucket) DO UPDATE SET participants = b.participants + excluded.participants
    )
    -- The same moves summed per group, carried to the next statement. (One
    -- aggregate node feeds the three arrays the rows in the same order.)
    SELECT array_agg(week_start), array_agg(bucket_group), array_agg(delta)
    INTO v_group_weeks, v_groups, v_group_moves
    FROM (SELECT week_start, rank_bucket_group(bucket) AS bucket_group, sum(delta)::bigint AS delta
          FROM moves GROUP BY 1, 2 HAVING sum(delta) <> 0) AS g;

    -- Bucket rows above, then group rows here, each in key order: concurrent
    -- batches wait for each other but never deadlock.
    INSERT INTO share_rank_bucket_groups AS g (week_start, bucket_group, participants)
    SELECT * FROM unnest(v_group_weeks, v_groups, v_group_moves) ORDER BY 1, 2
    ON CONFLICT (week_start, bucket_group) DO UPDATE SET participants = g.participants + excluded.participants;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION aggregate_share_events() IS
    'Statement trigger on mining_events (and share_replay): folds each inserted batch of accepted, well-formed shares into share_daily_best, share_weekly_best, share_rank_buckets and share_rank_bucket_groups, network difficulty changes into network_difficulty_changes, found blocks into blocks_found, and records the weeks that saw events.';

CREATE OR REPLACE FUNCTION aggregate_share_event_row()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- TimescaleDB hypertables allow no transition tables, so each row goes
    -- through share_replay, whose statement trigger does the aggregation.
    INSERT INTO share_replay (ts, event_type, payload) VALUES (NEW.ts, NEW.event_type, NEW.payload);
    DELETE FROM share_replay;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION aggregate_share_event_row() IS
    'Row trigger for a mining_events that is a TimescaleDB hypertable (no transition tables there): aggregates each row through share_replay.';

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
    'Whether mining_events is a TimescaleDB hypertable (then share aggregation uses a row trigger).';

-- One batch, one aggregation: a statement trigger with a transition table,
-- or the row trigger where the table is a hypertable.
DO $$
BEGIN
    IF mining_events_is_hypertable() THEN
        DROP TRIGGER IF EXISTS aggregate_shares ON mining_events;
        CREATE OR REPLACE TRIGGER aggregate_shares_row
            AFTER INSERT ON mining_events
            FOR EACH ROW EXECUTE FUNCTION aggregate_share_event_row();
    ELSE
        DROP TRIGGER IF EXISTS aggregate_shares_row ON mining_events;
        CREATE OR REPLACE TRIGGER aggregate_shares
            AFTER INSERT ON mining_events
            REFERENCING NEW TABLE AS new_events
            FOR EACH STATEMENT EXECUTE FUNCTION aggregate_share_events();
    END IF;
END
$$;

CREATE OR REPLACE TRIGGER aggregate_shares
    AFTER INSERT ON share_replay
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION aggregate_share_events();

CREATE OR REPLACE FUNCTION rebuild_share_aggregates(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    -- Only the weeks that saw events (event_weeks knows them; a table being
    -- adopted is scanned once): no bound may walk empty calendar weeks.
    v_first date := coalesce((SELECT min(week_start) FROM event_weeks),
                             lottery_week((SELECT min(ts AT TIME ZONE 'UTC')::date FROM mining_events WHERE isfinite(ts))));
    v_last  date := coalesce((SELECT max(week_start) FROM event_weeks),
                             lottery_week((SELECT max(ts AT TIME ZONE 'UTC')::date FROM mining_events WHERE isfinite(ts))));
    v_from  date := greatest(CASE WHEN isfinite(p_from) THEN lottery_week(p_from) END, v_first);
    v_to    date := least(CASE WHEN isfinite(p_to) THEN lottery_week(p_to) END, v_last);
    v_week date;
    v_events bigint := 0::bigint;
    v_batch bigint;
BEGIN
    IF v_first IS NULL THEN
        RETURN 0::bigint;  -- no events at all
    END IF;
    -- Whole weeks, one day per batch: the trigger's sort stays small.
    FOR v_week IN SELECT generate_series(v_from, v_to, interval '7 days')::date LOOP
        -- Its raw events were dropped (drop_expired_event_partitions): a replay
        -- would find none and wipe the week's aggregates, so they stay as they are.
        CONTINUE WHEN EXISTS (SELECT FROM event_weeks e
                              WHERE e.week_start = v_week AND e.raw_events_dropped_at IS NOT NULL);
        DELETE FROM share_weekly_best WHERE week_start = v_week;
        DELETE FROM share_rank_buckets WHERE week_start = v_week;  -- even if something skewed them
        DELETE FROM share_rank_bucket_groups WHERE week_start = v_week;
        DELETE FROM share_daily_best WHERE day >= v_week AND day < v_week + 7;
        DELETE FROM blocks_found WHERE week_start = v_week;
        DELETE FROM network_difficulty_changes
        WHERE ts >= lottery_week_start_ts(v_week) AND ts < lottery_week_start_ts(v_week) + interval '7 days';
        FOR d IN 0..6 LOOP
            INSERT INTO share_replay (ts, event_type, payload)
            SELECT ts, event_type, payload FROM mining_events
            WHERE ts >= lottery_week_start_ts(v_week) + make_interval(days => d)
              AND ts <  lottery_week_start_ts(v_week) + make_interval(days => d + 1);
            GET DIAGNOSTICS v_batch = ROW_COUNT;
            v_events := v_events + v_batch;
            TRUNCATE share_replay;
        END LOOP;
    END LOOP;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION rebuild_share_aggregates(date, date) IS
    'Recomputes the share aggregates of every week from p_from to p_to (default: all events) from raw mining_events; returns the number of events replayed. For repairs and for adopting an existing mining_events table.';

CREATE OR REPLACE FUNCTION adopt_existing_events()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_events bigint := 0::bigint;
BEGIN
    -- event_weeks gets a row for every week that saw an event, so events with
    -- no week recorded mean the aggregates were never built from them.
    IF NOT EXISTS (SELECT FROM event_weeks) AND EXISTS (SELECT FROM mining_events) THEN
        RETURN rebuild_share_aggregates();
    END IF;
    -- Aggregates built before network changes and found blocks were kept apart
    -- (migration 0004): replay those two rare event types once through the
    -- ingest trigger. Both reads go through partial indexes on mining_events.
    IF NOT EXISTS (SELECT FROM network_difficulty_changes) AND NOT EXISTS (SELECT FROM blocks_found) THEN
        INSERT INTO share_replay (ts, event_type, payload)
        SELECT ts, event_type, payload FROM mining_events WHERE event_type = 'new_block_network'
        UNION ALL
        SELECT ts, event_type, payload FROM mining_events WHERE event_type = 'block_found';
        GET DIAGNOSTICS v_events = ROW_COUNT;
        TRUNCATE share_replay;
    END IF;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION adopt_existing_events() IS
    'Run by every apply: when mining_events holds events that never passed the aggregate trigger (a pre-existing table), builds the aggregates from them. Returns the number of events replayed (0 when nothing to do).';
