-- depends: 0006_rank_bucket_groups
-- Aggregation at commit, one row per participant-week.
--
-- The platform's collector writes shares by single-row INSERTs, a few hundred
-- per transaction. A statement trigger per single-row statement cost ~17x a
-- bare insert. Now a row trigger (aggregate_share_event_row, the same on a
-- plain, partitioned or hypertable mining_events) only judges each event and
-- appends it to a per-session queue; one deferred trigger folds the whole
-- transaction's queue at commit, set-based and in key order. Every figure is
-- still exact once the loading transaction commits, and concurrent loads only
-- meet each other at commit, where they take their locks in one order.
--
-- share_daily_best is folded into share_weekly_best: each participant-week row
-- now carries its seven daily bests and share counts, so a share updates one
-- row, and weekly-data reads one row. A view of the same name keeps the daily
-- rows readable (db/functions/22_share_fold.sql).

-- Inserts wait until this commits: no event is aggregated into the old shape
-- after the copy below has read it.
LOCK TABLE mining_events IN SHARE MODE;

-- Policies read by the fold (one row).
CREATE TABLE lottery_settings (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    require_share_hash  boolean NOT NULL DEFAULT false
);
INSERT INTO lottery_settings DEFAULT VALUES;
COMMENT ON TABLE lottery_settings IS
    'Policies of the lottery (one row). Change them with UPDATE; they apply to shares folded from then on.';
COMMENT ON COLUMN lottery_settings.require_share_hash IS
    'When true, an accepted share without a usable hash (missing, not 64 hex digits, all zeros) counts as a share but never as a best. Off by default: the platform''s collector sends no hash.';

-- The seven days of each participant-week, Monday first; 0 / 0 for a day without shares.
ALTER TABLE share_weekly_best
    ADD COLUMN day_best double precision[] NOT NULL DEFAULT '{0,0,0,0,0,0,0}'
        CHECK (array_length(day_best, 1) = 7),
    ADD COLUMN day_shares integer[] NOT NULL DEFAULT '{0,0,0,0,0,0,0}'
        CHECK (array_length(day_shares, 1) = 7);
UPDATE share_weekly_best w
SET day_best = d.best, day_shares = d.shares
FROM (SELECT uw.week, uw.user_id,
             array_agg(coalesce(db.best_difficulty, 0) ORDER BY i) AS best,
             array_agg(coalesce(db.share_count, 0)::integer ORDER BY i) AS shares
      FROM (SELECT DISTINCT date_trunc('week', day)::date AS week, user_id FROM share_daily_best) AS uw
      CROSS JOIN generate_series(0, 6) AS i
      LEFT JOIN share_daily_best db ON db.user_id = uw.user_id AND db.day = uw.week + i
      GROUP BY 1, 2) AS d
WHERE w.week_start = d.week AND w.user_id = d.user_id;
DROP TABLE share_daily_best;

-- A best of 0 is a participant whose only shares carry no usable hash while
-- require_share_hash is on: ranked after every real best, in a bucket of its own.
ALTER TABLE share_weekly_best DROP CONSTRAINT share_weekly_best_best_difficulty_check;
ALTER TABLE share_weekly_best ADD CHECK (best_difficulty >= 0);
ALTER TABLE share_weekly_best DROP COLUMN rank_bucket;  -- and share_weekly_best_rank_idx with it
ALTER TABLE share_weekly_best
    ADD COLUMN rank_bucket integer GENERATED ALWAYS AS (
        CASE WHEN best_difficulty > 0 THEN floor(ln(best_difficulty) * 2000)::integer ELSE (-2147483648)::integer END) STORED;
CREATE INDEX share_weekly_best_rank_idx
    ON share_weekly_best (week_start, rank_bucket DESC, best_difficulty DESC, best_at, user_id);
-- Same buckets as before for every positive best: the counts need no rebuild.

COMMENT ON TABLE share_weekly_best IS
    'One row per participant and ISO week: the best share (difficulty, when first reached, hash), the share count and the seven daily bests and counts. Kept exact at commit by the fold (fold_pending_shares); the rank index is the lottery order.';
COMMENT ON COLUMN share_weekly_best.best_at IS 'When the user first reached best_difficulty that week.';
COMMENT ON COLUMN share_weekly_best.best_hash IS 'Hash of the share that set best_difficulty; NULL when that share had no usable hash.';
COMMENT ON COLUMN share_weekly_best.share_count IS 'Accepted, honest shares of the week (the draw''s ticket count).';
COMMENT ON COLUMN share_weekly_best.day_best IS 'Best difficulty of each day, Monday first; 0 for a day without shares.';
COMMENT ON COLUMN share_weekly_best.day_shares IS 'Share count of each day, Monday first.';
COMMENT ON COLUMN share_weekly_best.rank_bucket IS
    'floor(ln(best_difficulty) * 2000): log-scale buckets 0.05% wide, counted in share_rank_buckets for the live rank.';
COMMENT ON COLUMN share_weekly_best.prev_rank_bucket IS
    'rank_bucket before the row''s last update, returned by the fold''s upsert so that a move between buckets needs no second read.';

-- Each user's best share of all time, for personal bests (and the
-- "new personal best" notification, at most one a minute).
CREATE TABLE share_user_best (
    user_id          text             PRIMARY KEY,
    best_difficulty  double precision NOT NULL CHECK (best_difficulty >= 0),
    best_at          timestamptz      NOT NULL,
    best_hash        text,
    week_start       date             NOT NULL,
    notified_at      timestamptz
);
INSERT INTO share_user_best (user_id, best_difficulty, best_at, best_hash, week_start)
SELECT DISTINCT ON (user_id) user_id, best_difficulty, best_at, best_hash, week_start
FROM share_weekly_best
ORDER BY user_id, best_difficulty DESC, best_at;
COMMENT ON TABLE share_user_best IS
    'Each mining user''s best share of all time (difficulty, when first reached, hash, week), kept by the fold.';
COMMENT ON COLUMN share_user_best.notified_at IS
    'When the last personal_best notification was sent: at most one a minute per user.';

-- Per-week tallies, bumped by the fold once per loading transaction.
ALTER TABLE event_weeks
    ADD COLUMN accepted_shares bigint NOT NULL DEFAULT 0,
    ADD COLUMN unverified_shares bigint NOT NULL DEFAULT 0;
UPDATE event_weeks e SET accepted_shares = w.shares
FROM (SELECT week_start, sum(share_count) AS shares FROM share_weekly_best GROUP BY 1) AS w
WHERE e.week_start = w.week_start;
COMMENT ON TABLE event_weeks IS
    'Every ISO week in which any well-timed event arrived (run_due_draws reads it), with its share tallies.';
COMMENT ON COLUMN event_weeks.accepted_shares IS 'Accepted, honest shares folded into the week.';
COMMENT ON COLUMN event_weeks.unverified_shares IS
    'Of accepted_shares, those without a usable hash (missing, not 64 hex digits, all zeros): their claim could not be checked.';
COMMENT ON COLUMN event_weeks.forged_shares IS
    'Accepted shares whose sdiff claims more than their hash proves: counted nowhere else.';

-- How many results of a draw rest on a best share without a usable hash
-- (nothing for a verifier to re-derive).
ALTER TABLE lottery_draws ADD COLUMN unverified_results integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN lottery_draws.unverified_results IS
    'Results whose best share had no usable hash, so its difficulty cannot be re-derived.';

-- The trigger swap, in this transaction: from a statement trigger with a
-- transition table to the row trigger that queues each event. Until the
-- function files are reloaded right after the migrations, its body is this
-- placeholder, which keeps every event for the apply step to fold
-- (adopt_existing_events drains share_upgrade_backlog): no event arriving
-- during an upgrade goes unaggregated.
CREATE UNLOGGED TABLE share_upgrade_backlog (LIKE share_replay);
COMMENT ON TABLE share_upgrade_backlog IS
    'Events that arrived between this migration and the reload of the function files; the apply step folds and empties it.';
CREATE OR REPLACE FUNCTION aggregate_share_event_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO share_upgrade_backlog SELECT NEW.*;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS aggregate_shares ON mining_events;
DROP TRIGGER IF EXISTS aggregate_shares_row ON mining_events;
DROP TRIGGER IF EXISTS aggregate_shares ON share_replay;
DROP FUNCTION IF EXISTS aggregate_share_events();
CREATE TRIGGER aggregate_shares AFTER INSERT ON mining_events
    FOR EACH ROW EXECUTE FUNCTION aggregate_share_event_row();
CREATE TRIGGER aggregate_shares AFTER INSERT ON share_replay
    FOR EACH ROW EXECUTE FUNCTION aggregate_share_event_row();

-- Standalone notifications name their kind like the platform's do: a type
-- (category) and a subtype (lottery_result, personal_best). A no-op on the
-- platform's table, which has one.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS subtype text;

-- share_event_problem judges the event's time too now (a third argument).
DROP FUNCTION IF EXISTS share_event_problem(text, jsonb);
-- Retired: superseded by completed_draw(); ranked_week gained an optional rank bucket.
DROP FUNCTION IF EXISTS raise_draw_not_found(text);
DROP FUNCTION IF EXISTS ranked_week(date);

-- A week is 168 hours in UTC: "+ interval '7 days'" follows the session's time
-- zone across a clock change and made such a week an hour short or long.
ALTER TABLE lottery_draws DROP CONSTRAINT lottery_draws_week_is_iso_week;
ALTER TABLE lottery_draws ADD CONSTRAINT lottery_draws_week_is_iso_week CHECK (
    week_start = date_trunc('week', week_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    AND week_end = week_start + interval '168 hours');
