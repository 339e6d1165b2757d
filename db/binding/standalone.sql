-- The standalone binding: this project's own minimal users, xp_transactions and
-- notifications (migration 0001), every one keyed by the mining user (the `user`
-- of a share event). db/apply.py loads it when the database holds none of the
-- platform's tables (db/binding/detect.sql), before db/functions/.
--
-- Every binding file defines these same functions with the same signatures;
-- the rest of the project reaches users, XP and notifications only through them.
-- db/binding/platform.sql is the other one; docs/platform.md ("Installing into the
-- platform") says how to write one for another schema.

CREATE OR REPLACE FUNCTION lottery_binding()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- not IMMUTABLE: another apply may load another binding
AS $$ SELECT 'standalone'::text $$;
COMMENT ON FUNCTION lottery_binding() IS
    'The name of the binding loaded by the last apply (db/binding/): standalone, platform, or a deployment''s own.';
GRANT EXECUTE ON FUNCTION lottery_binding() TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION platform_user_id(p_user_id text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT p_user_id $$;
COMMENT ON FUNCTION platform_user_id(text) IS
    'The platform''s user id (as text) of a mining user, NULL when the miner has none. Standalone every table is keyed by the mining user itself, so it is p_user_id.';
GRANT EXECUTE ON FUNCTION platform_user_id(text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION user_display_name(p_user_id text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT display_name FROM users WHERE id = p_user_id $$;
COMMENT ON FUNCTION user_display_name(text) IS
    'The display name of a mining user (users.display_name where users.id is the mining user), NULL when unknown.';
GRANT EXECUTE ON FUNCTION user_display_name(text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION deliver_pending_xp()
RETURNS integer
LANGUAGE sql VOLATILE
AS $$ SELECT 0 $$;
COMMENT ON FUNCTION deliver_pending_xp() IS
    'Delivers lottery XP waiting in xp_pending_deliveries to the platform''s XP ledger; returns how many awards it delivered. Standalone xp_transactions is the XP ledger: nothing waits, 0.';
-- No GRANT: run_due_draws() (SECURITY DEFINER) and the owner call it.

CREATE OR REPLACE FUNCTION deliver_draw_xp(p_draw_id uuid)
RETURNS integer
LANGUAGE sql VOLATILE
AS $$ SELECT 0 $$;
COMMENT ON FUNCTION deliver_draw_xp(uuid) IS
    'Delivers a draw''s lottery XP (its xp_transactions rows) to the platform''s XP ledger in the calling transaction; returns how many awards it delivered. Standalone xp_transactions is the XP ledger: 0.';
-- No GRANT: run_lottery_draw() (SECURITY DEFINER) calls it.

CREATE OR REPLACE FUNCTION write_notification(p_user_id text, p_type text, p_subtype text, p_title text,
                                              p_body text, p_action_url text DEFAULT NULL,
                                              p_action_label text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    -- Standalone notifications have a category (the type), a subtype and a body, no action.
    INSERT INTO notifications (user_id, category, subtype, title, body)
    VALUES (check_user_id(p_user_id), coalesce(p_type, ''), p_subtype, coalesce(p_title, ''), coalesce(p_body, ''))
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION write_notification(text, text, text, text, text, text, text) IS
    'Writes a notification to a mining user and returns its id (NULL when the user cannot be notified). Standalone: a notifications row with category = p_type and the subtype; the action is not stored. Raises LTU01 for an invalid user id.';
-- No GRANT: called by the draw (SECURITY DEFINER).

CREATE OR REPLACE FUNCTION notify_new_notifications()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- Texts are cut so that a payload stays under pg_notify's 8000 bytes
    -- (a row is kept whole; the WebSocket message is a notice of it).
    PERFORM pg_notify('lottery_events', jsonb_build_object(
        'event', 'notification',
        'userId', n.user_id,
        'data', jsonb_build_object('id', n.id, 'category', left(n.category, 32), 'type', left(n.category, 32),
                                   'subtype', left(n.subtype, 64), 'title', left(n.title, 256),
                                   'body', left(n.body, 700), 'createdAt', iso_utc_precise(n.created_at)))::text)
    FROM new_notifications AS n;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_new_notifications() IS
    'Statement trigger on notifications (db/functions/90_notify.sql): one NOTIFY lottery_events {"event":"notification","userId": the mining user,"data":{id, category, type (= category), subtype, title, body, createdAt}} per new row.';

-- This project's stand-ins for the platform's tables (migration 0001 creates
-- them when absent); on the platform its own tables and comments are left alone.
COMMENT ON TABLE users IS
    'Standalone stand-in for the platform''s users: a display name per mining user (id = ckpool''s username).';
COMMENT ON COLUMN users.id IS 'The mining user.';
COMMENT ON COLUMN users.display_name IS 'The name public lists show; NULL for none.';
COMMENT ON TABLE notifications IS
    'Standalone stand-in for the platform''s notifications; each new row is relayed to its user''s WebSocket (notify_new_notifications).';
COMMENT ON COLUMN notifications.id IS 'The notification id.';
COMMENT ON COLUMN notifications.user_id IS 'The mining user it is for.';
COMMENT ON COLUMN notifications.category IS 'Its type, as the platform''s (gamification).';
COMMENT ON COLUMN notifications.subtype IS 'Its kind within the type: lottery_result, personal_best.';
COMMENT ON COLUMN notifications.title IS 'The headline.';
COMMENT ON COLUMN notifications.body IS 'The text.';
COMMENT ON COLUMN notifications.created_at IS 'When it was written.';
COMMENT ON COLUMN notifications.read_at IS 'When the user read it; NULL while unread.';
