-- depends: 0004_rank_buckets_and_event_facts
-- Live rank in a hundred rows, not thousands. At a million participants the
-- week has ~2,300 non-empty rank buckets, and summing all of them was most of
-- a weekly-data call. share_rank_bucket_groups holds the same counts summed
-- over runs of 64 consecutive buckets (rank_bucket_group), so a rank adds up
-- the groups above the user's, the buckets above it inside its group, and a
-- count inside its bucket. The ingest trigger keeps both levels.
CREATE TABLE share_rank_bucket_groups (
    week_start    date    NOT NULL,
    bucket_group  integer NOT NULL,
    -- No CHECK (participants >= 0), as in share_rank_buckets: the ingest
    -- trigger proposes a group's change as the row to insert.
    participants  bigint  NOT NULL,
    PRIMARY KEY (week_start, bucket_group)
);
INSERT INTO share_rank_bucket_groups (week_start, bucket_group, participants)
SELECT week_start, rank_bucket >> 6, sum(participants) FROM share_rank_buckets GROUP BY 1, 2;
