-- depends: 0003_verifiable_draws
-- Reads that stay fast at a million participants.
--
-- Live rank: counting everyone ahead of a user is O(rank). Each weekly best
-- now falls in a log-scale bucket (0.5% wide), and share_rank_buckets holds
-- how many participants each bucket has; a rank is the sum of the buckets
-- above plus a count inside one bucket. The bucket is monotonic in
-- best_difficulty, so ordering by (rank_bucket DESC, best_difficulty DESC, ...)
-- is the lottery order itself, and one index serves the draw and the count.
ALTER TABLE share_weekly_best
    ADD COLUMN rank_bucket integer GENERATED ALWAYS AS (floor(ln(best_difficulty) * 200)::integer) STORED,
    -- The bucket before the row's last update: the ingest upsert returns it,
    -- so moving a participant between buckets needs no second read.
    ADD COLUMN prev_rank_bucket integer;
DROP INDEX share_weekly_best_rank_idx;
CREATE INDEX share_weekly_best_rank_idx
    ON share_weekly_best (week_start, rank_bucket DESC, best_difficulty DESC, best_at, user_id);

CREATE TABLE share_rank_buckets (
    week_start    date    NOT NULL,
    rank_bucket   integer NOT NULL,
    -- No CHECK (participants >= 0): ON CONFLICT tests CHECKs on the proposed
    -- row, and the ingest trigger proposes a bucket's change (-1) as that row.
    participants  bigint  NOT NULL,
    PRIMARY KEY (week_start, rank_bucket)
);
INSERT INTO share_rank_buckets (week_start, rank_bucket, participants)
SELECT week_start, rank_bucket, count(*) FROM share_weekly_best GROUP BY 1, 2;

-- The two facts weekly-data needs from rare event types, kept by the ingest
-- trigger so that no request reads raw mining_events. The apply step fills
-- them from events that arrived before this migration (adopt_existing_events).
CREATE TABLE network_difficulty_changes (
    ts          timestamptz      NOT NULL,
    difficulty  double precision NOT NULL CHECK (difficulty > 0)
);
CREATE INDEX network_difficulty_changes_ts_idx ON network_difficulty_changes (ts);

CREATE TABLE blocks_found (
    week_start      date        NOT NULL,
    user_id         text        NOT NULL,
    first_found_at  timestamptz NOT NULL,
    blocks          integer     NOT NULL CHECK (blocks > 0),
    PRIMARY KEY (user_id, week_start)
);
