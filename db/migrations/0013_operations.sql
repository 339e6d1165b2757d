-- depends: 0012_xp_tiers_and_comments
-- What an operator needs to see the lottery run: how long each draw took, and
-- the outcome of the scheduled jobs recorded in this database. pg_cron keeps
-- its own run history (cron.job_run_details) in the database named by
-- cron.database_name, out of reach of a function running here, so each job's
-- command records its own start and outcome (run_scheduled_job, in
-- db/functions/95_operations.sql).

ALTER TABLE lottery_draws ADD COLUMN draw_seconds double precision;
COMMENT ON COLUMN lottery_draws.draw_seconds IS
    'Wall-clock seconds run_lottery_draw spent ranking and writing this draw; NULL for draws made before it was recorded.';

CREATE TABLE scheduled_job_runs (
    job              text        PRIMARY KEY,
    status           text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    sqlstate         text,
    message          text,
    last_success_at  timestamptz,
    last_failure_at  timestamptz,
    runs             bigint      NOT NULL DEFAULT 0,
    failures         bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE scheduled_job_runs IS
    'The last run of each scheduled job (lottery-draw, lottery-catchup, lottery-partitions), written by run_scheduled_job: one row per job, committed at the start of a run and again at its end.';
COMMENT ON COLUMN scheduled_job_runs.job IS 'The job''s name without the database suffix pg_cron''s jobname carries.';
COMMENT ON COLUMN scheduled_job_runs.status IS
    'running from the start of a run until it ends; a run killed before its end (a crash, a terminated backend) stays running.';
COMMENT ON COLUMN scheduled_job_runs.started_at IS 'When the last run started (clock_timestamp()).';
COMMENT ON COLUMN scheduled_job_runs.finished_at IS 'When the last run ended; NULL while it runs.';
COMMENT ON COLUMN scheduled_job_runs.sqlstate IS 'The SQLSTATE the last run failed with; NULL unless it failed.';
COMMENT ON COLUMN scheduled_job_runs.message IS 'The error message the last run failed with; NULL unless it failed.';
COMMENT ON COLUMN scheduled_job_runs.last_success_at IS 'When the most recent successful run ended.';
COMMENT ON COLUMN scheduled_job_runs.last_failure_at IS 'When the most recent failed run ended.';
COMMENT ON COLUMN scheduled_job_runs.runs IS 'Runs started since the row was created.';
COMMENT ON COLUMN scheduled_job_runs.failures IS 'Runs that failed since the row was created.';
