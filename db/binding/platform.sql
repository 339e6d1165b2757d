-- The platform binding: the original platform's users, xp_ledger,
-- user_gamification and notifications (CONTRACT section 10). db/apply.py loads
-- it when db/binding/detect.sql finds all of them, before db/functions/.
--
-- The lottery stays keyed by the mining user (the `user` of a share event). The
-- platform's user of a mining user is the users row whose btc_address it is
-- (miners can mine before they register: then there is none); these functions
-- are the only place that mapping is made. They define the same functions, with
-- the same signatures, as db/binding/standalone.sql.

CREATE OR REPLACE FUNCTION lottery_binding()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- not IMMUTABLE: another apply may load another binding
AS $$ SELECT 'platform'::text $$;
COMMENT ON FUNCTION lottery_binding() IS
    'The name of the binding loaded by the last apply (db/binding/): standalone, platform, or a deployment''s own.';
GRANT EXECUTE ON FUNCTION lottery_binding() TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION platform_user_id(p_user_id text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT id::text FROM users WHERE btc_address = p_user_id $$;
COMMENT ON FUNCTION platform_user_id(text) IS
    'The platform''s user id (users.id, as text) of a mining user: the user whose btc_address it is; NULL when the miner has not registered.';
GRANT EXECUTE ON FUNCTION platform_user_id(text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION user_display_name(p_user_id text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT display_name::text FROM users WHERE btc_address = p_user_id $$;
COMMENT ON FUNCTION user_display_name(text) IS
    'The display name of a mining user (users.display_name of the user whose btc_address it is), NULL when unknown.';
GRANT EXECUTE ON FUNCTION user_display_name(text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION deliver_pending_xp()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_delivered integer;
BEGIN
    -- The platform's own award step in one statement: a ledger row per award,
    -- and its amount added to the user's total (the row made when missing).
    -- Only the awards the ledger takes count, so a key it already holds adds
    -- nothing; the queue row goes either way. Users in id order: two
    -- deliveries lock user_gamification rows in the same order.
    WITH due AS (
        DELETE FROM xp_pending_deliveries q
        USING users u
        WHERE u.btc_address = q.user_id
        RETURNING q.xp_transaction_id, u.id AS platform_user
    ), ledger AS (
        INSERT INTO xp_ledger (user_id, amount, source, source_id, description, idempotency_key)
        SELECT d.platform_user, x.amount, x.source, x.reference_id, left(x.description, 256),
               format('%s:%s:%s', x.source, x.reference_id, x.user_id)
        FROM due d JOIN xp_transactions x ON x.id = d.xp_transaction_id
        ORDER BY d.platform_user, x.id
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING user_id, amount
    ), totals AS (
        INSERT INTO user_gamification (user_id, total_xp, updated_at)
        SELECT user_id, sum(amount), now() FROM ledger GROUP BY user_id ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE
        SET total_xp = user_gamification.total_xp + EXCLUDED.total_xp,
            updated_at = EXCLUDED.updated_at
    )
    SELECT count(*)::integer INTO v_delivered FROM ledger;
    RETURN v_delivered;
END
$$;
COMMENT ON FUNCTION deliver_pending_xp() IS
    'Delivers every award waiting in xp_pending_deliveries whose miner now has a platform user: one xp_ledger row (source lottery, source_id the draw id, idempotency_key lottery:<draw id>:<mining user>) and the amount added to user_gamification.total_xp, in the calling transaction. Returns how many awards the ledger took. run_due_draws() calls it.';
-- No GRANT: run_due_draws() (SECURITY DEFINER) and the owner call it.

CREATE OR REPLACE FUNCTION deliver_draw_xp(p_draw_id uuid)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- Queue every award of the draw, then deliver what can be: the awards of
    -- miners without a platform user stay queued for the catch-up.
    INSERT INTO xp_pending_deliveries (xp_transaction_id, user_id)
    SELECT x.id, x.user_id
    FROM lottery_results r
    JOIN xp_transactions x ON x.user_id = r.user_id AND x.source = 'lottery'
                          AND x.reference_id = r.draw_id::text
    WHERE r.draw_id = p_draw_id
    ON CONFLICT (xp_transaction_id) DO NOTHING;
    RETURN deliver_pending_xp();
END
$$;
COMMENT ON FUNCTION deliver_draw_xp(uuid) IS
    'Queues a draw''s lottery awards (its xp_transactions rows) and delivers them to the platform (deliver_pending_xp) in the calling transaction; awards of miners without a platform user wait in xp_pending_deliveries. Returns how many awards the platform''s ledger took.';
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
    -- Texts cut to the platform's column widths; no row for a miner who has
    -- no platform user.
    INSERT INTO notifications (user_id, type, subtype, title, description, action_url, action_label)
    SELECT u.id, left(coalesce(p_type, ''), 32), left(coalesce(p_subtype, ''), 64),
           left(coalesce(p_title, ''), 256), p_body, left(p_action_url, 256), left(p_action_label, 64)
    FROM users u
    WHERE u.btc_address = check_user_id(p_user_id)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION write_notification(text, text, text, text, text, text, text) IS
    'Writes a notification to a mining user into the platform''s notifications (type, subtype, title, description = p_body, action_url, action_label) and returns its id; NULL, and nothing written, when the miner has no platform user. Raises LTU01 for an invalid user id.';
-- No GRANT: called by the draw (SECURITY DEFINER).

CREATE OR REPLACE FUNCTION notify_new_notifications()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- Every new row, the platform's own included, goes to its user's WebSockets,
    -- addressed by the mining user (the web layer knows users by it). Texts are
    -- cut so that a payload stays under pg_notify's 8000 bytes.
    PERFORM pg_notify('lottery_events', jsonb_build_object(
        'event', 'notification',
        'userId', u.btc_address,
        'data', jsonb_build_object('id', n.id, 'category', n.type, 'type', n.type, 'subtype', n.subtype,
                                   'title', left(n.title, 256), 'body', left(n.description, 700),
                                   'actionUrl', n.action_url, 'actionLabel', n.action_label,
                                   'createdAt', iso_utc_precise(n.created_at)))::text)
    FROM new_notifications AS n
    JOIN users u ON u.id = n.user_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_new_notifications() IS
    'Statement trigger on the platform''s notifications (db/functions/90_notify.sql): one NOTIFY lottery_events {"event":"notification","userId": the user''s btc_address,"data":{id, category (= type), type, subtype, title, body (= description), actionUrl, actionLabel, createdAt}} per new row.';
