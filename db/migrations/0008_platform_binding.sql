-- depends: 0007_commit_time_aggregation
-- Delivery state of the platform binding (db/binding/platform.sql).
--
-- Every lottery award stays in this project's own ledger, xp_transactions. Bound
-- to the platform, the draw also queues each of its awards here and at once
-- delivers those whose miner has a platform user (users.btc_address = the mining
-- user) into the platform's xp_ledger and user_gamification.total_xp; the award
-- of a miner who has not registered yet waits here, and the first
-- deliver_pending_xp() after the registration (run_due_draws(), hourly) delivers
-- it. Each award reaches the platform once: xp_ledger.idempotency_key is
-- 'lottery:<draw id>:<mining user>', and a delivered award leaves this table in
-- the same statement. Standalone the table stays empty.
CREATE TABLE xp_pending_deliveries (
    xp_transaction_id  bigint      PRIMARY KEY REFERENCES xp_transactions (id) ON DELETE CASCADE,
    user_id            text        NOT NULL,
    queued_at          timestamptz NOT NULL DEFAULT now()
);
-- The catch-up looks queued awards up by the miners that have a platform user.
CREATE INDEX xp_pending_deliveries_user_idx ON xp_pending_deliveries (user_id);
COMMENT ON TABLE xp_pending_deliveries IS
    'Lottery XP awards (xp_transactions rows) not yet delivered to the platform''s XP ledger because their miner had no platform user; deliver_pending_xp() delivers and removes them. Empty in the standalone binding.';
COMMENT ON COLUMN xp_pending_deliveries.xp_transaction_id IS
    'The award in this project''s ledger; deleting that row (to change an award) drops its delivery too.';
COMMENT ON COLUMN xp_pending_deliveries.user_id IS
    'The mining user of the award (xp_transactions.user_id), matched against the platform''s users at each delivery.';
COMMENT ON COLUMN xp_pending_deliveries.queued_at IS
    'When the draw queued the award.';

-- 0001 gave a platform's own notifications table (its shape: a subtype column)
-- a second index on (user_id, created_at DESC), beside the platform's own. This
-- project only inserts there, so the extra index goes.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('public.notifications')
               AND attname = 'subtype' AND NOT attisdropped) THEN
        DROP INDEX IF EXISTS public.notifications_user_idx;
    END IF;
END
$$;
