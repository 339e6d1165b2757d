-- Relays notifications rows to the WebSocket layer through NOTIFY on the
-- lottery_events channel; delivered when the inserting transaction commits.
-- The trigger function, notify_new_notifications(), belongs to the binding
-- (db/binding/): the table's columns and how a row names its mining user
-- differ between the standalone tables and the platform's.

CREATE OR REPLACE TRIGGER notify_new_notifications
    AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS new_notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notify_new_notifications();
