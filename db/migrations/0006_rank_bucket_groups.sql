-- depends: 0005_partitioned_events
-- Live rank within milliseconds while shares arrive, at a million participants.
--
-- 0004's buckets were 0.5% wide and held up to ~2,000 participants each at a
-- million; counting inside one visits the heap for every row an ingest batch
-- has touched since the last VACUUM (index-only scans need all-visible pages),
-- which took a live rank past 5 ms under ingest. Buckets are now ten times
-- finer (0.05%: a few hundred participants at most), and there are ten times
-- more of them, so share_rank_bucket_groups holds the counts summed over runs
-- of 128 consecutive buckets (rank_bucket_group). A rank adds up the groups
-- above the user's, the buckets above it inside its group, and a count inside
-- its bucket. The ingest trigger keeps both levels.
ALTER TABLE share_weekly_best DROP COLUMN rank_bucket;  -- and share_weekly_best_rank_idx with it
ALTER TABLE share_weekly_best
    ADD COLUMN rank_bucket integer GENERATED ALWAYS AS (floor(ln(best_difficulty) * 2000)::integer) STORED;
-- prev_rank_bucket keeps old-scale values, unread: the ingest upsert sets it
-- from rank_bucket in the very UPDATE that returns it.
CREATE INDEX share_weekly_best_rank_idx
    ON share_weekly_best (week_start, rank_bucket DESC, best_difficulty DESC, best_at, user_id);

DELETE FROM share_rank_buckets;
INSERT INTO share_rank_buckets (week_start, rank_bucket, participants)
SELECT week_start, rank_bucket, count(*) FROM share_weekly_best GROUP BY 1, 2;

CREATE TABLE share_rank_bucket_groups (
    week_start    date    NOT NULL,
    bucket_group  integer NOT NULL,
    -- No CHECK (participants >= 0), as in share_rank_buckets: the ingest
    -- trigger proposes a group's change as the row to insert.
    participants  bigint  NOT NULL,
    PRIMARY KEY (week_start, bucket_group)
);
INSERT INTO share_rank_bucket_groups (week_start, bucket_group, participants)
SELECT week_start, rank_bucket >> 7, sum(participants) FROM share_rank_buckets GROUP BY 1, 2;
