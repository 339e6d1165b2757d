-- The lottery order and the reads over the aggregates: a week ranked, a live
-- rank, network difficulty and found blocks. The plain SQL functions here are
-- inlined into the queries of the API functions that use them (no SECURITY
-- DEFINER, no SET): they read tables directly, so they are the owner's.

CREATE OR REPLACE FUNCTION check_user_id(p_user_id text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_user_id IS NULL OR length(p_user_id) NOT BETWEEN 1 AND 128 THEN
        RAISE SQLSTATE 'LTU01' USING
            MESSAGE = 'invalid user id',
            HINT = 'A user id is a non-empty string of at most 128 characters.';
    END IF;
    RETURN p_user_id;
END
$$;
COMMENT ON FUNCTION check_user_id(text) IS
    'Returns p_user_id when it is a valid user id (1-128 characters); raises LTU01 otherwise.';
GRANT EXECUTE ON FUNCTION check_user_id(text) TO lottery_web;

CREATE OR REPLACE FUNCTION ranked_week(p_week date, p_rank_bucket integer DEFAULT NULL,
                                       p_and_below boolean DEFAULT false)
RETURNS TABLE (rank bigint, user_id text, best_difficulty double precision, best_at timestamptz,
               best_hash text, share_count bigint)
LANGUAGE sql STABLE
AS $$
    -- THE lottery order (CONTRACT 3): best difficulty DESC, then the time the user
    -- first reached it ASC, then user id ASC. rank_bucket grows with
    -- best_difficulty, so leading with it changes nothing in the order and lets
    -- the rank index deliver the rows already sorted. A caller's condition
    -- rank <= n stops the scan after n rows (a run condition of the window).
    -- With p_rank_bucket, only the participants of that bucket, or with
    -- p_and_below of that bucket and every one below it, ranked from 1 at the
    -- top of that bucket. The bucket bounds are plain ranges on the index,
    -- never an OR: an OR would be a filter over the whole week.
    SELECT row_number() OVER (ORDER BY b.rank_bucket DESC, b.best_difficulty DESC, b.best_at, b.user_id),
           b.user_id, b.best_difficulty, b.best_at, b.best_hash, b.share_count
    FROM share_weekly_best b
    WHERE b.week_start = lottery_week(p_week)
      AND b.rank_bucket <= coalesce(p_rank_bucket, 2147483647)
      AND b.rank_bucket >= CASE WHEN p_and_below OR p_rank_bucket IS NULL THEN -2147483648 ELSE p_rank_bucket END
    ORDER BY 1
$$;
COMMENT ON FUNCTION ranked_week(date, integer, boolean) IS
    'Every participant of the week of p_week in the lottery order (best difficulty DESC, first reached ASC, user id ASC) with their rank 1..N, best share and share count: the one definition of the ranking, read by the draw, the live rank (within one rank bucket, p_rank_bucket), leaderboard pages (from a rank bucket down, p_and_below; see rank_page), the CLI and the benchmarks.';
REVOKE EXECUTE ON FUNCTION ranked_week(date, integer, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION rank_page(p_week date, p_offset bigint, p_limit bigint,
                                     p_start_bucket integer DEFAULT NULL, p_start_above bigint DEFAULT NULL)
RETURNS TABLE (rank bigint, user_id text, best_difficulty double precision, best_at timestamptz)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_bucket integer := p_start_bucket;
    v_above  bigint := p_start_above;
BEGIN
    -- A start the caller knows (a bucket and the participants above it, from
    -- live_position) saves finding one, when it lies at or above rank p_offset + 1.
    IF v_bucket IS NOT NULL AND v_above IS NOT NULL AND v_above <= p_offset THEN
        RETURN QUERY
        SELECT v_above + w.rank, w.user_id, w.best_difficulty, w.best_at
        FROM ranked_week(p_week, v_bucket, true) AS w
        WHERE w.rank > p_offset - v_above AND w.rank <= p_offset - v_above + p_limit;
        RETURN;
    END IF;
    -- Select by rank: the group of buckets holding rank p_offset + 1, from the
    -- participants of the groups above it (a few hundred rows at a million
    -- participants); inside it the bucket, from the buckets above it (at most
    -- 127). Each LIMIT 1 says there is one: it keeps the plan's estimates small.
    SELECT b.rank_bucket, b.above INTO v_bucket, v_above
    FROM (SELECT g.bucket_group, g.above
          FROM (SELECT x.bucket_group, x.participants,
                       coalesce(sum(x.participants) OVER (ORDER BY x.bucket_group DESC
                                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::bigint
                           AS above
                FROM share_rank_bucket_groups x WHERE x.week_start = p_week) AS g
          WHERE g.above <= p_offset AND p_offset < g.above + g.participants
          LIMIT 1) AS grp
    CROSS JOIN LATERAL (
        SELECT x.rank_bucket, x.participants,
               grp.above + coalesce(sum(x.participants) OVER (ORDER BY x.rank_bucket DESC
                                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::bigint
                   AS above
        FROM share_rank_buckets x
        WHERE x.week_start = p_week
          AND x.rank_bucket BETWEEN grp.bucket_group * 128 AND grp.bucket_group * 128 + 127) AS b
    WHERE b.above <= p_offset AND p_offset < b.above + b.participants
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN;  -- past the last participant
    END IF;
    -- Then the rank index from the top of that bucket down: the upper bound on
    -- the rank, a parameter here, stops ranked_week's scan after the page (what
    -- lies above rank p_offset + 1 in that bucket is a few hundred entries at most).
    RETURN QUERY
    SELECT v_above + w.rank, w.user_id, w.best_difficulty, w.best_at
    FROM ranked_week(p_week, v_bucket, true) AS w
    WHERE w.rank > p_offset - v_above AND w.rank <= p_offset - v_above + p_limit;
END
$$;
COMMENT ON FUNCTION rank_page(date, bigint, bigint, integer, bigint) IS
    'Ranks p_offset + 1 .. p_offset + p_limit of the week p_week (a Monday) in the draw''s exact order, live from the aggregates: the rank counters find where rank p_offset + 1 lies (or the caller gives a start: a rank bucket and how many rank above it), the rank index (ranked_week) is read from there. Empty past the last participant. Exact as of the last commit.';
REVOKE EXECUTE ON FUNCTION rank_page(date, bigint, bigint, integer, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION network_difficulty_at(p_at timestamptz)
RETURNS double precision
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        (SELECT n.difficulty FROM network_difficulty_changes n WHERE n.ts <= p_at ORDER BY n.ts DESC LIMIT 1),
        86388558925171)
$$;
COMMENT ON FUNCTION network_difficulty_at(timestamptz) IS
    'The network difficulty of the latest valid new_block_network event at or before p_at; 86388558925171 when none is known.';
REVOKE EXECUTE ON FUNCTION network_difficulty_at(timestamptz) FROM PUBLIC, lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION user_found_block(p_user_id text, p_week_start date)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT FROM blocks_found b
                   WHERE b.user_id = p_user_id AND b.week_start = lottery_week(p_week_start))
$$;
COMMENT ON FUNCTION user_found_block(text, date) IS
    'Whether a block_found event names this user in the week of p_week_start.';
REVOKE EXECUTE ON FUNCTION user_found_block(text, date) FROM PUBLIC, lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION own_week_figures(p_user_id text, p_week date)
RETURNS TABLE (best_difficulty double precision, best_at timestamptz, best_hash text, share_count bigint,
               day_best double precision[], day_shares integer[], rank_bucket integer, folded boolean,
               found_block boolean)
LANGUAGE plpgsql STABLE ROWS 1
-- PL/pgSQL for its cached plan: planning this over every partition of
-- mining_events costs several times what running it does.
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- A user's own figures of a week as of this statement's snapshot: the folded
    -- participant-week row plus the user's events above the fold's watermark,
    -- judged as the fold judges them (judge_event) and combined as the fold
    -- combines them (share_beats, greatest_each, add_each). The watermark and
    -- the aggregates are read in one snapshot, and the fold moves both in one
    -- transaction: no event is missed or counted twice. Exactly one row; NULL
    -- figures without shares.
    RETURN QUERY
    WITH tail AS (
        SELECT j.kind, j.dow, e.ts, j.hash,
               CASE WHEN j.hash IS NULL AND (SELECT s.require_share_hash FROM lottery_settings s) THEN 0
                    ELSE j.diff END AS diff
        FROM mining_events e
        CROSS JOIN LATERAL judge_event(e.ts, e.event_type, e.payload) AS j
        WHERE e.payload->>'user' = p_user_id
          AND e.seq > (SELECT f.folded_upto FROM event_fold f)
          AND e.ts >= lottery_week_start_ts(p_week) AND e.ts < lottery_week_start_ts(p_week + 7)
          AND j.user_id = p_user_id AND j.kind IN ('s', 'b')
    ), best AS (
        SELECT t.diff, t.ts, t.hash FROM tail t WHERE t.kind = 's' ORDER BY t.diff DESC, t.ts, t.hash LIMIT 1
    ), days AS (
        SELECT count(*) FILTER (WHERE t.kind = 's') AS shares,
               ARRAY(SELECT coalesce(max(t2.diff) FILTER (WHERE t2.kind = 's'), 0) FROM generate_series(1, 7) d
                     LEFT JOIN tail t2 ON t2.dow = d GROUP BY d ORDER BY d) AS day_best,
               ARRAY(SELECT (count(*) FILTER (WHERE t2.kind = 's'))::integer FROM generate_series(1, 7) d
                     LEFT JOIN tail t2 ON t2.dow = d GROUP BY d ORDER BY d) AS day_shares,
               bool_or(t.kind = 'b') AS found_block
        FROM tail t
    ), combined AS (
        SELECT CASE WHEN w.user_id IS NULL OR share_beats(b.diff, b.ts, w.best_difficulty, w.best_at)
                    THEN b.diff ELSE w.best_difficulty END AS best_difficulty,
               CASE WHEN w.user_id IS NULL OR share_beats(b.diff, b.ts, w.best_difficulty, w.best_at)
                    THEN b.ts ELSE w.best_at END AS best_at,
               CASE WHEN w.user_id IS NULL OR share_beats(b.diff, b.ts, w.best_difficulty, w.best_at)
                    THEN b.hash ELSE w.best_hash END AS best_hash,
               coalesce(w.share_count, 0) + d.shares AS share_count,
               greatest_each(coalesce(w.day_best, '{0,0,0,0,0,0,0}'), d.day_best) AS day_best,
               add_each(coalesce(w.day_shares, '{0,0,0,0,0,0,0}'), d.day_shares) AS day_shares,
               w.user_id IS NOT NULL AS folded,
               coalesce(d.found_block, false) OR user_found_block(p_user_id, p_week) AS found_block
        FROM days d
        LEFT JOIN best b ON true
        LEFT JOIN share_weekly_best w ON w.week_start = p_week AND w.user_id = p_user_id
    )
    SELECT c.best_difficulty, c.best_at, c.best_hash, CASE WHEN c.best_at IS NULL THEN NULL ELSE c.share_count END,
           c.day_best, c.day_shares, rank_bucket_of(c.best_difficulty), c.folded, c.found_block
    FROM combined c;
END
$$;
COMMENT ON FUNCTION own_week_figures(text, date) IS
    'A user''s own figures of the week p_week (a Monday), exact as of this statement: best share (difficulty, when first reached, hash), share count, seven daily bests and counts, its rank bucket, whether the fold has the user''s row yet, and whether the user found a block; the folded participant-week row plus the user''s events the fold has not reached. One row; NULL figures without shares.';
REVOKE EXECUTE ON FUNCTION own_week_figures(text, date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION position_of(p_user_id text, p_week date, p_best double precision,
                                       p_best_at timestamptz, p_rank_bucket integer, p_folded boolean)
RETURNS TABLE (rank bigint, participants bigint, rank_bucket integer, above bigint)
LANGUAGE sql STABLE
AS $$
    -- Participants ahead are summed, not counted row by row: whole groups of
    -- buckets above the user's group (a few hundred rows at a million
    -- participants), whole buckets above the user's inside its group (at most
    -- 127), then the participants of the user's own bucket ranked before the
    -- user. The user stands where the given figures put them, the others as folded.
    SELECT CASE WHEN p_best_at IS NULL THEN 0::bigint ELSE
               a.above + 1 + (SELECT count(*) FROM share_weekly_best b
                              WHERE b.week_start = p_week AND b.rank_bucket = p_rank_bucket
                                AND b.user_id <> p_user_id
                                AND ranked_before(b.best_difficulty, b.best_at, b.user_id,
                                                  p_best, p_best_at, p_user_id))
           END,
           g.total + (p_best_at IS NOT NULL AND NOT p_folded)::integer, p_rank_bucket, a.above
    FROM (
        SELECT coalesce(sum(x.participants), 0)::bigint AS total,
               coalesce(sum(x.participants) FILTER (WHERE x.bucket_group > rank_bucket_group(p_rank_bucket)), 0)::bigint
                   AS above
        FROM share_rank_bucket_groups x WHERE x.week_start = p_week) AS g
    CROSS JOIN LATERAL (
        SELECT g.above + coalesce(sum(b.participants), 0)::bigint AS above FROM share_rank_buckets b
        WHERE b.week_start = p_week AND b.rank_bucket > p_rank_bucket
          AND b.rank_bucket < (rank_bucket_group(p_rank_bucket) + 1) * 128) AS a
$$;
COMMENT ON FUNCTION position_of(text, date, double precision, timestamptz, integer, boolean) IS
    'Where a user with the given own figures of the week p_week (best difficulty, when first reached, rank bucket, whether the fold has the user''s row: own_week_figures) stands, live, in the draw''s exact order: rank (0 without a best), participants so far, the rank bucket and how many participants rank above that bucket. Others count as of the last fold.';
REVOKE EXECUTE ON FUNCTION position_of(text, date, double precision, timestamptz, integer, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION live_position(p_user_id text, p_week date)
RETURNS TABLE (rank bigint, participants bigint, rank_bucket integer, above bigint)
LANGUAGE sql STABLE
AS $$
    -- The user stands where their own figures put them (own_week_figures:
    -- folded or not).
    SELECT p.* FROM own_week_figures(p_user_id, p_week) AS me
    CROSS JOIN LATERAL position_of(p_user_id, p_week, me.best_difficulty, me.best_at, me.rank_bucket, me.folded) AS p
$$;
COMMENT ON FUNCTION live_position(text, date) IS
    'Where a user stands in the week p_week (a Monday), live, in the draw''s exact order: rank (0 without shares), participants so far, the user''s rank bucket and how many participants rank above that bucket (a start for rank_page). The user''s own shares count as of this statement (own_week_figures); others'' as of the last fold.';
REVOKE EXECUTE ON FUNCTION live_position(text, date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION live_rank(p_user_id text, p_week date)
RETURNS TABLE (rank bigint, participants bigint)
LANGUAGE sql STABLE
AS $$ SELECT p.rank, p.participants FROM live_position(p_user_id, p_week) AS p $$;
COMMENT ON FUNCTION live_rank(text, date) IS
    'Provisional rank of a user in the week p_week (a Monday) in the draw''s exact order, and the number of participants so far (live_position); rank 0 without shares. The user''s own shares as of this statement, others'' as of the last fold.';
REVOKE EXECUTE ON FUNCTION live_rank(text, date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION week_rank_of(p_user_id text, p_week date, p_best double precision,
                                        p_best_at timestamptz, p_rank_bucket integer, p_folded boolean)
RETURNS TABLE (rank bigint, participants bigint, drawn boolean, rank_bucket integer, above bigint)
LANGUAGE sql STABLE
AS $$
    -- The final rank once the week is drawn, else the live one the given own
    -- figures put the user at (with the live position's bucket and the
    -- participants above it).
    SELECT coalesce(r.rank::bigint, 0), d.total_participants::bigint, true, NULL::integer, NULL::bigint
    FROM lottery_draws d
    LEFT JOIN lottery_results r ON r.draw_id = d.id AND r.user_id = p_user_id
    WHERE d.week_start = lottery_week_start_ts(p_week) AND d.status = 'completed'
    UNION ALL
    SELECT l.rank, l.participants, false, l.rank_bucket, l.above
    FROM position_of(p_user_id, p_week, p_best, p_best_at, p_rank_bucket, p_folded) l
    WHERE NOT EXISTS (SELECT FROM lottery_draws d
                      WHERE d.week_start = lottery_week_start_ts(p_week) AND d.status = 'completed')
$$;
COMMENT ON FUNCTION week_rank_of(text, date, double precision, timestamptz, integer, boolean) IS
    'A user''s rank and the participant count in the week p_week (a Monday): final (drawn = true) once the week is drawn, else live where the given own figures (own_week_figures) put the user (position_of, whose rank bucket and participants above it come along).';
REVOKE EXECUTE ON FUNCTION week_rank_of(text, date, double precision, timestamptz, integer, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION week_rank(p_user_id text, p_week date)
RETURNS TABLE (rank bigint, participants bigint, drawn boolean, rank_bucket integer, above bigint)
LANGUAGE sql STABLE
AS $$
    SELECT k.* FROM own_week_figures(p_user_id, p_week) AS me
    CROSS JOIN LATERAL week_rank_of(p_user_id, p_week, me.best_difficulty, me.best_at, me.rank_bucket, me.folded) AS k
$$;
COMMENT ON FUNCTION week_rank(text, date) IS
    'A user''s rank and the participant count in the week p_week (a Monday): final (drawn = true) once the week is drawn, else live (week_rank_of over the user''s own_week_figures).';
REVOKE EXECUTE ON FUNCTION week_rank(text, date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION get_live_rank(p_user_id text, p_week_start date DEFAULT NULL,
                                         p_now timestamptz DEFAULT now())
RETURNS TABLE (rank bigint, participants bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    -- Checked once into variables: passed as expressions, they would be evaluated
    -- at every place the inlined query uses them, row by row.
    v_user text := check_user_id(p_user_id);
    v_week date := week_or_open(p_week_start, lottery_clock(p_now));
BEGIN
    RETURN QUERY SELECT l.rank, l.participants FROM live_rank(v_user, v_week) AS l;
END
$$;
COMMENT ON FUNCTION get_live_rank(text, date, timestamptz) IS
    'Provisional rank of a user in a week (default: the open week) in the draw''s exact order, and the number of participants so far. Rank 0 without shares.';
GRANT EXECUTE ON FUNCTION get_live_rank(text, date, timestamptz) TO lottery_web, lottery_bi;
