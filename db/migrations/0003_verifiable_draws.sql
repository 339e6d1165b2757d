-- depends: 0002_role_privileges
-- A verifiable draw: each completed draw stores the SHA-256 of its canonical
-- ranked list, and how many shares were excluded because their claimed sdiff
-- was higher than their hash proves.
ALTER TABLE lottery_draws
    ADD COLUMN results_digest text,
    ADD COLUMN forged_shares bigint NOT NULL DEFAULT 0;
ALTER TABLE event_weeks
    ADD COLUMN forged_shares bigint NOT NULL DEFAULT 0;

-- Per-user play rate limit (record_game_session): a fixed one-minute window.
CREATE TABLE play_rate_limits (
    user_id       text        PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    plays         integer     NOT NULL
);
