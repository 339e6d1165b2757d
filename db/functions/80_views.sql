-- Views for BI tools. Weeks are named by their Monday (a date).

CREATE OR REPLACE VIEW user_xp_totals AS
SELECT user_id, sum(amount)::bigint AS xp_total, count(*) AS awards
FROM xp_transactions
GROUP BY user_id;
COMMENT ON VIEW user_xp_totals IS
    'Each user''s XP total: by definition the sum of their xp_transactions ledger.';
GRANT SELECT ON user_xp_totals TO lottery_bi;

CREATE OR REPLACE VIEW lottery_draw_results AS
SELECT lottery_week_at(d.week_start) AS week_start,
       r.rank, r.user_id, r.best_difficulty, r.best_share_at, r.best_hash,
       r.ticket_count AS total_shares, r.xp_awarded, lottery_tier(r.rank) AS tier, r.game_played
FROM lottery_draws d
JOIN lottery_results r ON r.draw_id = d.id
WHERE d.status = 'completed';
COMMENT ON VIEW lottery_draw_results IS
    'Every completed draw''s ranked results, one row per participant and week.';
GRANT SELECT ON lottery_draw_results TO lottery_bi;

CREATE OR REPLACE VIEW game_popularity_weekly AS
SELECT lottery_week_at(s.week_start) AS week_start,
       s.game_type,
       count(*) AS players,
       sum(s.play_count)::bigint AS plays,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY s.week_start), 1) AS pct_of_sessions
FROM game_sessions s
GROUP BY s.week_start, s.game_type;
COMMENT ON VIEW game_popularity_weekly IS
    'Per week and game: players (users who played it), plays (including repeats) and that game''s share of the week''s sessions in percent.';
GRANT SELECT ON game_popularity_weekly TO lottery_bi;

CREATE OR REPLACE VIEW game_engagement_weekly AS
SELECT w.week_start,
       p.played,
       count(*) AS miners,
       round(avg(w.share_count), 1) AS avg_shares,
       round(100.0 * count(n.user_id) / count(*), 1) AS pct_mined_next_week,
       round(avg(coalesce(n.share_count, 0)), 1) AS avg_shares_next_week,
       round(avg(coalesce(n.share_count, 0)) - avg(w.share_count), 1) AS change_in_avg_shares
FROM share_weekly_best w
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT FROM game_sessions s
                   WHERE s.user_id = w.user_id
                     AND s.week_start = lottery_week_start_ts(w.week_start)) AS played) AS p
LEFT JOIN share_weekly_best n ON n.week_start = w.week_start + 7 AND n.user_id = w.user_id
WHERE w.week_start + 14 <= lottery_week_at(now())  -- the next week has closed too: it is whole
GROUP BY w.week_start, p.played;
COMMENT ON VIEW game_engagement_weekly IS
    'Did playing help mining? For each week whose next week has closed too, the miners of that week split by whether they played any game for it: how many, their average shares, the percentage who mined again the next week and their average shares then.';
GRANT SELECT ON game_engagement_weekly TO lottery_bi;

-- weekly_rankings is a materialized view: created by the migrations, refreshed by the draw.
GRANT SELECT ON weekly_rankings TO lottery_bi;
