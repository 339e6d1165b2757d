-- Relays notifications rows to the WebSocket layer through NOTIFY on the
-- lottery_events channel; delivered when the inserting transaction commits.

CREATE OR REPLACE FUNCTION notify_new_notifications()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('lottery_events', jsonb_build_object(
        'event', 'notification',
        'userId', n.user_id,
        'data', jsonb_build_object('id', n.id, 'category', n.category, 'title', n.title,
                                   'body', n.body, 'createdAt', iso_utc_precise(n.created_at)))::text)
    FROM new_notifications AS n;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_new_notifications() IS
    'Statement trigger on notifications: one NOTIFY lottery_events {"event":"notification","userId",...,"data"} per new row.';

CREATE OR REPLACE TRIGGER notify_new_notifications
    AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS new_notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notify_new_notifications();
