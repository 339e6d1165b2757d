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
    v_now  timestamptz := lottery_clock(p_now);
    -- Checked once into variables: passed as expressions, they would be evaluated
    -- at every place the inlined query uses them, row by row.
    v_week date := week_or_open(p_week_start, v_now);
    v_user text := check_user_id(p_user_id);
    v_data json;
BEGIN
    -- One statement, so one snapshot (its plan is cached for the session): the
    -- user's own figures (own_week_figures: folded, plus what the fold has not
    -- reached), the final or live rank, the network difficulty at the end of
    -- the week (now, for the open week) and found blocks.
    SELECT json_build_object(
        'weekStart', iso_utc(lottery_week_start_ts(v_week)),
        'weekEnd', iso_utc(week_end_shown(v_week)),
        'bestDifficulty', coalesce(w.best_difficulty, 0),
        'bestHash', coalesce(w.best_hash, ''),
        'networkDifficulty', n.difficulty,
        'progressRatio', get_progress_ratio(coalesce(w.best_difficulty, 0), n.difficulty),
        'dailyBestDiffs', w.day_best,
        'totalShares', coalesce(w.share_count, 0),
        'weeklyRank', r.rank,
        'percentile', lottery_percentile(r.rank, r.participants),
        'blockFound', w.found_block)
    INTO v_data
    FROM own_week_figures(v_user, v_week) AS w
    CROSS JOIN LATERAL week_rank_of(v_user, v_week, w.best_difficulty, w.best_at, w.rank_bucket, w.folded) AS r
    CROSS JOIN LATERAL (SELECT network_difficulty_at(
                            least(lottery_week_start_ts(v_week + 7) - interval '1 microsecond', v_now))
                        AS difficulty) AS n;
    RETURN v_data;
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
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_data json := get_weekly_game_data(p_user_id, p_week_start, p_now);
BEGIN
    -- WeeklyGameData's members in their order, then "game" (json keeps the text
    -- as built: its closing brace makes room for one more member).
    RETURN (left(v_data::text, -1) || ', "game" : '
            || game_view(check_game_type(p_game_type), v_data::jsonb)::text || '}')::json;
END
$$;
COMMENT ON FUNCTION get_game_data(text, text, date, timestamptz) IS
    'WeeklyGameData of a user, in its order, then a "game" key holding the view of one game (see game_view).';
GRANT EXECUTE ON FUNCTION get_game_data(text, text, date, timestamptz) TO lottery_web;
