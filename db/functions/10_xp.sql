-- XP tiers of the weekly lottery (spec 5.3.2) and the rank-derived figures.

CREATE OR REPLACE FUNCTION calculate_xp_for_rank(p_rank bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_rank IS NULL OR p_rank < 1 THEN 0   -- no shares, no rank
        WHEN p_rank <= 10  THEN 100
        WHEN p_rank <= 50  THEN 50
        WHEN p_rank <= 100 THEN 25
        ELSE 10
    END
$$;
COMMENT ON FUNCTION calculate_xp_for_rank(bigint) IS
    'XP for a weekly lottery rank: 1-10 -> 100, 11-50 -> 50, 51-100 -> 25, 101+ -> 10; NULL or 0 (did not mine) -> 0.';
GRANT EXECUTE ON FUNCTION calculate_xp_for_rank(bigint) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_tier(p_rank bigint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_rank IS NULL OR p_rank < 1 THEN 'Did not mine'
        WHEN p_rank <= 10  THEN 'Top 10'
        WHEN p_rank <= 50  THEN 'Top 50'
        WHEN p_rank <= 100 THEN 'Top 100'
        ELSE 'Participated'
    END
$$;
COMMENT ON FUNCTION lottery_tier(bigint) IS
    'Label of the XP tier of a rank: Top 10, Top 50, Top 100, Participated, or Did not mine (NULL or 0).';
GRANT EXECUTE ON FUNCTION lottery_tier(bigint) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_percentile(p_rank bigint, p_participants bigint)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_rank IS NULL OR p_rank < 1 OR p_participants IS NULL OR p_rank > p_participants THEN 0.0
        ELSE round(100.0 * (p_participants - p_rank + 1) / p_participants, 1)
    END
$$;
COMMENT ON FUNCTION lottery_percentile(bigint, bigint) IS
    'Percentile of a rank among N participants, 0-100 with one decimal, higher is better: 100*(N-rank+1)/N. 0 without a rank; a sole participant is at 100.';
GRANT EXECUTE ON FUNCTION lottery_percentile(bigint, bigint) TO lottery_web, lottery_bi;
