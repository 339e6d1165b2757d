-- Leaderboards, the caller's lottery history and personal bests. A week's
-- board is live (the aggregates, in the draw's exact order: rank_page) until
-- the week is drawn, and the draw's results after. Every other user appears
-- as public_name shows them (35_privacy.sql).

-- json, not jsonb, for the rows and their page: built as text once, where jsonb
-- would build, sort and re-serialise every row of every page.
CREATE OR REPLACE FUNCTION leaderboard_row_json(p_rank bigint, p_user_id text, p_best double precision,
                                                p_best_at timestamptz, p_viewer text)
RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_user_id = p_viewer
        THEN json_build_object('rank', p_rank, 'displayName', public_name(p_user_id, p_viewer),
                               'bestDifficulty', p_best, 'bestShareAt', iso_utc_precise(p_best_at), 'isMe', true,
                               'userId', p_user_id)
        ELSE json_build_object('rank', p_rank, 'displayName', public_name(p_user_id, p_viewer),
                               'bestDifficulty', p_best, 'bestShareAt', iso_utc_precise(p_best_at), 'isMe', false)
        END
$$;
COMMENT ON FUNCTION leaderboard_row_json(bigint, text, double precision, timestamptz, text) IS
    'One leaderboard row as p_viewer sees it: rank, displayName (public_name), bestDifficulty, bestShareAt, isMe; the viewer''s own row also carries userId.';
REVOKE EXECUTE ON FUNCTION leaderboard_row_json(bigint, text, double precision, timestamptz, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION leaderboard_rows(p_week date, p_drawn boolean, p_offset bigint, p_limit bigint,
                                            p_viewer text, p_start_bucket integer DEFAULT NULL,
                                            p_start_above bigint DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_rows json;
BEGIN
    -- Two static statements, each with its plan cached for the session.
    IF p_drawn THEN
        SELECT coalesce(json_agg(leaderboard_row_json(r.rank, r.user_id, r.best_difficulty, r.best_share_at, p_viewer)
                                 ORDER BY r.rank), '[]'::json)
        INTO v_rows
        FROM lottery_draws d JOIN lottery_results r ON r.draw_id = d.id
        WHERE d.week_start = lottery_week_start_ts(p_week) AND d.status = 'completed'
          AND r.rank > p_offset AND r.rank <= p_offset + p_limit;
    ELSE
        SELECT coalesce(json_agg(leaderboard_row_json(p.rank, p.user_id, p.best_difficulty, p.best_at, p_viewer)
                                 ORDER BY p.rank), '[]'::json)
        INTO v_rows
        FROM rank_page(p_week, p_offset, p_limit, p_start_bucket, p_start_above) AS p;
    END IF;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION leaderboard_rows(date, boolean, bigint, bigint, text, integer, bigint) IS
    'Ranks p_offset + 1 .. p_offset + p_limit of the week p_week (a Monday) as leaderboard rows (leaderboard_row_json) for p_viewer, in rank order: from the draw''s results when p_drawn, else live (rank_page, from the start given if any).';
REVOKE EXECUTE ON FUNCTION leaderboard_rows(date, boolean, bigint, bigint, text, integer, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION get_leaderboard(p_user_id text, p_week_start date DEFAULT NULL,
                                           p_limit integer DEFAULT 25, p_offset bigint DEFAULT 0,
                                           p_now timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now  timestamptz := lottery_clock(p_now);
    v_week date := week_or_open(p_week_start, v_now);
    v_week_rank record;
BEGIN
    PERFORM check_user_id(p_user_id), check_page(p_limit, p_offset, 100);
    -- Nobody's rank: only whether the week is drawn and how many took part.
    SELECT * INTO v_week_rank FROM week_rank(NULL, v_week);
    RETURN json_build_object(
        'weekStart', iso_utc(lottery_week_start_ts(v_week)),
        'weekEnd', iso_utc(week_end_shown(v_week)),
        'final', v_week_rank.drawn,
        'participants', v_week_rank.participants,
        'nextDrawAt', iso_utc(next_draw_at(v_now)),
        'offset', p_offset,
        'rows', leaderboard_rows(v_week, v_week_rank.drawn, p_offset, p_limit, p_user_id));
END
$$;
COMMENT ON FUNCTION get_leaderboard(text, date, integer, bigint, timestamptz) IS
    'One page of a week''s leaderboard (default: the open week; ranks offset + 1 .. offset + limit, limit 1..100, default 25) as p_user_id sees it: weekStart, weekEnd, final (the draw''s ranks; false: live, in the draw''s exact order), participants, nextDrawAt, offset, rows. Others appear by display name, shortened id or "Anonymous miner". Raises LTU01, LTW02, LTP01.';
GRANT EXECUTE ON FUNCTION get_leaderboard(text, date, integer, bigint, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION get_leaderboard_around(p_user_id text, p_week_start date DEFAULT NULL,
                                                  p_around integer DEFAULT 5, p_now timestamptz DEFAULT now())
RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now    timestamptz := lottery_clock(p_now);
    v_week   date := week_or_open(p_week_start, v_now);
    v_me     record;
    v_offset bigint;
BEGIN
    PERFORM check_user_id(p_user_id);
    IF p_around IS NULL OR p_around NOT BETWEEN 0 AND 50 THEN
        RAISE SQLSTATE 'LTP01' USING
            MESSAGE = format('invalid around=%s', p_around),
            HINT = 'around is 0..50: the rows shown above and below the caller''s.';
    END IF;
    SELECT * INTO v_me FROM week_rank(p_user_id, v_week);
    -- Without shares the caller has no row: the top of the board instead, as many rows.
    v_offset := CASE WHEN v_me.rank = 0 THEN 0 ELSE greatest(0, v_me.rank - 1 - p_around) END;
    RETURN json_build_object(
        'weekStart', iso_utc(lottery_week_start_ts(v_week)),
        'weekEnd', iso_utc(week_end_shown(v_week)),
        'final', v_me.drawn,
        'participants', v_me.participants,
        'nextDrawAt', iso_utc(next_draw_at(v_now)),
        'myRank', v_me.rank,
        'around', p_around,
        'offset', v_offset,
        -- Live, the page starts from the caller's own bucket when it can: no second search by rank.
        'rows', leaderboard_rows(v_week, v_me.drawn, v_offset,
                                 CASE WHEN v_me.rank = 0 THEN 2 * p_around + 1 ELSE v_me.rank - v_offset + p_around END,
                                 p_user_id, v_me.rank_bucket, v_me.above));
END
$$;
COMMENT ON FUNCTION get_leaderboard_around(text, date, integer, timestamptz) IS
    'The caller''s row of a week''s leaderboard (default: the open week) with p_around rows above and below it (0..50, default 5), clipped at both ends, live until drawn and final after, in the draw''s order; the page''s members as get_leaderboard has them, and myRank and around. A caller without shares that week has no row and gets the top 2 * p_around + 1 rows, with myRank 0. Raises LTU01, LTW02, LTP01.';
GRANT EXECUTE ON FUNCTION get_leaderboard_around(text, date, integer, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION get_lottery_history(p_user_id text, p_limit integer DEFAULT 20, p_offset integer DEFAULT 0,
                                               p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now   timestamptz := lottery_clock(p_now);
    v_open  date := lottery_week_at(v_now);
    v_weeks jsonb;
BEGIN
    PERFORM check_user_id(p_user_id), check_page(p_limit, p_offset, 100);
    WITH entries AS (
        -- Weeks not drawn yet in which the caller has shares: the open week, and
        -- the last closed one until its draw. Live ranks, no XP yet.
        (SELECT w.week, false AS final, l.rank, l.participants, b.best_difficulty, b.best_hash,
                b.share_count AS total_shares, 0 AS xp_awarded,
                (SELECT g.game_type FROM last_games(w.week) AS g WHERE g.user_id = p_user_id) AS game_played
         FROM (VALUES (v_open), (v_open - 7)) AS w (week)
         CROSS JOIN LATERAL own_week_figures(p_user_id, w.week) AS b
         CROSS JOIN LATERAL live_rank(p_user_id, w.week) AS l
         WHERE b.best_at IS NOT NULL
           AND NOT EXISTS (SELECT FROM lottery_draws d
                           WHERE d.week_start = lottery_week_start_ts(w.week) AND d.status = 'completed')
         UNION ALL
         SELECT lottery_week_at(d.week_start), true, r.rank, d.total_participants, r.best_difficulty, r.best_hash,
                r.ticket_count, r.xp_awarded, r.game_played
         FROM lottery_results r JOIN lottery_draws d ON d.id = r.draw_id AND d.status = 'completed'
         WHERE r.user_id = p_user_id)
        ORDER BY 1 DESC
        LIMIT p_limit OFFSET p_offset
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'weekStart', iso_utc(lottery_week_start_ts(e.week)),
               'weekEnd', iso_utc(week_end_shown(e.week)),
               'final', e.final,
               'rank', e.rank,
               'participants', e.participants,
               'percentile', lottery_percentile(e.rank, e.participants),
               'bestDifficulty', e.best_difficulty,
               'bestHash', coalesce(e.best_hash, ''),
               'totalShares', e.total_shares,
               'xpAwarded', e.xp_awarded,
               'tier', lottery_tier(e.rank),
               'gamePlayed', e.game_played) ORDER BY e.week DESC), '[]'::jsonb)
    INTO v_weeks
    FROM entries e;
    RETURN jsonb_build_object('weeks', v_weeks);
END
$$;
COMMENT ON FUNCTION get_lottery_history(text, integer, integer, timestamptz) IS
    'The caller''s lottery weeks, newest first (limit 1..100, default 20): every drawn week they took part in, with final rank, participants, percentile, best share, shares, XP awarded, tier and the game played; first, while not drawn yet, the open week and the week just closed when they have shares in it (final false: live rank, no XP yet). Raises LTU01, LTP01.';
GRANT EXECUTE ON FUNCTION get_lottery_history(text, integer, integer, timestamptz) TO lottery_web;

CREATE OR REPLACE FUNCTION personal_best_json(p_week date, p_best double precision, p_hash text,
                                              p_best_at timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE  -- as iso_utc_precise is
AS $$
    SELECT jsonb_build_object(
        'weekStart', iso_utc(lottery_week_start_ts(p_week)),
        'bestDifficulty', p_best,
        'bestHash', coalesce(p_hash, ''),
        'bestShareAt', iso_utc_precise(p_best_at))
$$;
COMMENT ON FUNCTION personal_best_json(date, double precision, text, timestamptz) IS
    'One personal best as get_personal_bests shows it: weekStart (the week it was mined in), bestDifficulty, bestHash (empty without a usable hash), bestShareAt (when first reached).';
REVOKE EXECUTE ON FUNCTION personal_best_json(date, double precision, text, timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION get_personal_bests(p_user_id text, p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now    timestamptz := lottery_clock(p_now);
    v_open   date := lottery_week_at(v_now);
    v_bests  jsonb;
BEGIN
    PERFORM check_user_id(p_user_id);
    -- Two participant-weeks as the user's own figures (own_week_figures: folded,
    -- plus what the fold has not reached), the best of all time (folded, or one
    -- of those two when better), and the first entry of the user's results by
    -- rank (the earliest week on a tie).
    WITH own AS (
        SELECT w.week, o.best_difficulty, o.best_hash, o.best_at
        FROM (VALUES (v_open), (v_open - 7)) AS w (week)
        CROSS JOIN LATERAL own_week_figures(p_user_id, w.week) AS o
        WHERE o.best_at IS NOT NULL
    ), all_time AS (
        SELECT a.week_start AS week, a.best_difficulty, a.best_hash, a.best_at
        FROM share_user_best a WHERE a.user_id = p_user_id
        UNION ALL
        SELECT * FROM own
    )
    SELECT jsonb_build_object(
        'thisWeek', (SELECT personal_best_json(o.week, o.best_difficulty, o.best_hash, o.best_at)
                     FROM own o WHERE o.week = v_open),
        'lastWeek', (SELECT personal_best_json(o.week, o.best_difficulty, o.best_hash, o.best_at)
                     FROM own o WHERE o.week = v_open - 7),
        'allTime', (SELECT personal_best_json(a.week, a.best_difficulty, a.best_hash, a.best_at)
                    FROM all_time a ORDER BY a.best_difficulty DESC, a.best_at LIMIT 1),
        'bestRank', (SELECT jsonb_build_object(
                                'rank', r.rank,
                                'weekStart', iso_utc(d.week_start),
                                'participants', d.total_participants,
                                'percentile', lottery_percentile(r.rank, d.total_participants))
                     FROM lottery_results r JOIN lottery_draws d ON d.id = r.draw_id AND d.status = 'completed'
                     WHERE r.user_id = p_user_id
                     ORDER BY r.rank, d.week_start
                     LIMIT 1))
    INTO v_bests;
    RETURN v_bests;
END
$$;
COMMENT ON FUNCTION get_personal_bests(text, timestamptz) IS
    'The caller''s personal bests, from the aggregates: the best share of this week (the open one), of last week and of all time (each {weekStart, bestDifficulty, bestHash, bestShareAt} or null), and the best final rank ever ({rank, weekStart, participants, percentile} or null; the earliest such week on a tie). Raises LTU01.';
GRANT EXECUTE ON FUNCTION get_personal_bests(text, timestamptz) TO lottery_web;
