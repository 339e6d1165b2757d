-- depends: 0013_operations
-- Leaderboards, personal bests and privacy.
--
-- Public lists (top 10, leaderboards, a draw's published ranking) no longer show
-- another user's raw id: others appear by display name, a shortened id, or
-- "Anonymous miner" once they opt out (lottery_privacy). A draw's published
-- lines name each participant by a pseudonym, SHA-256(salt || user id), with a
-- random salt per result that only that user is shown; draws made before keep
-- their lines (raw ids) and their digest (lottery_draws.ranking_format).

-- Who asked not to be named on public lists. No row: public (the default).
CREATE TABLE lottery_privacy (
    user_id     text        PRIMARY KEY,
    public      boolean     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lottery_privacy IS
    'Each mining user''s choice of how other users see them on public lists (set_lottery_privacy); a user without a row is public.';
COMMENT ON COLUMN lottery_privacy.user_id IS 'The mining user.';
COMMENT ON COLUMN lottery_privacy.public IS
    'true: shown to others by display name, else by a shortened id; false: shown to others as "Anonymous miner".';
COMMENT ON COLUMN lottery_privacy.updated_at IS 'When the user last set it.';

-- The format of a draw's published lines. Every draw so far is of format 1.
ALTER TABLE lottery_draws
    ADD COLUMN ranking_format smallint NOT NULL DEFAULT 1 CHECK (ranking_format IN (1, 2));
ALTER TABLE lottery_draws ALTER COLUMN ranking_format SET DEFAULT 2;
COMMENT ON COLUMN lottery_draws.ranking_format IS
    'Format of the published ranked list and its results_digest: 1, each line names the user id (draws made before migration 0014); 2, each line names a pseudonym, SHA-256(salt || user id), whose salt only that user is shown.';

ALTER TABLE lottery_results ADD COLUMN pseudonym_salt uuid;
COMMENT ON COLUMN lottery_results.pseudonym_salt IS
    'Random salt (gen_random_uuid(): 16 bytes, 122 of them random) of the result''s pseudonym on a format-2 draw, SHA-256 of these 16 bytes followed by the user id in UTF-8; shown to that user alone. NULL on format-1 draws.';

-- A user's best rank ever is the first entry of this index. It covers every
-- lookup of a user's results, so the plain user_id index goes: the draw keeps
-- writing as many index entries as before.
CREATE INDEX lottery_results_user_rank_idx ON lottery_results (user_id, rank);
DROP INDEX idx_lottery_results_user;

-- Replaced by versions with one more argument or result column (CREATE OR
-- REPLACE can add neither): ranked_week reads from a rank bucket down
-- (p_and_below), a result's JSON depends on who asks, and week_rank returns
-- where a live rank lies. db/functions/, reloaded right after, creates them.
DROP FUNCTION IF EXISTS ranked_week(date, integer);
DROP FUNCTION IF EXISTS lottery_result_json(lottery_results);
DROP FUNCTION IF EXISTS week_rank(text, date);
