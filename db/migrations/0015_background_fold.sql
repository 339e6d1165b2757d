-- depends: 0014_leaderboards_privacy
-- Events are judged and folded after commit, off the write path.
--
-- Until now every event paid a PL/pgSQL row trigger before its INSERT returned.
-- Now an event costs what the bare table costs: a number from mining_events_seq
-- (the column default) and the table's indexes. A background fold
-- (fold_pending_events(), run by pg_cron's lottery-fold job or `lottery fold
-- --follow`) reads the events numbered above its watermark, after waiting for
-- every writer that could still commit a lower number, judges and folds them
-- set-based, and moves the watermark in the same transaction. Reads add each
-- user's own events above the watermark, so a user's own figures stay exact
-- before the fold reaches them (db/functions/22_share_fold.sql).
--
-- Only catalog changes touch mining_events here: the column is added without a
-- default (no rewrite), its default set for new rows only, and the row trigger
-- dropped. Rows already there keep seq NULL: the trigger folded them at their
-- commit. A writer either committed before this migration (folded by the
-- trigger) or writes after it (numbered, folded by the fold): the lock this
-- transaction holds on mining_events leaves no third case.

-- CACHE 1: a number a session had cached but not yet used could otherwise be
-- written long after the fold moved past it.
CREATE SEQUENCE mining_events_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE mining_events_seq IS
    'Numbers every event written to mining_events (its seq default), in the order the writers asked; the background fold folds by it.';
GRANT USAGE ON SEQUENCE mining_events_seq TO lottery_ingest;

ALTER TABLE mining_events ADD COLUMN IF NOT EXISTS seq bigint;
ALTER TABLE mining_events ALTER COLUMN seq SET DEFAULT nextval('mining_events_seq');
COMMENT ON COLUMN mining_events.seq IS
    'The event''s number from mining_events_seq (column default), for the background fold; NULL on events written before migration 0015, which the ingest trigger folded at their commit.';

DROP TRIGGER IF EXISTS aggregate_shares ON mining_events;
DROP TRIGGER IF EXISTS aggregate_shares ON share_replay;
DROP FUNCTION IF EXISTS aggregate_share_event_row();
DROP FUNCTION IF EXISTS fold_shares_at_commit();
DROP FUNCTION IF EXISTS open_share_queue();

-- The fold's two ways in: the events above the watermark, and one user's events
-- above it (the own figures a read adds). On the platform's hypertable, build
-- them CONCURRENTLY before applying on a large table (docs/platform.md): then
-- these find them and do nothing.
CREATE INDEX IF NOT EXISTS mining_events_seq_idx ON mining_events (seq);
CREATE INDEX IF NOT EXISTS mining_events_user_seq_idx ON mining_events ((payload->>'user'), seq);

-- One row: how far the fold has come.
CREATE TABLE event_fold (
    singleton       boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    folded_upto     bigint      NOT NULL DEFAULT 0,
    folded_at       timestamptz,
    events_folded   bigint      NOT NULL DEFAULT 0,
    malformed       bigint      NOT NULL DEFAULT 0
);
INSERT INTO event_fold DEFAULT VALUES;
COMMENT ON TABLE event_fold IS
    'The background fold''s watermark (one row): every event with seq <= folded_upto is in the aggregates, none above it. Moved in the same transaction as the aggregates it covers.';
COMMENT ON COLUMN event_fold.singleton IS 'Always true: the table holds one row.';
COMMENT ON COLUMN event_fold.folded_upto IS 'The highest mining_events.seq folded; every lower one is folded too.';
COMMENT ON COLUMN event_fold.folded_at IS
    'When the last fold that reached the last number handed out read that number: every event written before then is folded.';
COMMENT ON COLUMN event_fold.events_folded IS 'Events folded since this table was created (a counter for /metrics).';
COMMENT ON COLUMN event_fold.malformed IS
    'Events the fold found it could not judge (bad time, type, user, sdiff or payload) since this table was created: they count nowhere.';

-- Replays (rebuild_share_aggregates) now judge raw events in place.
DROP TABLE IF EXISTS share_replay;

-- Most folds only add to a participant-week's counts: with room left on each
-- page the update stays on its page (HOT) and touches no index. Pages written
-- from now on; VACUUM FULL would repack the older ones.
ALTER TABLE share_weekly_best SET (fillfactor = 70);
