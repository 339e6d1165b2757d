-- depends: 0010_weekly_game_data_json
-- The XP tiers as one table, read by calculate_xp_for_rank(), lottery_tier(),
-- the draw, the statistics and the top-10 rule; and a comment on every table
-- and column of this project, so that \d+ explains them.

CREATE TABLE lottery_tiers (
    tier        text    PRIMARY KEY,
    first_rank  integer NOT NULL CHECK (first_rank >= 0),
    last_rank   integer CHECK (last_rank >= first_rank),
    xp          integer NOT NULL CHECK (xp >= 0)
);
INSERT INTO lottery_tiers (tier, first_rank, last_rank, xp) VALUES
    ('Did not mine', 0, 0, 0),
    ('Top 10', 1, 10, 100),
    ('Top 50', 11, 50, 50),
    ('Top 100', 51, 100, 25),
    ('Participated', 101, NULL, 10);
CREATE UNIQUE INDEX lottery_tiers_first_rank ON lottery_tiers (first_rank);
COMMENT ON TABLE lottery_tiers IS
    'The XP tiers of a weekly rank (spec 5.3.2): ranks first_rank..last_rank earn xp and show the tier''s label. Rank 0 is a user without shares. Read by calculate_xp_for_rank, lottery_tier, the draw and the statistics.';
COMMENT ON COLUMN lottery_tiers.tier IS 'The label the scratch card and the BI views show: Top 10, Top 50, Top 100, Participated, Did not mine.';
COMMENT ON COLUMN lottery_tiers.first_rank IS 'The best rank of the tier.';
COMMENT ON COLUMN lottery_tiers.last_rank IS 'The worst rank of the tier; NULL for the last tier, which has no end.';
COMMENT ON COLUMN lottery_tiers.xp IS 'XP awarded for a rank in the tier.';

-- The project's own tables (the stand-ins for the platform's users and
-- notifications are commented by db/binding/standalone.sql, the only place
-- that knows they are ours).
DO $$
BEGIN
    -- mining_events may be the platform's: a comment it already has stays.
    IF obj_description('public.mining_events'::regclass, 'pg_class') IS NULL THEN
        COMMENT ON TABLE mining_events IS
            'Raw events from the pool''s collector (share_submitted, new_block_network, block_found, ...), one row each; the row trigger aggregate_shares folds them into the aggregates at commit.';
        COMMENT ON COLUMN mining_events.ts IS 'When the event happened.';
        COMMENT ON COLUMN mining_events.event_type IS 'share_submitted, new_block_network, block_found, or another type kept as it is.';
        COMMENT ON COLUMN mining_events.payload IS 'The event''s fields as the collector sent them (CONTRACT 1).';
    END IF;
END
$$;

COMMENT ON TABLE share_replay IS
    'Always empty: rebuild_share_aggregates() replays raw events through it, so that they pass the very trigger ingest uses.';

COMMENT ON TABLE xp_transactions IS
    'The lottery''s own XP ledger, keyed by mining user: one row per (user, source, reference), so a replayed draw adds nothing. A user''s lottery XP is the sum of their rows.';
COMMENT ON COLUMN xp_transactions.user_id IS 'The mining user (ckpool''s username).';
COMMENT ON COLUMN xp_transactions.amount IS 'XP awarded.';
COMMENT ON COLUMN xp_transactions.source IS 'What awarded it: lottery.';
COMMENT ON COLUMN xp_transactions.reference_id IS 'The awarding object: the draw id for the lottery.';
COMMENT ON COLUMN xp_transactions.description IS 'Human-readable reason, e.g. Weekly Lottery Rank #3 (week of 2026-11-16).';
COMMENT ON COLUMN xp_transactions.created_at IS 'When the award was written.';

COMMENT ON TABLE event_weeks IS
    'Every ISO week in which any well-timed event arrived (run_due_draws reads it), with its share tallies.';
COMMENT ON COLUMN event_weeks.week_start IS 'The Monday of the week.';
COMMENT ON COLUMN event_weeks.first_event_at IS 'When the first event of the week was folded.';

COMMENT ON TABLE lottery_draws IS
    'One row per drawn ISO week (spec 5.6): its totals, the digest of its ranked list and its status. Written only by run_lottery_draw().';
COMMENT ON COLUMN lottery_draws.id IS 'The draw id (also the XP ledger reference).';
COMMENT ON COLUMN lottery_draws.week_start IS 'Monday 00:00 UTC of the week drawn.';
COMMENT ON COLUMN lottery_draws.week_end IS 'The next Monday 00:00 UTC: the week is [week_start, week_end).';
COMMENT ON COLUMN lottery_draws.total_participants IS 'Users with at least one accepted, honest share in the week.';
COMMENT ON COLUMN lottery_draws.total_shares IS 'Their accepted, honest shares.';
COMMENT ON COLUMN lottery_draws.drawn_at IS 'When the draw completed (the clock it ran with).';
COMMENT ON COLUMN lottery_draws.status IS 'in_progress while the drawing transaction runs, completed once it committed.';
COMMENT ON COLUMN lottery_draws.created_at IS 'When the row was first written.';
COMMENT ON COLUMN lottery_draws.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN lottery_draws.results_digest IS
    'SHA-256 (hex) of the canonical ranked list: every lottery_result_line followed by a newline, in rank order.';
COMMENT ON COLUMN lottery_draws.forged_shares IS 'Accepted shares of the week whose sdiff claimed more than their hash proves: counted nowhere.';

COMMENT ON TABLE lottery_results IS
    'One row per participant of a drawn week, in the lottery order: rank, best share, tickets, XP and the game played.';
COMMENT ON COLUMN lottery_results.id IS 'The result id.';
COMMENT ON COLUMN lottery_results.draw_id IS 'The draw (lottery_draws.id).';
COMMENT ON COLUMN lottery_results.user_id IS 'The mining user.';
COMMENT ON COLUMN lottery_results.rank IS '1..N by best difficulty DESC, first reached ASC, user id ASC (ranked_week).';
COMMENT ON COLUMN lottery_results.best_difficulty IS 'The user''s best share difficulty of the week.';
COMMENT ON COLUMN lottery_results.best_share_at IS 'When the user first reached it.';
COMMENT ON COLUMN lottery_results.best_hash IS 'The hash of that share; NULL when it had no usable hash.';
COMMENT ON COLUMN lottery_results.ticket_count IS 'The user''s accepted, honest shares of the week.';
COMMENT ON COLUMN lottery_results.xp_awarded IS 'XP of the rank''s tier (lottery_tiers).';
COMMENT ON COLUMN lottery_results.game_played IS 'The game the user last played for that week, set at draw time and on later plays.';
COMMENT ON COLUMN lottery_results.created_at IS 'When the result was written.';

COMMENT ON TABLE game_sessions IS
    'One row per (user, game, week): the first play and the last, how many plays, and the frontend''s result data.';
COMMENT ON COLUMN game_sessions.id IS 'The session id.';
COMMENT ON COLUMN game_sessions.user_id IS 'The mining user.';
COMMENT ON COLUMN game_sessions.game_type IS 'hammer, horse_race, slots or scratch_card.';
COMMENT ON COLUMN game_sessions.week_start IS 'Monday 00:00 UTC of the week played.';
COMMENT ON COLUMN game_sessions.played_at IS 'The first play.';
COMMENT ON COLUMN game_sessions.last_played_at IS 'The latest play.';
COMMENT ON COLUMN game_sessions.play_count IS 'Plays so far, the first included.';
COMMENT ON COLUMN game_sessions.result_data IS 'What the frontend sent with the latest play (a JSON object of at most 4 KiB).';

COMMENT ON TABLE play_rate_limits IS 'Per user, the current one-minute window of game plays (at most 30 in it).';
COMMENT ON COLUMN play_rate_limits.user_id IS 'The mining user.';
COMMENT ON COLUMN play_rate_limits.window_start IS 'When the current window began.';
COMMENT ON COLUMN play_rate_limits.plays IS 'Plays recorded in it.';

COMMENT ON TABLE share_rank_buckets IS
    'Participants per week and rank bucket (share_weekly_best.rank_bucket), for the live rank. Kept by move_rank_buckets().';
COMMENT ON COLUMN share_rank_buckets.week_start IS 'The Monday of the week.';
COMMENT ON COLUMN share_rank_buckets.rank_bucket IS 'floor(ln(best_difficulty) * 2000).';
COMMENT ON COLUMN share_rank_buckets.participants IS 'How many participants of the week have their best in the bucket.';
COMMENT ON TABLE share_rank_bucket_groups IS
    'Participants per week and run of 128 rank buckets (rank_bucket_group), so that a live rank sums a few hundred rows.';
COMMENT ON COLUMN share_rank_bucket_groups.week_start IS 'The Monday of the week.';
COMMENT ON COLUMN share_rank_bucket_groups.bucket_group IS 'rank_bucket >> 7.';
COMMENT ON COLUMN share_rank_bucket_groups.participants IS 'How many participants of the week have their best in the group''s buckets.';

COMMENT ON TABLE network_difficulty_changes IS 'Every valid new_block_network event: the network difficulty from then on.';
COMMENT ON COLUMN network_difficulty_changes.ts IS 'When the difficulty was announced.';
COMMENT ON COLUMN network_difficulty_changes.difficulty IS 'The network difficulty.';
COMMENT ON TABLE blocks_found IS 'Per user and week, the blocks they found (block_found events).';
COMMENT ON COLUMN blocks_found.week_start IS 'The Monday of the week.';
COMMENT ON COLUMN blocks_found.user_id IS 'The mining user who found them.';
COMMENT ON COLUMN blocks_found.first_found_at IS 'When the first of them was found.';
COMMENT ON COLUMN blocks_found.blocks IS 'How many.';

COMMENT ON COLUMN lottery_settings.singleton IS 'Always true: the settings have one row.';
COMMENT ON COLUMN xp_transactions.id IS 'The ledger row id.';
COMMENT ON COLUMN share_weekly_best.week_start IS 'The Monday of the week.';
COMMENT ON COLUMN share_weekly_best.user_id IS 'The mining user.';
COMMENT ON COLUMN share_weekly_best.best_difficulty IS
    'The best share difficulty of the week; 0 when every share lacked a usable hash under require_share_hash.';
COMMENT ON COLUMN share_user_best.user_id IS 'The mining user.';
COMMENT ON COLUMN share_user_best.best_difficulty IS 'The best share difficulty of all time.';
COMMENT ON COLUMN share_user_best.best_at IS 'When the user first reached it.';
COMMENT ON COLUMN share_user_best.best_hash IS 'The hash of that share; NULL when it had no usable hash.';
COMMENT ON COLUMN share_user_best.week_start IS 'The Monday of the week it came in.';
DO $$
DECLARE
    v_table text;
BEGIN
    IF to_regclass('public.event_partition_policy') IS NOT NULL THEN  -- 0005's
        COMMENT ON COLUMN event_partition_policy.singleton IS 'Always true: the policy has one row.';
    END IF;
    -- Same columns as mining_events (LIKE): the platform's may have more.
    FOREACH v_table IN ARRAY ARRAY['share_replay', 'share_upgrade_backlog'] LOOP
        EXECUTE format('COMMENT ON COLUMN %I.ts IS %L', v_table, 'As mining_events.ts.');
        EXECUTE format('COMMENT ON COLUMN %I.event_type IS %L', v_table, 'As mining_events.event_type.');
        EXECUTE format('COMMENT ON COLUMN %I.payload IS %L', v_table, 'As mining_events.payload.');
    END LOOP;
END
$$;
