-- Core schema of the weekly lottery and games.
-- Tables stay private: the API is the functions and views in db/functions/.
-- This file never changes once applied; later changes go into new migrations.

-- Group roles used by GRANTs in db/functions/. NOLOGIN: login roles are
-- granted membership by the DBA.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lottery_web') THEN
        CREATE ROLE lottery_web NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lottery_bi') THEN
        CREATE ROLE lottery_bi NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lottery_ingest') THEN
        CREATE ROLE lottery_ingest NOLOGIN;
    END IF;
END
$$;

-- Functions are not executable by PUBLIC unless granted explicitly.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Raw events, written by the upstream collector. On the real platform this is
-- a TimescaleDB hypertable that already exists; then nothing here touches it.
CREATE TABLE IF NOT EXISTS mining_events (
    ts          timestamptz NOT NULL,
    event_type  text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

-- The only reads of raw events on a request path: latest network difficulty
-- and a user's found blocks. Both are rare event types, so the indexes are tiny.
CREATE INDEX IF NOT EXISTS mining_events_network_diff_idx
    ON mining_events (ts) WHERE event_type = 'new_block_network';
CREATE INDEX IF NOT EXISTS mining_events_block_found_idx
    ON mining_events ((payload->>'user'), ts) WHERE event_type = 'block_found';

-- Minimal stand-ins for the platform's earlier phases; used as they are when present.
CREATE TABLE IF NOT EXISTS users (
    id            text PRIMARY KEY,
    display_name  text
);

CREATE TABLE IF NOT EXISTS xp_transactions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       text        NOT NULL,
    amount        integer     NOT NULL,
    source        text        NOT NULL,
    reference_id  text        NOT NULL,
    description   text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- One award per (user, source, reference): a replayed draw adds nothing.
CREATE UNIQUE INDEX IF NOT EXISTS xp_transactions_award_once
    ON xp_transactions (user_id, source, reference_id);

CREATE TABLE IF NOT EXISTS notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     text        NOT NULL,
    category    text        NOT NULL,
    title       text        NOT NULL,
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_user_idx ON notifications (user_id, created_at DESC);

-- Per-user-per-UTC-day aggregate of accepted, well-formed shares, kept current
-- by the statement trigger on mining_events (db/functions/20_share_ingest.sql).
-- best_at is when the user first reached best_difficulty that day.
CREATE TABLE share_daily_best (
    user_id          text             NOT NULL,
    day              date             NOT NULL,
    best_difficulty  double precision NOT NULL CHECK (best_difficulty > 0),
    best_at          timestamptz      NOT NULL,
    best_hash        text,
    share_count      bigint           NOT NULL CHECK (share_count > 0),
    PRIMARY KEY (user_id, day)
) WITH (fillfactor = 80);

-- The same per ISO week (week_start is the Monday). One row per participant.
CREATE TABLE share_weekly_best (
    week_start       date             NOT NULL,
    user_id          text             NOT NULL,
    best_difficulty  double precision NOT NULL CHECK (best_difficulty > 0),
    best_at          timestamptz      NOT NULL,
    best_hash        text,
    share_count      bigint           NOT NULL CHECK (share_count > 0),
    PRIMARY KEY (week_start, user_id)
) WITH (fillfactor = 80);
-- The lottery order itself: ranking, live rank and the draw walk this index.
CREATE INDEX share_weekly_best_rank_idx
    ON share_weekly_best (week_start, best_difficulty DESC, best_at, user_id);

-- Every ISO week in which any event arrived; run_due_draws reads it.
CREATE TABLE event_weeks (
    week_start      date        PRIMARY KEY,
    first_event_at  timestamptz NOT NULL DEFAULT now()
);

-- Same columns as mining_events and always empty: rebuild_share_aggregates()
-- replays raw events through it so that they pass the very trigger ingest uses.
CREATE UNLOGGED TABLE share_replay (LIKE mining_events);

-- When mining_events already held data, the apply step (db/apply.py) fills
-- the three tables above with rebuild_share_aggregates() right after this migration.

-- Seed schema (spec 5.6) with the contract's additions: the best share's
-- time and hash on each result, and play counting on game sessions.
CREATE TABLE lottery_draws (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    week_start          timestamptz NOT NULL,
    week_end            timestamptz NOT NULL,
    total_participants  integer     NOT NULL DEFAULT 0,
    total_shares        bigint      NOT NULL DEFAULT 0,
    drawn_at            timestamptz,
    status              varchar(20) NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_lottery_draws_week UNIQUE (week_start),
    -- Weeks are half-open [Monday 00:00 UTC, next Monday 00:00 UTC).
    CONSTRAINT lottery_draws_week_is_iso_week CHECK (
        week_start = date_trunc('week', week_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        AND week_end = week_start + interval '7 days')
);
CREATE INDEX idx_lottery_draws_status ON lottery_draws (status);
CREATE INDEX idx_lottery_draws_week ON lottery_draws (week_start DESC);

CREATE TABLE lottery_results (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    draw_id          uuid             NOT NULL REFERENCES lottery_draws(id) ON DELETE CASCADE,
    user_id          varchar(128)     NOT NULL,
    rank             integer          NOT NULL CHECK (rank > 0),
    best_difficulty  double precision NOT NULL,
    best_share_at    timestamptz      NOT NULL,
    best_hash        text,
    ticket_count     bigint           NOT NULL DEFAULT 0,
    xp_awarded       integer          NOT NULL DEFAULT 0,
    game_played      varchar(20)
                     CHECK (game_played IS NULL OR game_played IN (
                         'hammer', 'horse_race', 'slots', 'scratch_card')),
    created_at       timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT uq_lottery_results_draw_user UNIQUE (draw_id, user_id),
    CONSTRAINT uq_lottery_results_draw_rank UNIQUE (draw_id, rank)
);
CREATE INDEX idx_lottery_results_user ON lottery_results (user_id);
CREATE INDEX idx_lottery_results_user_created ON lottery_results (user_id, created_at DESC);

CREATE TABLE game_sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         varchar(128) NOT NULL,
    game_type       varchar(20)  NOT NULL
                    CHECK (game_type IN ('hammer', 'horse_race', 'slots', 'scratch_card')),
    week_start      timestamptz  NOT NULL,
    played_at       timestamptz  NOT NULL DEFAULT now(),
    last_played_at  timestamptz  NOT NULL DEFAULT now(),
    play_count      integer      NOT NULL DEFAULT 1 CHECK (play_count > 0),
    result_data     jsonb        NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT uq_game_sessions_user_game_week UNIQUE (user_id, game_type, week_start)
);
CREATE INDEX idx_game_sessions_user ON game_sessions (user_id, last_played_at DESC);
CREATE INDEX idx_game_sessions_type ON game_sessions (game_type, played_at DESC);
CREATE INDEX idx_game_sessions_week ON game_sessions (week_start);

-- Spec 5.6's view, defined as the last completed draw so that it is ranked
-- exactly as lottery_results. run_lottery_draw refreshes it.
CREATE MATERIALIZED VIEW weekly_rankings AS
SELECT d.week_start,
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
