-- depends: 0009_weekly_rankings_week_date
-- get_weekly_game_data and get_game_data return json instead of jsonb, so that
-- WeeklyGameData's members come out in the frontend interface's order (jsonb
-- stores them sorted). CREATE OR REPLACE cannot change a return type: the
-- jsonb versions go here, and db/functions/50_game_data.sql, which every apply
-- reloads right after the migrations, creates the json ones with their grants.
DROP FUNCTION IF EXISTS get_game_data(text, text, date, timestamptz);
DROP FUNCTION IF EXISTS get_weekly_game_data(text, date, timestamptz);
