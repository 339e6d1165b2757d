-- Read side of the lottery for the frontend: a draw with the caller's result
-- and the top 10, and a user's all-time statistics.

CREATE OR REPLACE FUNCTION lottery_result_json(p_result lottery_results, p_viewer text)
RETURNS jsonb
LANGUAGE sql STABLE  -- the owner's: called by the SECURITY DEFINER draw functions
AS $$
    -- Another user's result carries no id (public_name decides what it shows);
    -- the viewer's own carries the id and, on a format-2 draw, the pseudonym and
    -- its salt: what the viewer needs to find and check their own published line.
    SELECT jsonb_build_object(
        'rank', p_result.rank,
        'displayName', public_name(p_result.user_id, p_viewer),
        'bestDifficulty', p_result.best_difficulty,
        'xpAwarded', p_result.xp_awarded,
        'gamePlayed', p_result.game_played)
        || CASE WHEN p_result.user_id IS DISTINCT FROM p_viewer THEN '{}'::jsonb
                ELSE jsonb_build_object('userId', p_result.user_id)
                     || CASE WHEN p_result.pseudonym_salt IS NULL THEN '{}'::jsonb
                             ELSE jsonb_build_object(
                                 'pseudonym', lottery_pseudonym(p_result.pseudonym_salt, p_result.user_id),
                                 'pseudonymSalt', encode(uuid_send(p_result.pseudonym_salt), 'hex')) END END
$$;
COMMENT ON FUNCTION lottery_result_json(lottery_results, text) IS
    'The camelCase JSON of one lottery result as p_viewer sees it: rank, displayName (public_name), bestDifficulty, xpAwarded, gamePlayed; on the viewer''s own result also userId and, on a format-2 draw, pseudonym and pseudonymSalt (32 hex digits), from which the viewer can recompute the pseudonym of their published line.';
REVOKE EXECUTE ON FUNCTION lottery_result_json(lottery_results, text) FROM PUBLIC;

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
        'rankingFormat', p_draw.ranking_format,
        'myResult', (SELECT lottery_result_json(r, p_user_id) FROM lottery_results r
                     WHERE r.draw_id = p_draw.id AND r.user_id = p_user_id),
        'top10', (SELECT coalesce(jsonb_agg(lottery_result_json(r, p_user_id) ORDER BY r.rank), '[]'::jsonb)
                  FROM lottery_results r WHERE r.draw_id = p_draw.id AND r.rank <= lottery_top_ranks('Top 10')),
        'nextDrawAt', iso_utc(next_draw_at(p_now)))
$$;
COMMENT ON FUNCTION lottery_draw_json(lottery_draws, text, timestamptz) IS
    'The camelCase JSON of a draw as the lottery endpoints return it to p_user_id: the draw with its rankingFormat, myResult (that user''s own result, or null), top10 (others without their ids, see lottery_result_json) and nextDrawAt.';
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
        'rankingFormat', v_draw.ranking_format,
        'line', CASE v_draw.ranking_format
                    WHEN 1 THEN '[rank, userId, bestDifficulty, bestHash, bestShareAt]'
                    ELSE '[rank, pseudonym, bestDifficulty, bestHash, bestShareAt]; pseudonym = hex sha256(salt || UTF-8 userId), the salt in the user''s own myResult' END,
        'totalParticipants', v_draw.total_participants,
        'forgedShares', v_draw.forged_shares,
        'offset', p_offset,
        'lines', (SELECT coalesce(jsonb_agg(lottery_result_line(r) ORDER BY r.rank), '[]'::jsonb)
                  FROM lottery_results r
                  WHERE r.draw_id = v_draw.id AND r.rank > p_offset AND r.rank <= p_offset + p_limit));
END
$$;
COMMENT ON FUNCTION get_draw_ranking(date, integer, bigint) IS
    'One page of the canonical ranked list of a drawn week (NULL: the latest draw) (see lottery_result_line) with its stored results_digest and rankingFormat, so that anyone can recompute the digest from every page and re-derive each best difficulty from its hash, and each participant can find their own line (format 2: by the pseudonym of their myResult). No line of a format-2 draw holds a user id. Raises LTP01 (limit 1..1000) and LTN01.';
GRANT EXECUTE ON FUNCTION get_draw_ranking(date, integer, bigint) TO lottery_web, lottery_bi;
