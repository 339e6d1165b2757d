-- What an event is worth: the rules the aggregate trigger (22_share_fold.sql)
-- and the ingest tools judge events by. Pure functions over one event.
--
-- A share counts when it is accepted (JSON true), has a user (string, 1-128
-- characters), a finite positive numeric sdiff, a time from 2009-01-03 to a
-- day ahead of the server clock, and a claim its hash does not contradict.
-- Anything else is skipped silently: one bad event never blocks the rest.

CREATE OR REPLACE FUNCTION json_user(p_value jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(p_value) = 'string' AND length(p_value #>> '{}') BETWEEN 1 AND 128
                THEN p_value #>> '{}' END
$$;
COMMENT ON FUNCTION json_user(jsonb) IS
    'A user read from JSON: the string when it is a JSON string of 1-128 characters, else NULL.';
GRANT EXECUTE ON FUNCTION json_user(jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_user(p_payload jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT json_user(p_payload->'user') $$;
COMMENT ON FUNCTION share_user(jsonb) IS
    'The user of a share event payload, or NULL when missing, not a string, empty or longer than 128 characters.';
GRANT EXECUTE ON FUNCTION share_user(jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_claimed_difficulty(p_payload jsonb)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT json_difficulty(p_payload->'sdiff') $$;
COMMENT ON FUNCTION share_claimed_difficulty(jsonb) IS
    'The sdiff of a share event payload as json_difficulty reads it: NULL when missing, not a JSON number or not a sane positive value.';
GRANT EXECUTE ON FUNCTION share_claimed_difficulty(jsonb) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION event_time_problem(p_ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_ts IS NULL THEN 'ts is missing'
        WHEN p_ts < lottery_epoch()::timestamp AT TIME ZONE 'UTC'
            THEN 'ts is before 2009-01-03, the first Bitcoin block'
        WHEN p_ts > now() + interval '1 day' THEN 'ts is more than a day ahead of the server clock'
    END
$$;
COMMENT ON FUNCTION event_time_problem(timestamptz) IS
    'Why an event time is not believable (missing, before 2009-01-03 UTC, more than a day ahead of now()), or NULL. Such an event counts nowhere and names no week.';
GRANT EXECUTE ON FUNCTION event_time_problem(timestamptz) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_event_problem(p_event_type text, p_payload jsonb, p_ts timestamptz DEFAULT now())
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- Built on the very functions the aggregate trigger judges with, so that
    -- an ingest report and the aggregates cannot disagree. A rejected share is
    -- not judged on its sdiff (ckpool logs -1 for an invalid job): it counts
    -- nowhere anyway.
    SELECT CASE
        WHEN event_time_problem(p_ts) IS NOT NULL THEN event_time_problem(p_ts)
        WHEN p_event_type IS NULL OR p_event_type = '' THEN 'event_type is missing'
        WHEN jsonb_typeof(p_payload) IS DISTINCT FROM 'object' THEN 'payload is not a JSON object'
        WHEN p_event_type = 'share_submitted' THEN CASE
            WHEN share_user(p_payload) IS NULL THEN 'user is missing, not a string, empty or longer than 128'
            WHEN jsonb_typeof(p_payload->'accepted') IS DISTINCT FROM 'boolean' THEN 'accepted is not true or false'
            WHEN p_payload->'accepted' = 'true'::jsonb AND share_claimed_difficulty(p_payload) IS NULL
                THEN 'sdiff is not a positive finite number'
            END
        WHEN p_event_type = 'new_block_network' AND json_difficulty(p_payload->'diff') IS NULL
            THEN 'diff is not a positive finite number'
        WHEN p_event_type = 'block_found' AND share_user(p_payload) IS NULL
            THEN 'user is missing, not a string, empty or longer than 128'
    END
$$;
COMMENT ON FUNCTION share_event_problem(text, jsonb, timestamptz) IS
    'Why an event would be ignored by the aggregates (an unbelievable time; a share with a bad user or accepted flag, or an accepted one with a bad sdiff; a network event without a sane diff; a block without a user), or NULL when it is well-formed. Ingest tools report lines with it. A forged share is well-formed: see share_is_forged.';
GRANT EXECUTE ON FUNCTION share_event_problem(text, jsonb, timestamptz) TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_is_forged(p_sdiff double precision, p_hash text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT claim_exceeds_hash(p_sdiff, clean_hash(p_hash)) $$;
COMMENT ON FUNCTION share_is_forged(double precision, text) IS
    'Whether a share claims more difficulty (sdiff) than its hash proves, beyond 0.1%. A forged share counts nowhere (no best, no share or ticket count) and is tallied in event_weeks.forged_shares and the draw''s forged_shares. A share without a usable hash cannot be checked and is not forged (see lottery_settings.require_share_hash).';
GRANT EXECUTE ON FUNCTION share_is_forged(double precision, text) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION share_beats(p_diff double precision, p_at timestamptz,
                                       p_best_diff double precision, p_best_at timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT p_diff > p_best_diff OR (p_diff = p_best_diff AND p_at < p_best_at) $$;
COMMENT ON FUNCTION share_beats(double precision, timestamptz, double precision, timestamptz) IS
    'Whether a share (difficulty, time) replaces a user''s best (difficulty, time): higher difficulty, or the same reached earlier. Which share is a user''s best; the order between users is ranked_week''s.';
GRANT EXECUTE ON FUNCTION share_beats(double precision, timestamptz, double precision, timestamptz)
    TO lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION ranked_before(p_diff double precision, p_at timestamptz, p_user text,
                                         p_other_diff double precision, p_other_at timestamptz, p_other_user text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT share_beats(p_diff, p_at, p_other_diff, p_other_at)
           OR (p_diff = p_other_diff AND p_at = p_other_at AND p_user < p_other_user)
$$;
COMMENT ON FUNCTION ranked_before(double precision, timestamptz, text, double precision, timestamptz, text) IS
    'Whether a participant (best, when reached, user id) ranks before another in the lottery order: a better best (share_beats), or the same reached at the same time and a smaller user id. The order ranked_week sorts by.';
GRANT EXECUTE ON FUNCTION ranked_before(double precision, timestamptz, text, double precision, timestamptz, text)
    TO lottery_bi, lottery_ingest;
