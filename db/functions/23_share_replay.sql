-- Rebuilding the aggregates from raw events: repairs, and adopting a
-- mining_events that already held events when this project was installed.
-- Raw events are judged by queue_events, as the background fold judges them,
-- and folded day by day, while the fold waits: only events at or below its
-- watermark are replayed, so none is counted twice.

CREATE OR REPLACE FUNCTION rebuild_share_aggregates(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    -- Only the weeks that saw events (event_weeks knows them; a table being
    -- adopted is scanned once): no bound may walk empty calendar weeks.
    v_first date := coalesce((SELECT min(week_start) FROM event_weeks),
                             lottery_week((SELECT min(ts AT TIME ZONE 'UTC')::date FROM mining_events
                                           WHERE event_time_problem(ts) IS NULL)));
    v_last  date := coalesce((SELECT max(week_start) FROM event_weeks),
                             lottery_week((SELECT max(ts AT TIME ZONE 'UTC')::date FROM mining_events
                                           WHERE event_time_problem(ts) IS NULL)));
    v_from  date := greatest(CASE WHEN isfinite(p_from) THEN lottery_week(p_from) END, v_first);
    v_to    date := least(CASE WHEN isfinite(p_to) THEN lottery_week(p_to) END, v_last);
    v_week date;
    v_events bigint := 0::bigint;
    v_batch bigint;
    v_users text[] := '{}'::text[];
    v_gone text[];
    v_upto bigint;
BEGIN
    IF v_first IS NULL THEN
        RETURN 0::bigint;  -- no events at all
    END IF;
    -- Everything committed so far folded, then the fold held still until this
    -- commits: the replay takes the events up to the watermark, the fold the rest.
    PERFORM fold_pending_events();
    SELECT f.folded_upto INTO v_upto FROM event_fold f FOR UPDATE;
    -- Whole weeks, one day per fold: the fold's sort stays small.
    FOR v_week IN SELECT generate_series(v_from, v_to, interval '7 days')::date LOOP
        -- Its raw events were dropped (drop_expired_event_partitions): a replay
        -- would find none and wipe the week's aggregates, so they stay as they are.
        CONTINUE WHEN EXISTS (SELECT FROM event_weeks e
                              WHERE e.week_start = v_week AND e.raw_events_dropped_at IS NOT NULL);
        DELETE FROM share_user_best b WHERE b.week_start = v_week;
        SELECT array_agg(w.user_id) INTO v_gone FROM share_weekly_best w WHERE w.week_start = v_week;
        v_users := v_users || coalesce(v_gone, '{}'::text[]);
        DELETE FROM share_weekly_best WHERE week_start = v_week;
        DELETE FROM share_rank_buckets WHERE week_start = v_week;  -- even if something skewed them
        DELETE FROM share_rank_bucket_groups WHERE week_start = v_week;
        DELETE FROM blocks_found WHERE week_start = v_week;
        DELETE FROM network_difficulty_changes
        WHERE ts >= lottery_week_start_ts(v_week) AND ts < lottery_week_start_ts(v_week + 7);  -- UTC days, whatever the session zone
        UPDATE event_weeks SET accepted_shares = 0, unverified_shares = 0, forged_shares = 0 WHERE week_start = v_week;
        FOR d IN 0..6 LOOP
            v_batch := queue_events(NULL, v_upto,
                                    lottery_week_start_ts(v_week + d), lottery_week_start_ts(v_week + d + 1));
            v_events := v_events + v_batch;
            PERFORM fold_pending_shares();
        END LOOP;
    END LOOP;
    -- Users whose best of all time lay in a rebuilt week: their best of the weeks there are now.
    INSERT INTO share_user_best AS a (user_id, best_difficulty, best_at, best_hash, week_start)
    SELECT DISTINCT ON (w.user_id) w.user_id, w.best_difficulty, w.best_at, w.best_hash, w.week_start
    FROM share_weekly_best w
    WHERE w.user_id = ANY (v_users)
    ORDER BY w.user_id, w.best_difficulty DESC, w.best_at
    ON CONFLICT (user_id) DO UPDATE SET
        best_difficulty = excluded.best_difficulty, best_at = excluded.best_at,
        best_hash = excluded.best_hash, week_start = excluded.week_start
    WHERE share_beats(excluded.best_difficulty, excluded.best_at, a.best_difficulty, a.best_at);
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION rebuild_share_aggregates(date, date) IS
    'Recomputes the share aggregates of every week from p_from to p_to (default: all events) from raw mining_events, through the ingest trigger; returns the number of events replayed. For repairs and for adopting an existing mining_events table. Weeks whose raw events were dropped are left as they are.';

CREATE OR REPLACE FUNCTION adopt_existing_events()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_events bigint := 0::bigint;
    v_batch bigint;
BEGIN
    -- Events that arrived while an upgrade swapped the ingest trigger (migration 0007).
    IF to_regclass('public.share_upgrade_backlog') IS NOT NULL THEN
        PERFORM open_share_queue();
        INSERT INTO pg_temp.lottery_share_queue (kind, week, dow, user_id, diff, ts, hash)
        SELECT j.kind, j.week, j.dow, j.user_id, j.diff, b.ts, j.hash
        FROM share_upgrade_backlog b CROSS JOIN LATERAL judge_event(b.ts, b.event_type, b.payload) AS j;
        GET DIAGNOSTICS v_events = ROW_COUNT;
        IF v_events > 0 THEN
            PERFORM fold_pending_shares();
            TRUNCATE share_upgrade_backlog;
        END IF;
    END IF;
    -- event_weeks gets a row for every week that saw an event, so events with
    -- no week recorded mean the aggregates were never built from them.
    IF NOT EXISTS (SELECT FROM event_weeks) AND EXISTS (SELECT FROM mining_events) THEN
        RETURN v_events + rebuild_share_aggregates();
    END IF;
    -- Aggregates built before network changes and found blocks were kept apart
    -- (migration 0004): judge those two rare event types once. Both reads go
    -- through partial indexes on mining_events.
    IF NOT EXISTS (SELECT FROM network_difficulty_changes) AND NOT EXISTS (SELECT FROM blocks_found) THEN
        PERFORM open_share_queue();
        INSERT INTO pg_temp.lottery_share_queue (kind, week, dow, user_id, diff, ts, hash)
        SELECT j.kind, j.week, j.dow, j.user_id, j.diff, e.ts, j.hash
        FROM (SELECT ts, event_type, payload, seq FROM mining_events WHERE event_type = 'new_block_network'
              UNION ALL
              SELECT ts, event_type, payload, seq FROM mining_events WHERE event_type = 'block_found') AS e
        CROSS JOIN LATERAL judge_event(e.ts, e.event_type, e.payload) AS j
        WHERE e.seq IS NULL OR e.seq <= (SELECT f.folded_upto FROM event_fold f);  -- the fold takes the rest
        GET DIAGNOSTICS v_batch = ROW_COUNT;
        IF v_batch > 0 THEN
            PERFORM fold_pending_shares();
        END IF;
        v_events := v_events + v_batch;
    END IF;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION adopt_existing_events() IS
    'Run by every apply: folds the events an upgrade held back (share_upgrade_backlog), and when mining_events holds events that were never folded (a pre-existing table), builds the aggregates from them. Returns the number of events replayed (0 when nothing to do).';
