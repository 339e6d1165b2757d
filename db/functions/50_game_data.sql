-- WeeklyGameData (spec 5.4.1) and the per-game views of CONTRACT 5.

CREATE OR REPLACE FUNCTION check_game_type(p_game_type text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_game_type IS NULL OR p_game_type NOT IN ('hammer', 'horse_race', 'slots', 'scratch_card') THEN
        RAISE SQLSTATE 'LTG01' USING
            MESSAGE = format('invalid game type %L', left(p_game_type, 64)),
            HINT = 'Game types are hammer, horse_race, slots and scratch_card.';
    END IF;
    RETURN p_game_type;
END
$$;
COMMENT ON FUNCTION check_game_type(text) IS
    'Returns p_game_type when it is hammer, horse_race, slots or scratch_card; raises LTG01 otherwise.';
GRANT EXECUTE ON FUNCTION check_game_type(text) TO lottery_web;

-- json, not jsonb: its members come out in the interface's order (jsonb sorts them).
CREATE OR REPLACE FUNCTION get_weekly_game_data(p_user_id text, p_week_start date DEFAULT NULL,
                                                p_now timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_week  date := week_or_open(p_week_start, p_now);
    v_start timestamptz := lottery_week_start_ts(v_week);
    v_end   timestamptz := lottery_week_start_ts(v_week + 7);  -- UTC, whatever the session's zone
    v_best  share_weekly_best;
    v_rank  bigint;
    v_participants bigint;
    v_network double precision;
    v_daily jsonb;
BEGIN
    PERFORM check_user_id(p_user_id);
    SELECT * INTO v_best FROM share_weekly_best WHERE week_start = v_week AND user_id = p_user_id;

    -- The final rank once the week is drawn, else the live one in the same order.
    SELECT r.rank::bigint, d.total_participants::bigint INTO v_rank, v_participants
    FROM lottery_draws d
    LEFT JOIN lottery_results r ON r.draw_id = d.id AND r.user_id = p_user_id
    WHERE d.week_start = v_start AND d.status = 'completed';
    IF NOT FOUND THEN
        SELECT l.rank, l.participants INTO v_rank, v_participants
        FROM get_live_rank(p_user_id, v_week) AS l;
    END IF;

    SELECT jsonb_agg(coalesce(d.best_difficulty, 0) ORDER BY g.day) INTO v_daily
    FROM generate_series(v_week, v_week + 6, interval '1 day') AS g(day)
    LEFT JOIN share_daily_best d ON d.user_id = p_user_id AND d.day = g.day::date;

    v_network := network_difficulty_at(least(v_end - interval '1 microsecond', p_now));

    RETURN json_build_object(
        'weekStart', iso_utc(v_start),
        'weekEnd', iso_utc(week_end_shown(v_week)),
        'bestDifficulty', coalesce(v_best.best_difficulty, 0),
        'bestHash', coalesce(v_best.best_hash, ''),
        'networkDifficulty', v_network,
        'progressRatio', get_progress_ratio(coalesce(v_best.best_difficulty, 0), v_network),
        'dailyBestDiffs', v_daily,
        'totalShares', coalesce(v_best.share_count, 0),
        'weeklyRank', coalesce(v_rank, 0),
        'percentile', lottery_percentile(v_rank, v_participants),
        'blockFound', user_found_block(p_user_id, v_week));
END
$$;
COMMENT ON FUNCTION get_weekly_game_data(text, date, timestamptz) IS
    'WeeklyGameData of a user for the week containing p_week_start (default: the open week): the 11 camelCase keys of the frontend contract, in its order. weeklyRank is final once drawn, else live; zeros without shares.';
GRANT EXECUTE ON FUNCTION get_weekly_game_data(text, date, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION game_view(p_game_type text, p_data jsonb)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE  -- as jsonb_build_object and jsonb_agg are
AS $$
    SELECT CASE check_game_type(p_game_type)
    WHEN 'hammer' THEN jsonb_build_object(
        'logBest', CASE WHEN best > 0 THEN log(best) ELSE 0 END,
        'logNetwork', CASE WHEN network > 0 THEN log(network) ELSE 0 END,
        'progressRatio', p_data->'progressRatio')
    WHEN 'horse_race' THEN (
        SELECT jsonb_build_object(
            'horses', jsonb_agg(jsonb_build_object('day', day, 'bestDifficulty', diff, 'place', place)
                                ORDER BY n),
            'winner', min(day) FILTER (WHERE place = 1))
        FROM (SELECT n, diff,
                     (ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[n] AS day,
                     row_number() OVER (ORDER BY diff DESC, n) AS place
              FROM jsonb_array_elements_text(p_data->'dailyBestDiffs') WITH ORDINALITY AS e(v, n),
                   LATERAL (SELECT e.v::double precision AS diff) AS x) AS horses)
    WHEN 'slots' THEN jsonb_build_object(
        'reels', to_jsonb(extract_slot_reels(p_data->>'bestHash')))
    WHEN 'scratch_card' THEN jsonb_build_object(
        'bestDifficulty', p_data->'bestDifficulty',
        'weeklyRank', p_data->'weeklyRank',
        'percentile', p_data->'percentile',
        'tier', lottery_tier((p_data->>'weeklyRank')::bigint),
        'xp', calculate_xp_for_rank((p_data->>'weeklyRank')::bigint))
    END
    FROM (SELECT (p_data->>'bestDifficulty')::double precision AS best,
                 (p_data->>'networkDifficulty')::double precision AS network) AS v
$$;
COMMENT ON FUNCTION game_view(text, jsonb) IS
    'The game-specific view of a WeeklyGameData object: hammer {logBest, logNetwork, progressRatio}, horse_race {horses, winner}, slots {reels}, scratch_card {bestDifficulty, weeklyRank, percentile, tier, xp}. Raises LTG01 for another game type.';
GRANT EXECUTE ON FUNCTION game_view(text, jsonb) TO lottery_web;

CREATE OR REPLACE FUNCTION get_game_data(p_user_id text, p_game_type text,
                                         p_week_start date DEFAULT NULL,
                                         p_now timestamptz DEFAULT now())
RETURNS json
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT json_object_agg(m.key, m.value ORDER BY m.n)
    FROM get_weekly_game_data(p_user_id, p_week_start, p_now) AS data,
         LATERAL (SELECT e.key, e.value, e.n FROM json_each(data) WITH ORDINALITY AS e(key, value, n)
                  UNION ALL
                  SELECT 'game', game_view(check_game_type(p_game_type), data::jsonb)::json, 12) AS m
$$;
COMMENT ON FUNCTION get_game_data(text, text, date, timestamptz) IS
    'WeeklyGameData of a user, in its order, then a "game" key holding the view of one game (see game_view).';
GRANT EXECUTE ON FUNCTION get_game_data(text, text, date, timestamptz) TO lottery_web;
