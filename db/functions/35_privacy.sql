-- Privacy: how a user appears to others on public lists (the top 10 of a draw,
-- leaderboards), and the user's own choice (lottery_privacy). A user sees
-- their own id; others see a display name, a shortened id, or "Anonymous
-- miner" once that user opted out. A draw's published ranking names no one by
-- id at all (format 2: pseudonyms, 40_draw.sql).

CREATE OR REPLACE FUNCTION short_user_id(p_user_id text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE  -- not STRICT: least() is not, and a STRICT one would not be inlined
AS $$
    -- At most the first 6 and the last 4 characters, and never more than a
    -- quarter of the id at either end, so that no id, however short, shows
    -- whole: bc1qxy…0wlh for an address, a…e for alice, … for abc.
    SELECT left(p_user_id, least(6, length(p_user_id) / 4)) || '…'
           || right(p_user_id, least(4, length(p_user_id) / 4))
$$;
COMMENT ON FUNCTION short_user_id(text) IS
    'A mining user id shortened for others to see: at most its first 6 and last 4 characters around an ellipsis, each end at most a quarter of the id (bc1qxy…0wlh).';
GRANT EXECUTE ON FUNCTION short_user_id(text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION user_is_public(p_user_id text)
RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT NOT EXISTS (SELECT FROM lottery_privacy p WHERE p.user_id = p_user_id AND NOT p.public) $$;
COMMENT ON FUNCTION user_is_public(text) IS
    'Whether others may see this mining user by name (display name or shortened id): true unless the user opted out (lottery_privacy).';
REVOKE EXECUTE ON FUNCTION user_is_public(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION public_name(p_user_id text, p_viewer text)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_user_id = p_viewer THEN coalesce(user_display_name(p_user_id), p_user_id)
                WHEN user_is_public(p_user_id) THEN coalesce(user_display_name(p_user_id), short_user_id(p_user_id))
                ELSE 'Anonymous miner' END
$$;
COMMENT ON FUNCTION public_name(text, text) IS
    'How p_viewer sees p_user_id on a public list: themselves by display name, else their own id; others by display name, else a shortened id (short_user_id), or "Anonymous miner" when they opted out. A NULL viewer is anyone else.';
REVOKE EXECUTE ON FUNCTION public_name(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION lottery_privacy_json(p_user_id text)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'public', user_is_public(p_user_id),
        'shownAs', public_name(p_user_id, NULL),
        'updatedAt', (SELECT iso_utc_precise(p.updated_at) FROM lottery_privacy p WHERE p.user_id = p_user_id))
$$;
COMMENT ON FUNCTION lottery_privacy_json(text) IS
    'A user''s privacy setting as the API returns it: public, shownAs (what other users see) and updatedAt (null until set).';
REVOKE EXECUTE ON FUNCTION lottery_privacy_json(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION get_lottery_privacy(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN lottery_privacy_json(check_user_id(p_user_id));
END
$$;
COMMENT ON FUNCTION get_lottery_privacy(text) IS
    'The caller''s privacy setting: {public, shownAs, updatedAt}. Everyone is public until they opt out (set_lottery_privacy).';
GRANT EXECUTE ON FUNCTION get_lottery_privacy(text) TO lottery_web;

CREATE OR REPLACE FUNCTION set_lottery_privacy(p_user_id text, p_public boolean,
                                               p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now timestamptz := lottery_clock(p_now);
BEGIN
    PERFORM check_user_id(p_user_id);
    IF p_public IS NULL THEN
        RAISE SQLSTATE 'LTV01' USING
            MESSAGE = 'invalid privacy setting: public must be true or false',
            HINT = 'Send {"public": false} to show as "Anonymous miner" to others, {"public": true} to be shown by name.';
    END IF;
    INSERT INTO lottery_privacy AS p (user_id, public, updated_at)
    VALUES (p_user_id, p_public, v_now)
    ON CONFLICT (user_id) DO UPDATE SET public = excluded.public, updated_at = excluded.updated_at;
    RETURN lottery_privacy_json(p_user_id);
END
$$;
COMMENT ON FUNCTION set_lottery_privacy(text, boolean, timestamptz) IS
    'Sets whether other users see this user by name (p_public true: display name, else a shortened id) or as "Anonymous miner" (false) on every public list, from the next read on; returns the setting as get_lottery_privacy does. The user always sees their own id. Raises LTU01, and LTV01 for a NULL p_public.';
GRANT EXECUTE ON FUNCTION set_lottery_privacy(text, boolean, timestamptz) TO lottery_web;
