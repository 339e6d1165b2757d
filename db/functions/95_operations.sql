-- Operations: the scheduled jobs record their own outcome here, and one report
-- gathers what an operator watches (the web app's /metrics, `lottery status
-- --check`): the recent weeks, the last draw, what is due, each job's last run,
-- the partitions, and the findings an alert is raised on. Every figure reads a
-- few rows: per-week tables, the rank bucket groups, catalog and statistics
-- views; nothing scales with the number of participants.

CREATE OR REPLACE PROCEDURE run_scheduled_job(p_job text)
LANGUAGE plpgsql
-- Not SECURITY DEFINER and no SET clause: either forbids the COMMITs below.
-- pg_cron runs it as the role that scheduled it, the owner; names are qualified.
AS $$
DECLARE
    v_state   text;
    v_message text;
    v_detail  text;
    v_hint    text;
BEGIN
    IF p_job IS NULL OR p_job NOT IN ('lottery-draw', 'lottery-catchup', 'lottery-partitions') THEN
        RAISE SQLSTATE 'LTJ01' USING
            MESSAGE = format('unknown scheduled job %s', coalesce(quote_literal(p_job), 'NULL')),
            HINT = 'The jobs are lottery-draw, lottery-catchup and lottery-partitions (db/apply.py schedules them).';
    END IF;
    INSERT INTO public.scheduled_job_runs AS r (job, status, started_at, runs)
    VALUES (p_job, 'running', clock_timestamp(), 1)
    ON CONFLICT (job) DO UPDATE SET
        status = 'running', started_at = excluded.started_at, finished_at = NULL,
        sqlstate = NULL, message = NULL, runs = r.runs + 1;
    -- Committed before the work: a run killed half-way stays visible as running.
    COMMIT;
    BEGIN
        IF p_job = 'lottery-partitions' THEN
            PERFORM public.maintain_event_partitions();
        ELSE
            PERFORM count(*) FROM public.run_due_draws();
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- The work is rolled back with this block; its outcome is kept below.
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    END;
    UPDATE public.scheduled_job_runs SET
        status = CASE WHEN v_state IS NULL THEN 'succeeded' ELSE 'failed' END,
        finished_at = clock_timestamp(), sqlstate = v_state, message = v_message,
        last_success_at = CASE WHEN v_state IS NULL THEN clock_timestamp() ELSE last_success_at END,
        last_failure_at = CASE WHEN v_state IS NULL THEN last_failure_at ELSE clock_timestamp() END,
        failures = failures + (v_state IS NOT NULL)::integer
    WHERE job = p_job;
    COMMIT;
    IF v_state IS NOT NULL THEN
        -- Failed again for the caller, so that pg_cron's own history says so too.
        RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_message,
            DETAIL = coalesce(nullif(v_detail, ''), format('The run of %s is recorded in scheduled_job_runs.', p_job)),
            HINT = coalesce(nullif(v_hint, ''), '`lottery status --check` reports it until a run succeeds.');
    END IF;
END
$$;
COMMENT ON PROCEDURE run_scheduled_job(text) IS
    'The command of each pg_cron job (CALL run_scheduled_job(''lottery-draw'')): commits a running row in scheduled_job_runs, runs the job (run_due_draws() for lottery-draw and lottery-catchup, maintain_event_partitions() for lottery-partitions), commits its outcome, and re-raises a failure. Needs a non-atomic CALL (autocommit, as pg_cron runs it). Raises LTJ01 for an unknown job.';
REVOKE EXECUTE ON PROCEDURE run_scheduled_job(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION lottery_operations(p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- PL/pgSQL around one query, not SQL: its tables are looked up when it runs, so
    -- the function files load onto a database whose migrations are not all applied.
    RETURN (
    WITH clock AS (
        SELECT c.now, lottery_week_at(c.now) AS open_week FROM lottery_clock(p_now) AS c(now)
    ), weeks AS (
        -- The open week and the seven before it.
        SELECT (c.open_week - 7 * i)::date AS week_start, i = 0 AS is_open
        FROM clock c, generate_series(0, 7) AS i
    ), bucket_participants AS (
        SELECT g.week_start, sum(g.participants)::bigint AS participants
        FROM weeks w JOIN share_rank_bucket_groups g ON g.week_start = w.week_start
        GROUP BY 1
    ), partition_rows AS (
        SELECT p.week_start, s.n_live_tup AS raw_events
        FROM mining_events_partitions p JOIN pg_stat_user_tables s ON s.relid = p.partition::oid
        WHERE p.week_start IS NOT NULL
    ), week_rows AS (
        SELECT jsonb_agg(jsonb_build_object(
                   'weekStart', w.week_start,
                   'open', w.is_open,
                   'drawn', coalesce(d.status = 'completed', false),
                   'participants', coalesce(CASE WHEN d.status = 'completed' THEN d.total_participants END,
                                            b.participants, 0),
                   'shares', coalesce(e.accepted_shares, 0),
                   'unverifiedShares', coalesce(e.unverified_shares, 0),
                   'forgedShares', coalesce(e.forged_shares, 0),
                   'rawEvents', r.raw_events)
               ORDER BY w.week_start DESC) AS weeks
        FROM weeks w
        LEFT JOIN event_weeks e ON e.week_start = w.week_start
        LEFT JOIN lottery_draws d ON d.week_start = lottery_week_start_ts(w.week_start)
        LEFT JOIN bucket_participants b ON b.week_start = w.week_start
        LEFT JOIN partition_rows r ON r.week_start = w.week_start
    ), last_draw AS (
        SELECT d.* FROM lottery_draws d WHERE d.status = 'completed' ORDER BY d.week_start DESC LIMIT 1
    ), due AS (
        -- A week becomes drawable when it closes.
        SELECT count(*) AS weeks, min(w) AS oldest,
               max(c.now) - (lottery_week_start_ts(min(w)) + interval '7 days') AS overdue
        FROM clock c, due_draw_weeks(c.now) AS w
    ), coverage AS (
        SELECT (SELECT k.relkind = 'p' FROM pg_class k WHERE k.oid = to_regclass('public.mining_events')) AS partitioned,
               (SELECT max(p.range_end) FROM mining_events_partitions p WHERE p.week_start IS NOT NULL) AS covered_until,
               (SELECT weeks_ahead FROM event_partition_policy) AS weeks_ahead,
               (SELECT array_agg(x ORDER BY x) FROM clock c, unnest(ARRAY[c.open_week, c.open_week + 7]) AS x
                WHERE NOT EXISTS (SELECT FROM mining_events_partitions p WHERE p.week_start = x)) AS missing
    ), fold AS (
        SELECT l.events, l.seconds, l.folded_upto, l.folded_at FROM event_fold_lag() l
    ), findings AS (
        SELECT CASE WHEN l.seconds > 60 THEN 'critical' ELSE 'warning' END AS severity, 'fold_behind' AS code,
               'mining_events'::text AS subject,
               format('the background fold is %s s and up to %s events behind: is the lottery-fold job running? (SELECT * FROM event_fold_lag(); `lottery fold` folds now)',
                      round(l.seconds::numeric, 1), l.events) AS message
        FROM fold l WHERE l.seconds > 10
        UNION ALL
        SELECT 'critical', 'draw_overdue', d.oldest::text,
               format('the week of %s closed %s ago and has no draw (%s week(s) due): run `lottery draw --due`',
                      d.oldest, date_trunc('second', d.overdue), d.weeks) AS message
        FROM due d WHERE d.overdue > interval '2 hours'
        UNION ALL
        SELECT 'warning', 'draw_due', d.oldest::text,
               format('the week of %s closed %s ago and is not drawn yet (the Monday 00:01 UTC job draws it)',
                      d.oldest, date_trunc('second', d.overdue))
        FROM due d WHERE d.overdue > interval '15 minutes' AND d.overdue <= interval '2 hours'
        UNION ALL
        SELECT 'critical', 'job_failed', j.job,
               format('the last run of %s failed at %s: %s %s', j.job, iso_utc(j.finished_at), j.sqlstate, j.message)
        FROM scheduled_job_runs j WHERE j.status = 'failed'
        UNION ALL
        SELECT 'warning', 'job_stalled', j.job,
               format('%s has been running since %s: stalled, or killed before it could record its end',
                      j.job, iso_utc(j.started_at))
        FROM scheduled_job_runs j, clock c WHERE j.status = 'running' AND j.started_at < c.now - interval '1 hour'
        UNION ALL
        SELECT 'warning', 'partition_job_late', j.job,
               format('%s last succeeded %s (it runs daily at 00:07 UTC)', j.job,
                      coalesce(iso_utc(j.last_success_at), 'never'))
        FROM scheduled_job_runs j, clock c
        WHERE j.job = 'lottery-partitions' AND j.status <> 'running'
          AND coalesce(j.last_success_at, '-infinity') < c.now - interval '26 hours'
        UNION ALL
        SELECT 'critical', 'partitions_behind', array_to_string(v.missing, ','),
               format('mining_events has no weekly partition for the week(s) of %s: events go to mining_events_default; run SELECT maintain_event_partitions();',
                      array_to_string(v.missing, ', '))
        FROM coverage v WHERE v.partitioned AND v.missing IS NOT NULL
        UNION ALL
        SELECT 'warning', 'draw_not_completed', lottery_week_at(d.week_start)::text,
               format('the draw of the week of %s is %s', lottery_week_at(d.week_start), d.status)
        FROM lottery_draws d WHERE d.status <> 'completed'
    )
    SELECT jsonb_build_object(
        'now', iso_utc_precise(c.now),
        'openWeek', c.open_week,
        'weeks', (SELECT weeks FROM week_rows),
        'lastDraw', (SELECT jsonb_build_object(
                         'weekStart', lottery_week_at(l.week_start), 'drawnAt', iso_utc_precise(l.drawn_at),
                         'durationSeconds', l.draw_seconds, 'participants', l.total_participants,
                         'shares', l.total_shares, 'resultsDigest', l.results_digest)
                     FROM last_draw l),
        'due', (SELECT jsonb_build_object(
                    'weeks', d.weeks, 'oldest', d.oldest,
                    'overdueSeconds', coalesce(extract(epoch FROM d.overdue), 0))
                FROM due d),
        'jobs', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                             'job', j.job, 'status', j.status,
                             'startedAt', iso_utc_precise(j.started_at), 'finishedAt', iso_utc_precise(j.finished_at),
                             'lastSuccessAt', iso_utc_precise(j.last_success_at),
                             'lastFailureAt', iso_utc_precise(j.last_failure_at),
                             'runs', j.runs, 'failures', j.failures,
                             'sqlstate', j.sqlstate, 'message', j.message) ORDER BY j.job), '[]'::jsonb)
                 FROM scheduled_job_runs j),
        'fold', (SELECT jsonb_build_object('lagEvents', l.events, 'lagSeconds', l.seconds,
                                           'foldedUpto', l.folded_upto, 'foldedAt', iso_utc_precise(l.folded_at))
                 FROM fold l),
        'partitions', (SELECT jsonb_build_object(
                           'partitioned', coalesce(v.partitioned, false),
                           'coveredUntil', iso_utc(v.covered_until), 'weeksAhead', v.weeks_ahead)
                       FROM coverage v),
        'findings', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                 'severity', f.severity, 'code', f.code, 'subject', f.subject, 'message', f.message)
                             ORDER BY f.severity = 'warning', f.code, f.subject), '[]'::jsonb)
                     FROM findings f),
        'status', coalesce((SELECT CASE WHEN bool_or(f.severity = 'critical') THEN 'critical' ELSE 'warning' END
                            FROM findings f HAVING count(*) > 0), 'ok'))
    FROM clock c);
END
$$;
COMMENT ON FUNCTION lottery_operations(timestamptz) IS
    'What an operator watches, as of p_now (the owner''s alone, see lottery_clock; /metrics and `lottery status --check` read it): weeks (the open week and the 7 before it: participants from the draw once drawn else the rank bucket groups, shares, unverifiedShares and forgedShares from event_weeks, rawEvents of the week''s partition from pg_stat_user_tables), lastDraw (week, drawnAt, durationSeconds, participants, shares, resultsDigest), due (closed weeks with events and no draw, overdueSeconds since the oldest closed), jobs (scheduled_job_runs), fold (the background fold''s lag in events and seconds, event_fold_lag), partitions, findings [{severity warning|critical, code, subject, message}] and status ok|warning|critical. Findings: fold_behind (the fold over 10 s behind; over 60 s, critical), draw_due (a due week over 15 min), draw_overdue (over 2 h, critical), job_failed (critical), job_stalled (running over 1 h), partition_job_late (no success in 26 h), partitions_behind (no partition for the open or next week, critical), draw_not_completed.';
GRANT EXECUTE ON FUNCTION lottery_operations(timestamptz) TO lottery_web;
