-- Game sessions (spec 5.5): one row per (user, game, week); repeats are counted.

CREATE OR REPLACE FUNCTION game_session_json(p_session game_sessions)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE  -- as jsonb_build_object and iso_utc_precise are
AS $$
    SELECT jsonb_build_object(
        'id', p_session.id,
        'gameType', p_session.game_type,
        'weekStart', iso_utc(p_session.week_start),
        'playedAt', iso_utc_precise(p_session.played_at),
        'lastPlayedAt', iso_utc_precise(p_session.last_played_at),
        'playCount', p_session.play_count,
        'resultData', p_session.result_data)
$$;
COMMENT ON FUNCTION game_session_json(game_sessions) IS
    'The camelCase JSON of a game session: id, gameType, weekStart, playedAt (first play), lastPlayedAt, playCount, resultData.';

CREATE OR REPLACE FUNCTION last_games(p_week date)
RETURNS TABLE (user_id text, game_type text)
LANGUAGE sql STABLE
AS $$
    -- One row per user who played for the week: the game last played (the
    -- latest play; on a tie, the first game type by name).
    SELECT DISTINCT ON (s.user_id) s.user_id, s.game_type
    FROM game_sessions s
    WHERE s.week_start = lottery_week_start_ts(p_week)
    ORDER BY s.user_id, s.last_played_at DESC, s.game_type
$$;
COMMENT ON FUNCTION last_games(date) IS
    'The game each user last played for the week of p_week (a Monday): what lottery_results.game_played holds once the week is drawn (the draw reads it; a later play sets it), and what the lottery history shows for a week not drawn yet.';
REVOKE EXECUTE ON FUNCTION last_games(date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION record_game_session(p_user_id text, p_game_type text,
                                               p_result_data jsonb DEFAULT '{}'::jsonb,
                                               p_week_start date DEFAULT NULL,
                                               p_now timestamptz DEFAULT now())
RETURNS TABLE (created boolean, session jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now   timestamptz := lottery_clock(p_now);
    v_week  date := week_or_open(p_week_start, v_now);
    v_start timestamptz := lottery_week_start_ts(v_week);
    v_session jsonb;
    v_created boolean;
    v_plays integer;
    v_window timestamptz;
BEGIN
    PERFORM check_user_id(p_user_id), check_game_type(p_game_type);
    IF p_result_data IS NULL OR jsonb_typeof(p_result_data) <> 'object'
       OR octet_length(p_result_data::text) > 4096
       OR jsonb_path_exists(p_result_data, 'strict $.**{9}') THEN
        RAISE SQLSTATE 'LTG02' USING
            MESSAGE = 'invalid resultData',
            HINT = 'resultData must be a JSON object of at most 4096 bytes, nested at most 8 levels.';
    END IF;
    IF v_week > lottery_week_at(v_now) THEN
        RAISE SQLSTATE 'LTG03' USING
            MESSAGE = format('the week of %s has not started', v_week),
            HINT = 'Play the open week (omit weekStart) or a past one.';
    END IF;

    -- At most 30 plays a minute per user, in a fixed window. A refused play
    -- rolls back its own count, so the window simply runs out.
    INSERT INTO play_rate_limits AS l (user_id, window_start, plays)
    VALUES (p_user_id, v_now, 1)
    ON CONFLICT (user_id) DO UPDATE SET
        plays = CASE WHEN l.window_start > v_now - interval '1 minute' THEN l.plays + 1 ELSE 1 END,
        window_start = CASE WHEN l.window_start > v_now - interval '1 minute' THEN l.window_start ELSE v_now END
    RETURNING plays, window_start INTO v_plays, v_window;
    IF v_plays > 30 THEN
        RAISE SQLSTATE 'LTR01' USING
            MESSAGE = 'too many game plays',
            DETAIL = greatest(1, ceil(extract(epoch FROM v_window + interval '1 minute' - v_now)))::text,
            HINT = 'At most 30 plays a minute; DETAIL is the seconds to wait.';
    END IF;

    INSERT INTO game_sessions AS s (user_id, game_type, week_start, played_at, last_played_at, result_data)
    VALUES (p_user_id, p_game_type, v_start, v_now, v_now, p_result_data)
    ON CONFLICT (user_id, game_type, week_start) DO UPDATE SET
        play_count = s.play_count + 1,
        last_played_at = excluded.last_played_at,
        result_data = excluded.result_data
    RETURNING game_session_json(s), (s.xmax = 0) INTO v_session, v_created;

    -- A drawn week remembers the game last played for it.
    UPDATE lottery_results r SET game_played = p_game_type
    FROM lottery_draws d
    WHERE d.id = r.draw_id AND d.week_start = v_start AND r.user_id = p_user_id
      AND r.game_played IS DISTINCT FROM p_game_type;

    RETURN QUERY SELECT v_created, v_session;
END
$$;
COMMENT ON FUNCTION record_game_session(text, text, jsonb, date, timestamptz) IS
    'Records that a user played a game for a week (default: the open week). The first play creates the session (created = true); a repeat increments playCount and updates lastPlayedAt and resultData. Raises LTU01, LTG01, LTG02, LTG03, and LTR01 past 30 plays a minute (DETAIL: seconds to wait).';
GRANT EXECUTE ON FUNCTION record_game_session(text, text, jsonb, date, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION check_page(p_limit bigint, p_offset bigint, p_max_limit integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND p_max_limit OR p_offset IS NULL OR p_offset < 0 THEN
        RAISE SQLSTATE 'LTP01' USING
            MESSAGE = format('invalid pagination limit=%s offset=%s', p_limit, p_offset),
            HINT = format('limit is 1..%s, offset is 0 or more.', p_max_limit);
    END IF;
END
$$;
COMMENT ON FUNCTION check_page(bigint, bigint, integer) IS
    'Raises LTP01 unless 1 <= p_limit <= p_max_limit and p_offset >= 0.';
GRANT EXECUTE ON FUNCTION check_page(bigint, bigint, integer) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION get_game_history(p_user_id text, p_limit integer DEFAULT 20,
                                            p_offset integer DEFAULT 0, p_game_type text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    PERFORM check_user_id(p_user_id);
    IF p_game_type IS NOT NULL THEN
        PERFORM check_game_type(p_game_type);
    END IF;
    PERFORM check_page(p_limit, p_offset, 100);
    SELECT coalesce(jsonb_agg(game_session_json(s) ORDER BY s.last_played_at DESC, s.id), '[]'::jsonb)
    INTO v_result
    FROM (SELECT * FROM game_sessions
          WHERE user_id = p_user_id AND (p_game_type IS NULL OR game_type = p_game_type)
          ORDER BY last_played_at DESC, id
          LIMIT p_limit OFFSET p_offset) AS s;
    RETURN v_result;
END
$$;
COMMENT ON FUNCTION get_game_history(text, integer, integer, text) IS
    'A user''s own game sessions, most recently played first, as a JSON array; optional game type filter. Raises LTP01 for limit outside 1..100 or a negative offset.';
GRANT EXECUTE ON FUNCTION get_game_history(text, integer, integer, text) TO lottery_web;
