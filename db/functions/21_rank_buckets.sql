-- Rank buckets: how many participants each log-scale bucket of weekly bests
-- holds (share_rank_buckets), and each run of 128 buckets (share_rank_bucket_groups),
-- so that a live rank sums a few hundred counters instead of counting everyone
-- ahead. share_weekly_best.rank_bucket is floor(ln(best) * 2000). Every change
-- of the counts goes through this file: moves from the fold, deletes and
-- truncates of share_weekly_best by their triggers.

CREATE OR REPLACE FUNCTION rank_bucket_group(p_rank_bucket integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_rank_bucket >> 7 $$;  -- an arithmetic shift: floor(bucket / 128), negative buckets too
COMMENT ON FUNCTION rank_bucket_group(integer) IS
    'The group of a rank bucket in share_rank_bucket_groups: 128 consecutive buckets, floor(rank_bucket / 128). Migration 0006 filled the groups with the same shift.';
GRANT EXECUTE ON FUNCTION rank_bucket_group(integer) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION rank_bucket_of(p_best double precision)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_best > 0 THEN floor(ln(p_best) * 2000)::integer
                WHEN p_best IS NOT NULL THEN (-2147483648)::integer END
$$;
COMMENT ON FUNCTION rank_bucket_of(double precision) IS
    'The rank bucket of a best difficulty: share_weekly_best.rank_bucket''s generated expression (migration 0007), for a best not folded yet.';
GRANT EXECUTE ON FUNCTION rank_bucket_of(double precision) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION move_rank_buckets(p_weeks date[], p_buckets integer[], p_deltas bigint[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- Buckets, then groups, each in key order: concurrent writers wait for
    -- each other but never deadlock. No CHECK (participants >= 0) on either
    -- table: ON CONFLICT tests CHECKs on the proposed row, a -1.
    INSERT INTO share_rank_buckets AS b (week_start, rank_bucket, participants)
    SELECT week, bucket, sum(delta) FROM unnest(p_weeks, p_buckets, p_deltas) AS m(week, bucket, delta)
    WHERE week IS NOT NULL AND bucket IS NOT NULL AND delta IS NOT NULL
    GROUP BY 1, 2 HAVING sum(delta) <> 0 ORDER BY 1, 2
    ON CONFLICT (week_start, rank_bucket) DO UPDATE SET participants = b.participants + excluded.participants;
    INSERT INTO share_rank_bucket_groups AS g (week_start, bucket_group, participants)
    SELECT week, rank_bucket_group(bucket), sum(delta) FROM unnest(p_weeks, p_buckets, p_deltas) AS m(week, bucket, delta)
    WHERE week IS NOT NULL AND bucket IS NOT NULL AND delta IS NOT NULL
    GROUP BY 1, 2 HAVING sum(delta) <> 0 ORDER BY 1, 2
    ON CONFLICT (week_start, bucket_group) DO UPDATE SET participants = g.participants + excluded.participants;
END
$$;
COMMENT ON FUNCTION move_rank_buckets(date[], integer[], bigint[]) IS
    'Adds each (week, rank bucket, delta) to share_rank_buckets and to its group in share_rank_bucket_groups, in key order. The fold calls it with +1 where a participant arrived in a bucket and -1 where one left.';

CREATE OR REPLACE FUNCTION drop_rank_bucket_members()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_weeks date[];
    v_buckets integer[];
    v_deltas bigint[];
BEGIN
    SELECT array_agg(week_start), array_agg(rank_bucket), array_agg(-n)
    INTO v_weeks, v_buckets, v_deltas
    FROM (SELECT week_start, rank_bucket, count(*) AS n FROM removed_rows GROUP BY 1, 2) AS gone;
    PERFORM move_rank_buckets(v_weeks, v_buckets, v_deltas);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION drop_rank_bucket_members() IS
    'Statement trigger on share_weekly_best: deleted rows (rebuild_share_aggregates) leave their rank buckets and bucket groups. Inserts and updates move them in the fold.';

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
