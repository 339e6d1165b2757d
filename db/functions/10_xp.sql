-- XP tiers of the weekly lottery (spec 5.3.2) and the rank-derived figures.

CREATE OR REPLACE FUNCTION lottery_tier_of(p_rank bigint)
RETURNS lottery_tiers
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- NULL or 0 (no shares, no rank) is the tier that starts at rank 0.
    SELECT t.* FROM lottery_tiers t
    WHERE greatest(coalesce(p_rank, 0), 0) BETWEEN t.first_rank AND coalesce(t.last_rank, greatest(p_rank, 0))
$$;
COMMENT ON FUNCTION lottery_tier_of(bigint) IS
    'The row of lottery_tiers a weekly rank falls in: its label and XP. NULL or 0 (did not mine) is the Did not mine tier.';
GRANT EXECUTE ON FUNCTION lottery_tier_of(bigint) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION calculate_xp_for_rank(p_rank bigint)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT (lottery_tier_of(p_rank)).xp $$;
COMMENT ON FUNCTION calculate_xp_for_rank(bigint) IS
    'XP for a weekly lottery rank, from lottery_tiers: 1-10 -> 100, 11-50 -> 50, 51-100 -> 25, 101+ -> 10; NULL or 0 (did not mine) -> 0.';
GRANT EXECUTE ON FUNCTION calculate_xp_for_rank(bigint) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_tier(p_rank bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT (lottery_tier_of(p_rank)).tier $$;
COMMENT ON FUNCTION lottery_tier(bigint) IS
    'Label of the XP tier of a rank, from lottery_tiers: Top 10, Top 50, Top 100, Participated, or Did not mine (NULL or 0).';
GRANT EXECUTE ON FUNCTION lottery_tier(bigint) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_top_ranks(p_tier text)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT t.last_rank FROM lottery_tiers t WHERE t.tier = p_tier $$;
COMMENT ON FUNCTION lottery_top_ranks(text) IS
    'The worst rank of a tier of lottery_tiers (lottery_top_ranks(''Top 10'') = 10): the bound of the top-10 list and notifications, and of the statistics'' weeks in the top 10, 50 and 100.';
GRANT EXECUTE ON FUNCTION lottery_top_ranks(text) TO lottery_web, lottery_bi;

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
