-- Reads over the aggregates: live rank of the open (or not yet drawn) week,
-- network difficulty and found blocks.

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

CREATE OR REPLACE FUNCTION rank_bucket_group(p_rank_bucket integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_rank_bucket >> 7 $$;  -- an arithmetic shift: floor(bucket / 128), negative buckets too
COMMENT ON FUNCTION rank_bucket_group(integer) IS
    'The group of a rank bucket in share_rank_bucket_groups: 128 consecutive buckets, floor(rank_bucket / 128). Migration 0006 filled the groups with the same shift.';
GRANT EXECUTE ON FUNCTION rank_bucket_group(integer) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION ranked_week(p_week date)
RETURNS TABLE (rank bigint, user_id text, best_difficulty double precision, best_at timestamptz,
               best_hash text, share_count bigint)
LANGUAGE sql STABLE  -- no SECURITY DEFINER and no SET: so the draw's query inlines it
AS $$
    -- THE lottery order (CONTRACT 3): best difficulty DESC, then the time the user
    -- first reached it ASC, then user id ASC. rank_bucket grows with
    -- best_difficulty, so leading with it changes nothing in the order and lets
    -- the rank index deliver the rows already sorted.
    SELECT row_number() OVER (ORDER BY b.rank_bucket DESC, b.best_difficulty DESC, b.best_at, b.user_id),
           b.user_id, b.best_difficulty, b.best_at, b.best_hash, b.share_count
    FROM share_weekly_best b
    WHERE b.week_start = lottery_week(p_week)
    ORDER BY 1
$$;
COMMENT ON FUNCTION ranked_week(date) IS
    'Every participant of the week of p_week in the lottery order (best difficulty DESC, first reached ASC, user id ASC) with their rank 1..N, best share and share count: the one definition of the ranking, read by the draw, the CLI and the benchmarks. Reads tables directly: for the owner and for SECURITY DEFINER functions.';
REVOKE EXECUTE ON FUNCTION ranked_week(date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION get_live_rank(p_user_id text, p_week_start date DEFAULT NULL,
                                         p_now timestamptz DEFAULT now())
RETURNS TABLE (rank bigint, participants bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_week date := week_or_open(p_week_start, p_now);
    v_me   share_weekly_best;
    v_above bigint;
BEGIN
    PERFORM check_user_id(p_user_id);
    SELECT * INTO v_me FROM share_weekly_best WHERE week_start = v_week AND user_id = p_user_id;
    -- Participants ahead are summed, not counted row by row: whole groups of
    -- buckets above the user's group (a few hundred rows at a million
    -- participants), then whole buckets above the user's inside its group
    -- (at most 127).
    SELECT coalesce(sum(g.participants), 0)::bigint,
           coalesce(sum(g.participants) FILTER (WHERE g.bucket_group > rank_bucket_group(v_me.rank_bucket)), 0)::bigint
    INTO participants, v_above
    FROM share_rank_bucket_groups g WHERE g.week_start = v_week;
    IF v_me.user_id IS NULL THEN
        rank := 0;
    ELSE
        rank := 1 + v_above
            + (SELECT coalesce(sum(b.participants), 0)::bigint FROM share_rank_buckets b
               WHERE b.week_start = v_week AND b.rank_bucket > v_me.rank_bucket
                 AND b.rank_bucket < v_me.rank_bucket + 128  -- a key range as wide as a group, then the group
                 AND rank_bucket_group(b.rank_bucket) = rank_bucket_group(v_me.rank_bucket))
            -- Inside the user's own bucket, the draw's order: best DESC, then
            -- first reached ASC, then user id ASC, counted on the rank index.
            + (SELECT count(*) FROM share_weekly_best o
               WHERE o.week_start = v_week AND o.rank_bucket = v_me.rank_bucket
                 AND o.best_difficulty > v_me.best_difficulty)
            + (SELECT count(*) FROM share_weekly_best o
               WHERE o.week_start = v_week AND o.rank_bucket = v_me.rank_bucket
                 AND o.best_difficulty = v_me.best_difficulty
                 AND (o.best_at, o.user_id) < (v_me.best_at, v_me.user_id));
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION get_live_rank(text, date, timestamptz) IS
    'Provisional rank of a user in a week (default: the week of p_now) in the draw''s exact order, and the number of participants so far. Rank 0 without shares.';
GRANT EXECUTE ON FUNCTION get_live_rank(text, date, timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION drop_rank_bucket_members()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE share_rank_buckets b SET participants = b.participants - gone.n
    FROM (SELECT week_start, rank_bucket, count(*) AS n FROM removed_rows GROUP BY 1, 2) AS gone
    WHERE b.week_start = gone.week_start AND b.rank_bucket = gone.rank_bucket;
    UPDATE share_rank_bucket_groups g SET participants = g.participants - gone.n
    FROM (SELECT week_start, rank_bucket_group(rank_bucket) AS bucket_group, count(*) AS n
          FROM removed_rows GROUP BY 1, 2) AS gone
    WHERE g.week_start = gone.week_start AND g.bucket_group = gone.bucket_group;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION drop_rank_bucket_members() IS
    'Statement trigger on share_weekly_best: deleted rows (rebuild_share_aggregates) leave their rank buckets and bucket groups. Inserts and updates move them in the ingest trigger itself.';

CREATE OR REPLACE FUNCTION clear_rank_buckets()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    DELETE FROM share_rank_buckets;  -- not TRUNCATE: it may be in the same TRUNCATE statement
    DELETE FROM share_rank_bucket_groups;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION clear_rank_buckets() IS
    'Statement trigger on share_weekly_best: a TRUNCATE empties every rank bucket and bucket group too.';

CREATE OR REPLACE TRIGGER rank_buckets_on_delete
    AFTER DELETE ON share_weekly_best
    REFERENCING OLD TABLE AS removed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION drop_rank_bucket_members();
CREATE OR REPLACE TRIGGER rank_buckets_on_truncate
    AFTER TRUNCATE ON share_weekly_best
    FOR EACH STATEMENT EXECUTE FUNCTION clear_rank_buckets();

CREATE OR REPLACE FUNCTION network_difficulty_at(p_at timestamptz)
RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT coalesce(
        (SELECT difficulty FROM network_difficulty_changes WHERE ts <= p_at ORDER BY ts DESC LIMIT 1),
        86388558925171)
$$;
COMMENT ON FUNCTION network_difficulty_at(timestamptz) IS
    'The network difficulty of the latest valid new_block_network event at or before p_at; 86388558925171 when none is known.';
GRANT EXECUTE ON FUNCTION network_difficulty_at(timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION user_found_block(p_user_id text, p_week_start date)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM blocks_found WHERE user_id = p_user_id AND week_start = lottery_week(p_week_start))
$$;
COMMENT ON FUNCTION user_found_block(text, date) IS
    'Whether a block_found event names this user in the week of p_week_start.';
GRANT EXECUTE ON FUNCTION user_found_block(text, date) TO lottery_web, lottery_bi;
