-- The weekly draw. One transaction writes the draw row, every result, the XP
-- ledger, the top-10 notifications, the weekly_rankings refresh and the
-- lottery_drawn NOTIFY: it lands whole or not at all.

CREATE OR REPLACE FUNCTION lottery_pseudonym(p_salt uuid, p_user_id text)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE  -- as convert_to is
AS $$ SELECT encode(sha256(uuid_send(p_salt) || convert_to(p_user_id, 'UTF8')), 'hex') $$;
COMMENT ON FUNCTION lottery_pseudonym(uuid, text) IS
    'The pseudonym of a user on one result of a format-2 draw: hex SHA-256 of the salt''s 16 bytes followed by the user id in UTF-8. Anyone given the salt and the id can recompute it; without the salt it reveals nothing.';
GRANT EXECUTE ON FUNCTION lottery_pseudonym(uuid, text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_line_name(p_user_id text, p_salt uuid)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- as lottery_pseudonym is
AS $$ SELECT CASE WHEN p_salt IS NULL THEN p_user_id ELSE lottery_pseudonym(p_salt, p_user_id) END $$;
COMMENT ON FUNCTION lottery_line_name(text, uuid) IS
    'Who a published result line names: the user id on a format-1 draw (no salt), the pseudonym (lottery_pseudonym) on a format-2 draw.';
GRANT EXECUTE ON FUNCTION lottery_line_name(text, uuid) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_result_line_text(p_rank integer, p_user_id text, p_best double precision,
                                                    p_hash text, p_at timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- as jsonb_build_array and to_char are: so the planner inlines it
AS $$
    SELECT jsonb_build_array(p_rank, p_user_id, p_best, coalesce(p_hash, ''), iso_utc_precise(p_at))::text
$$;
COMMENT ON FUNCTION lottery_result_line_text(integer, text, double precision, text, timestamptz) IS
    'lottery_result_line from its fields, as the session''s extra_float_digits prints floats. Inlined where the caller pins that setting once (lottery_results_digest): a per-row SET, or a whole-row argument, costs more than the line itself.';

CREATE OR REPLACE FUNCTION lottery_result_line(p_result lottery_results)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- as lottery_result_line_text is
SET extra_float_digits = 1  -- shortest exact float text, whatever the session says
AS $$
    SELECT lottery_result_line_text(p_result.rank, lottery_line_name(p_result.user_id, p_result.pseudonym_salt),
                                    p_result.best_difficulty, p_result.best_hash, p_result.best_share_at)
$$;
COMMENT ON FUNCTION lottery_result_line(lottery_results) IS
    'The canonical text of one ranked result: the JSON array [rank, name, bestDifficulty, bestHash, bestShareAt], name being the user id on a format-1 draw and the pseudonym on a format-2 one (lottery_line_name). A draw''s results_digest is the SHA-256 of these lines, each followed by a newline, in rank order.';
GRANT EXECUTE ON FUNCTION lottery_result_line(lottery_results) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_results_digest(p_draw_id uuid)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
SET extra_float_digits = 1  -- as lottery_result_line pins it, once for all rows
AS $$
    SELECT encode(sha256(convert_to(coalesce(string_agg(
               lottery_result_line_text(r.rank, lottery_line_name(r.user_id, r.pseudonym_salt), r.best_difficulty,
                                        r.best_hash, r.best_share_at)
               || E'\n', '' ORDER BY r.rank), ''), 'UTF8')), 'hex')
    FROM lottery_results r WHERE r.draw_id = p_draw_id
$$;
COMMENT ON FUNCTION lottery_results_digest(uuid) IS
    'SHA-256 (hex) of a draw''s canonical ranked list: every lottery_result_line followed by a newline, in rank order, as UTF-8.';
GRANT EXECUTE ON FUNCTION lottery_results_digest(uuid) TO lottery_bi;

CREATE OR REPLACE FUNCTION run_lottery_draw(p_week_start date DEFAULT NULL,
                                            p_now timestamptz DEFAULT now())
RETURNS lottery_draws
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now   timestamptz := lottery_clock(p_now);
    v_week  date := check_lottery_week(coalesce(p_week_start, lottery_week_at(v_now) - 7), v_now);
    v_start timestamptz := lottery_week_start_ts(v_week);
    v_end   timestamptz := lottery_week_start_ts(v_week + 7);  -- UTC, whatever the session's zone
    v_draw  lottery_draws;
    v_participants integer;
    v_shares bigint;
    v_forged bigint;
    v_unverified integer;
    v_clock timestamptz := clock_timestamp();  -- now() is the transaction's start, not the draw's
BEGIN
    -- Every event committed before the draw started (and this transaction's own) counts.
    PERFORM fold_pending_events();

    IF v_end > v_now THEN
        RAISE SQLSTATE 'LTW01' USING
            MESSAGE = format('the week of %s has not closed yet', v_week),
            HINT = format('It closes at %s; the scheduled draw runs at Monday 00:01 UTC.',
                          iso_utc(v_end));
    END IF;

    -- Claim the week. A concurrent call for the same week waits here on the
    -- unique index until the first commits, then finds the completed draw.
    INSERT INTO lottery_draws (week_start, week_end, status, ranking_format)
    VALUES (v_start, v_end, 'in_progress', 2)
    ON CONFLICT (week_start) DO NOTHING
    RETURNING * INTO v_draw;

    IF NOT FOUND THEN
        SELECT * INTO v_draw FROM lottery_draws WHERE week_start = v_start FOR UPDATE;
        IF v_draw.status = 'completed' THEN
            RETURN v_draw;
        END IF;
        -- A row left pending or failed by hand: draw it again from scratch.
        DELETE FROM lottery_results WHERE draw_id = v_draw.id;
    END IF;

    -- Each result gets its own random salt: its line is published under the
    -- pseudonym SHA-256(salt || user id), and the salt is shown to that user alone.
    WITH ranked AS (
        SELECT * FROM ranked_week(v_week)
    ), results AS (
        INSERT INTO lottery_results (draw_id, user_id, rank, best_difficulty, best_share_at,
                                     best_hash, ticket_count, xp_awarded, game_played, pseudonym_salt)
        SELECT v_draw.id, r.user_id, r.rank, r.best_difficulty, r.best_at,
               r.best_hash, r.share_count, t.xp, g.game_type, gen_random_uuid()
        FROM ranked r
        -- The tiers read once for the whole week (calculate_xp_for_rank per row would not inline).
        JOIN lottery_tiers t ON r.rank BETWEEN t.first_rank AND coalesce(t.last_rank, r.rank)
        LEFT JOIN last_games(v_week) g USING (user_id)
        ORDER BY r.rank
        RETURNING user_id, rank, best_difficulty, best_hash, ticket_count, xp_awarded
    ), xp AS (
        INSERT INTO xp_transactions (user_id, amount, source, reference_id, description)
        SELECT user_id, xp_awarded, 'lottery', v_draw.id::text,
               format('Weekly Lottery Rank #%s (week of %s)', rank, v_week)
        FROM results
        ON CONFLICT (user_id, source, reference_id) DO NOTHING
    )
    -- The forged tally is read in the ranking's own statement: one snapshot for both.
    SELECT count(*)::integer, coalesce(sum(ticket_count), 0)::bigint,
           coalesce((SELECT forged_shares FROM event_weeks WHERE week_start = v_week), 0)::bigint,
           count(*) FILTER (WHERE best_hash IS NULL)::integer
    INTO v_participants, v_shares, v_forged, v_unverified
    FROM results;

    -- Through the binding (db/binding/), in this transaction: the XP into the
    -- platform's ledger where there is one, and a notification to each of the top 10.
    PERFORM deliver_draw_xp(v_draw.id);
    PERFORM write_notification(r.user_id, 'gamification', 'lottery_result', 'Top 10 Weekly Lottery!',
                               format('You ranked #%s in the week of %s with difficulty %s. +%s XP!',
                                      r.rank, v_week, round(r.best_difficulty::numeric, 2), r.xp_awarded),
                               '/games', 'View Results')
    FROM lottery_results r
    WHERE r.draw_id = v_draw.id AND r.rank <= lottery_top_ranks('Top 10')
    ORDER BY r.rank;

    UPDATE lottery_draws
    SET status = 'completed', total_participants = v_participants, total_shares = v_shares,
        drawn_at = v_now, updated_at = now(), ranking_format = 2,
        results_digest = lottery_results_digest(v_draw.id),
        forged_shares = v_forged, unverified_results = v_unverified,
        draw_seconds = extract(epoch FROM clock_timestamp() - v_clock)
    WHERE id = v_draw.id
    RETURNING * INTO v_draw;
    -- The server log's line for every draw, whoever asked (pg_cron, the API, psql).
    RAISE LOG 'lottery draw: week % drawn, % participants, % shares, % s, digest %',
        v_week, v_draw.total_participants, v_draw.total_shares, round(v_draw.draw_seconds::numeric, 3),
        v_draw.results_digest;

    REFRESH MATERIALIZED VIEW weekly_rankings;

    PERFORM pg_notify('lottery_events', jsonb_build_object(
        'event', 'lottery_drawn',
        'data', jsonb_build_object(
            'drawId', v_draw.id,
            'weekStart', iso_utc(v_draw.week_start),
            'weekEnd', iso_utc(week_end_shown(v_week)),
            'totalParticipants', v_draw.total_participants,
            'totalShares', v_draw.total_shares))::text);
    RETURN v_draw;
END
$$;
COMMENT ON FUNCTION run_lottery_draw(date, timestamptz) IS
    'Draws the week containing p_week_start (default: the last week closed before p_now) and returns its lottery_draws row. Idempotent and safe under concurrency: a drawn week is returned as it is. Raises LTW01 for a week that has not closed.';
GRANT EXECUTE ON FUNCTION run_lottery_draw(date, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION due_draw_weeks(p_now timestamptz DEFAULT now())
RETURNS SETOF date
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT e.week_start FROM event_weeks e
    WHERE e.week_start + 7 <= lottery_week_at(lottery_clock(p_now))
      AND NOT EXISTS (SELECT FROM lottery_draws d
                      WHERE d.week_start = lottery_week_start_ts(e.week_start)
                        AND d.status = 'completed')
    ORDER BY e.week_start
$$;
COMMENT ON FUNCTION due_draw_weeks(timestamptz) IS
    'The weeks run_due_draws(p_now) would draw: closed before p_now, with events, and no completed draw; oldest first.';
GRANT EXECUTE ON FUNCTION due_draw_weeks(timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION run_due_draws(p_now timestamptz DEFAULT now())
RETURNS SETOF lottery_draws
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now timestamptz := lottery_clock(p_now);
    v_week date;
BEGIN
    -- A week whose events the background fold has not reached yet is due too.
    PERFORM fold_pending_events();
    FOR v_week IN SELECT w FROM due_draw_weeks(v_now) AS w LOOP
        -- A week is named by a day of it from 2009-01-03 on: the first week's
        -- Monday (2008-12-29) lies before the first block, its 2009-01-03 names it.
        RETURN NEXT run_lottery_draw(greatest(v_week, lottery_epoch()), v_now);
    END LOOP;
    -- Awards of miners who have registered since their draw reach the platform now.
    PERFORM deliver_pending_xp();
END
$$;
COMMENT ON FUNCTION run_due_draws(timestamptz) IS
    'Draws every week that closed before p_now, saw events and has no completed draw, oldest first; returns the draws it made. Then delivers the lottery XP still waiting for its miner''s platform user (deliver_pending_xp). pg_cron runs it Monday 00:01 UTC and hourly for catch-up.';
GRANT EXECUTE ON FUNCTION run_due_draws(timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION run_lottery_draw_json(p_week_start date, p_user_id text,
                                                 p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now timestamptz := lottery_clock(p_now);
    v_draw lottery_draws := run_lottery_draw(p_week_start, v_now);
BEGIN
    -- A statement of its own: a reader in the draw's statement would not see its results.
    RETURN lottery_draw_json(v_draw, p_user_id, v_now);
END
$$;
COMMENT ON FUNCTION run_lottery_draw_json(date, text, timestamptz) IS
    'run_lottery_draw, then the draw as the lottery endpoints show it to p_user_id (see lottery_draw_json). For the admin trigger.';
GRANT EXECUTE ON FUNCTION run_lottery_draw_json(date, text, timestamptz) TO lottery_web;
