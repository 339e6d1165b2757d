-- Pure functions over shares and hashes; no table access.

CREATE OR REPLACE FUNCTION json_difficulty(p_value jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- The numeric bounds keep the float cast from overflowing or underflowing.
    SELECT CASE WHEN jsonb_typeof(p_value) = 'number'
                 AND p_value::numeric BETWEEN 1e-300 AND 1e300
                THEN p_value::double precision END
$$;
COMMENT ON FUNCTION json_difficulty(jsonb) IS
    'A difficulty read from JSON: the number when it is a JSON number within 1e-300..1e300, else NULL (missing, string, zero, negative, absurd).';
GRANT EXECUTE ON FUNCTION json_difficulty(jsonb) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION clean_hash(p_hash text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- A negated class, not ^[0-9a-f]{64}$: that bounded repeat costs ~8 us a call.
    -- COLLATE "C": hex digits need no locale, and lower() under one cost 1.4 us.
    SELECT CASE WHEN length(p_hash) = 64 AND p_hash COLLATE "C" !~ '[^0-9a-fA-F]' AND ltrim(p_hash, '0') <> ''
                THEN lower(p_hash COLLATE "C") END
$$;
COMMENT ON FUNCTION clean_hash(text) IS
    'A usable share hash: exactly 64 hex digits and not all zeros, in lower case; else NULL (no hash).';
GRANT EXECUTE ON FUNCTION clean_hash(text) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION hash_difficulty(p_clean_hash text)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- ckpool: diff = truediffone / hash, truediffone = 0xFFFF * 2^208, the hash
    -- read as a 256-bit big-endian integer (display order). A double carries 52
    -- bits, so the 15 hex digits (60 bits) after the leading zeros are all that
    -- matter: hash = those digits * 16^(digits after them). One expression, no
    -- FROM and not STRICT, so that the planner inlines it: it runs for every share.
    SELECT 65535 * 2::double precision ^ 208
           / (nullif(('x' || left(ltrim(p_clean_hash, '0'), 15))::bit(60)::bigint, 0)::double precision
              * 16::double precision ^ (length(ltrim(p_clean_hash, '0')) - 15))
$$;
COMMENT ON FUNCTION hash_difficulty(text) IS
    'Share difficulty proven by a hash that clean_hash() accepted: 0xFFFF * 2^208 / hash, from its 60 leading significant bits.';
GRANT EXECUTE ON FUNCTION hash_difficulty(text) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_difficulty_from_hash(p_hash text)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hash_difficulty(clean_hash(p_hash)) $$;
COMMENT ON FUNCTION share_difficulty_from_hash(text) IS
    'Share difficulty proven by a 64-hex-digit hash (big-endian display order): 0xFFFF * 2^208 / hash. NULL for a malformed or all-zero hash.';
GRANT EXECUTE ON FUNCTION share_difficulty_from_hash(text) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION claim_exceeds_hash(p_sdiff double precision, p_clean_hash text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- ckpool logs sdiff from the hash it checked, so an honest sdiff never
    -- exceeds what the hash proves; 0.1% absorbs rounding in the log. Without
    -- a usable hash there is nothing to check against.
    SELECT coalesce(p_sdiff > hash_difficulty(p_clean_hash) * 1.001, false)
$$;
COMMENT ON FUNCTION claim_exceeds_hash(double precision, text) IS
    'Whether a claimed sdiff exceeds, by more than 0.1%, what a hash clean_hash() accepted proves: the one rule of a forged share. False without a hash.';
GRANT EXECUTE ON FUNCTION claim_exceeds_hash(double precision, text) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION get_progress_ratio(p_best double precision, p_network double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_best IS NULL OR p_network IS NULL
             OR p_best = 'NaN' OR p_network = 'NaN'
             OR p_best <= 1 OR p_network <= 1 THEN 0.0
        WHEN p_best >= p_network THEN 1.0
        ELSE greatest(0.0, least(1.0, log(p_best) / log(p_network)))
    END
$$;
COMMENT ON FUNCTION get_progress_ratio(double precision, double precision) IS
    'Log-scale progress log10(best)/log10(network), always within [0, 1]: 0 when best <= 1 or network <= 1 (or either is NULL/NaN), 1 when best >= network.';
GRANT EXECUTE ON FUNCTION get_progress_ratio(double precision, double precision) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION extract_slot_reels(p_hash text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- Spec 5.4.4: skip the leading zeros, then take the characters at offsets
    -- 0, 2 and 4; '0' past the end. An all-zero hash starts at 0.
    SELECT CASE
        WHEN p_hash IS NULL OR length(p_hash) < 8 THEN ARRAY['0', '0', '0']
        ELSE ARRAY(
            SELECT coalesce(nullif(substr(p_hash, start + offs, 1), ''), '0')
            FROM (SELECT CASE WHEN p_hash ~ '^0*$' THEN 1
                              ELSE length(substring(p_hash FROM '^0*')) + 1 END) AS s(start),
                 unnest(ARRAY[0, 2, 4]) WITH ORDINALITY AS o(offs, n)
            ORDER BY n)
    END
$$;
COMMENT ON FUNCTION extract_slot_reels(text) IS
    'The three slot reels of a hash: after the leading zeros, the characters at offsets 0, 2, 4. {0,0,0} for NULL or a hash shorter than 8.';
GRANT EXECUTE ON FUNCTION extract_slot_reels(text) TO lottery_web, lottery_bi;
