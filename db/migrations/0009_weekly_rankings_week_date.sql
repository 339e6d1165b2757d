-- depends: 0008_platform_binding
-- weekly_rankings names its week by its Monday, a date, as every other BI view
-- does, instead of the draw's timestamptz. A materialized view's columns change
-- only by recreating it; it is filled at once from the last completed draw, as
-- every draw refreshes it. Its SELECT grant, to lottery_bi alone, follows the
-- other views' in db/functions/80_views.sql (the web app reads no relation).
DROP MATERIALIZED VIEW weekly_rankings;

CREATE MATERIALIZED VIEW weekly_rankings AS
SELECT (d.week_start AT TIME ZONE 'UTC')::date AS week_start,  -- Monday 00:00 UTC: its date
       r.user_id,
       r.best_difficulty,
       r.ticket_count AS total_shares,
       r.best_share_at AS best_timestamp,
       r.rank,
       r.xp_awarded
FROM lottery_draws d
JOIN lottery_results r ON r.draw_id = d.id
WHERE d.id = (SELECT id FROM lottery_draws WHERE status = 'completed'
              ORDER BY week_start DESC LIMIT 1);
CREATE UNIQUE INDEX idx_weekly_rankings_user ON weekly_rankings (user_id);
CREATE INDEX idx_weekly_rankings_rank ON weekly_rankings (rank);

COMMENT ON MATERIALIZED VIEW weekly_rankings IS
    'The ranked results of the last completed draw (spec 5.6), refreshed by every draw. One row per participant.';
COMMENT ON COLUMN weekly_rankings.week_start IS 'The drawn week, named by its Monday.';
COMMENT ON COLUMN weekly_rankings.total_shares IS 'The participant''s accepted shares that week (lottery_results.ticket_count).';
COMMENT ON COLUMN weekly_rankings.best_timestamp IS 'When the participant first reached their best difficulty.';
