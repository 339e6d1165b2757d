-- Read side of the lottery for the frontend: a draw with the caller's result
-- and the top 10, and a user's all-time statistics.

CREATE OR REPLACE FUNCTION lottery_result_json(p_result lottery_results)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'rank', p_result.rank,
        'userId', p_result.user_id,
        'displayName', coalesce(user_display_name(p_result.user_id), p_result.user_id),
        'bestDifficulty', p_result.best_difficulty,
        'xpAwarded', p_result.xp_awarded,
        'gamePlayed', p_result.game_played)
$$;
COMMENT ON FUNCTION lottery_result_json(lottery_results) IS
    'The camelCase JSON of one lottery result: rank, userId, displayName (user_display_name, else the user id), bestDifficulty, xpAwarded, gamePlayed.';

CREATE OR REPLACE FUNCTION lottery_draw_json(p_draw lottery_draws, p_user_id text,
                                             p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', p_draw.id,
        'weekStart', iso_utc(p_draw.week_start),
        'weekEnd', iso_utc(week_end_shown(lottery_week_at(p_draw.week_start))),
        'totalParticipants', p_draw.total_participants,
        'totalShares', p_draw.total_shares,
        'drawnAt', iso_utc_precise(p_draw.drawn_at),
        'status', p_draw.status,
        'resultsDigest', p_draw.results_digest,
        'forgedShares', p_draw.forged_shares,
        'myResult', (SELECT lottery_result_json(r) FROM lottery_results r
                     WHERE r.draw_id = p_draw.id AND r.user_id = p_user_id),
        'top10', (SELECT coalesce(jsonb_agg(lottery_result_json(r) ORDER BY r.rank), '[]'::jsonb)
                  FROM lottery_results r WHERE r.draw_id = p_draw.id AND r.rank <= lottery_top_ranks('Top 10')),
        'nextDrawAt', iso_utc(next_draw_at(p_now)))
$$;
COMMENT ON FUNCTION lottery_draw_json(lottery_draws, text, timestamptz) IS
    'The camelCase JSON of a draw as the lottery endpoints return it: the draw, myResult (the given user''s result or null), top10 and nextDrawAt.';
REVOKE EXECUTE ON FUNCTION lottery_draw_json(lottery_draws, text, timestamptz) FROM PUBLIC, lottery_web;

CREATE OR REPLACE FUNCTION completed_draw(p_week_start date DEFAULT NULL)
RETURNS lottery_draws
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_draw lottery_draws;
BEGIN
    SELECT * INTO v_draw FROM lottery_draws
    WHERE status = 'completed'
      AND (p_week_start IS NULL OR week_start = lottery_week_start_ts(check_lottery_week(p_week_start)))
    ORDER BY week_start DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE SQLSTATE 'LTN01' USING
            MESSAGE = CASE WHEN p_week_start IS NULL THEN 'no completed lottery draw yet'
                           ELSE format('no completed lottery draw for the week of %s', lottery_week(p_week_start)) END,
            HINT = 'Draws run every Monday at 00:01 UTC for the week that just closed.';
    END IF;
    RETURN v_draw;
END
$$;
COMMENT ON FUNCTION completed_draw(date) IS
    'The completed draw of the week containing p_week_start, or the latest one when NULL. Raises LTN01 when there is none.';
GRANT EXECUTE ON FUNCTION completed_draw(date) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION get_current_lottery(p_user_id text, p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT lottery_draw_json(completed_draw(), check_user_id(p_user_id), lottery_clock(p_now)) $$;
COMMENT ON FUNCTION get_current_lottery(text, timestamptz) IS
    'The most recent completed draw with the user''s result, the top 10 and nextDrawAt. Raises LTN01 when no draw exists.';
GRANT EXECUTE ON FUNCTION get_current_lottery(text, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION get_lottery_by_week(p_user_id text, p_week_start date,
                                               p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT lottery_draw_json(completed_draw(p_week_start), check_user_id(p_user_id), lottery_clock(p_now)) $$;
COMMENT ON FUNCTION get_lottery_by_week(text, date, timestamptz) IS
    'The completed draw of the week containing p_week_start with the user''s result, the top 10 and nextDrawAt. Raises LTN01 when that week has no draw.';
GRANT EXECUTE ON FUNCTION get_lottery_by_week(text, date, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION get_lottery_stats(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_stats jsonb;
BEGIN
    PERFORM check_user_id(p_user_id);
    WITH mine AS (
        SELECT r.rank, r.xp_awarded, d.week_start
        FROM lottery_results r JOIN lottery_draws d ON d.id = r.draw_id
        WHERE r.user_id = p_user_id AND d.status = 'completed'
    ), latest AS (
        SELECT max(week_start) AS week_start FROM lottery_draws WHERE status = 'completed'
    ), streak AS (
        -- Consecutive weeks back from the latest draw: once a week is missing,
        -- every older week falls off the expected date.
        SELECT count(*) AS weeks
        FROM (SELECT week_start, row_number() OVER (ORDER BY week_start DESC) AS n FROM mine) AS m, latest
        WHERE lottery_week_at(m.week_start) = lottery_week_at(latest.week_start) - 7 * (m.n - 1)::integer
    ), favourite AS (
        SELECT game_type FROM game_sessions WHERE user_id = p_user_id
        GROUP BY game_type ORDER BY sum(play_count) DESC, max(last_played_at) DESC, game_type
        LIMIT 1
    )
    SELECT jsonb_build_object(
        'totalWeeksParticipated', count(*),
        'bestRank', coalesce(min(rank), 0),
        'averageRank', coalesce(round(avg(rank), 2), 0),
        'totalXpFromLottery', coalesce(sum(xp_awarded), 0),
        'mostPlayedGame', (SELECT game_type FROM favourite),
        'weeksInTop10', count(*) FILTER (WHERE rank <= lottery_top_ranks('Top 10')),
        'weeksInTop50', count(*) FILTER (WHERE rank <= lottery_top_ranks('Top 50')),
        'weeksInTop100', count(*) FILTER (WHERE rank <= lottery_top_ranks('Top 100')),
        'currentStreak', (SELECT weeks FROM streak))
    INTO v_stats
    FROM mine;
    RETURN v_stats;
END
$$;
COMMENT ON FUNCTION get_lottery_stats(text) IS
    'A user''s all-time lottery statistics (spec LotteryStatsResponse, camelCase). currentStreak counts consecutive weeks with a result, back from the latest completed draw.';
GRANT EXECUTE ON FUNCTION get_lottery_stats(text) TO lottery_web;

CREATE OR REPLACE FUNCTION get_draw_ranking(p_week_start date, p_limit integer DEFAULT 100,
                                            p_offset bigint DEFAULT 0)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_draw lottery_draws;
BEGIN
    PERFORM check_page(p_limit, p_offset, 1000);
    v_draw := completed_draw(p_week_start);
    RETURN jsonb_build_object(
        'weekStart', iso_utc(v_draw.week_start),
        'resultsDigest', v_draw.results_digest,
        'digest', 'sha256 over the lines in rank order, each followed by "\n", as UTF-8',
        'totalParticipants', v_draw.total_participants,
        'forgedShares', v_draw.forged_shares,
        'offset', p_offset,
        'lines', (SELECT coalesce(jsonb_agg(lottery_result_line(r) ORDER BY r.rank), '[]'::jsonb)
                  FROM lottery_results r
                  WHERE r.draw_id = v_draw.id AND r.rank > p_offset AND r.rank <= p_offset + p_limit));
END
$$;
COMMENT ON FUNCTION get_draw_ranking(date, integer, bigint) IS
    'One page of the canonical ranked list of a drawn week (NULL: the latest draw) (see lottery_result_line) with its stored results_digest, so that anyone can recompute the digest from every page and re-derive each best difficulty from its hash. Raises LTP01 (limit 1..1000) and LTN01.';
GRANT EXECUTE ON FUNCTION get_draw_ranking(date, integer, bigint) TO lottery_web, lottery_bi;
