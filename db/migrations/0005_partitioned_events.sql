-- depends: 0004_rank_buckets_and_event_facts
-- Raw events partitioned by ISO week (UTC), so that old weeks can be dropped
-- whole instead of DELETEd row by row. Only the plain table this project
-- creates (0001) is converted; a TimescaleDB hypertable or an already
-- partitioned table is left exactly as it is. Partitions are then created
-- ahead and expired by maintain_event_partitions() (db/functions/25_event_partitions.sql),
-- which pg_cron runs daily.

-- One row: how far ahead partitions are created and how long raw events are kept.
CREATE TABLE event_partition_policy (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    weeks_ahead      integer NOT NULL DEFAULT 4 CHECK (weeks_ahead BETWEEN 0 AND 52),
    retention_weeks  integer CHECK (retention_weeks BETWEEN 0 AND 5200)
);
INSERT INTO event_partition_policy DEFAULT VALUES;
COMMENT ON TABLE event_partition_policy IS
    'Weekly partitioning of mining_events (one row). Change it with UPDATE; the daily maintain_event_partitions() job applies it.';
COMMENT ON COLUMN event_partition_policy.weeks_ahead IS
    'Partitions exist for the current ISO week and this many weeks after it. Events of a later week land in the DEFAULT partition and move to their own once it is created.';
COMMENT ON COLUMN event_partition_policy.retention_weeks IS
    'Drop a week''s raw events (its partition) once the week ended more than this many weeks ago and its draw is completed. NULL: keep raw events forever.';

-- Set when a week's raw events are dropped: its aggregates can no longer be rebuilt.
ALTER TABLE event_weeks ADD COLUMN raw_events_dropped_at timestamptz;
COMMENT ON COLUMN event_weeks.raw_events_dropped_at IS
    'When drop_expired_event_partitions() dropped this week''s raw events; NULL while they are kept. rebuild_share_aggregates() must leave such a week''s aggregates alone.';

DO $$
DECLARE
    v_old regclass := to_regclass('public.mining_events');
    v_hypertable boolean := false;
    v_reason text;
    v_indexes text[];
    v_triggers text[];
    v_acl aclitem[];
    v_owner oid;
    v_comment text;
    v_columns text;
    v_week date;
    v_ddl text;
BEGIN
    IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
        EXECUTE $q$SELECT EXISTS (SELECT FROM timescaledb_information.hypertables
                                 WHERE hypertable_name = 'mining_events')$q$ INTO v_hypertable;
    END IF;
    IF v_old IS NULL OR v_hypertable
       OR (SELECT relkind FROM pg_class WHERE oid = v_old) = 'p' THEN
        RETURN;
    END IF;

    -- Convert only what can be rebuilt faithfully; anything else stays as it is
    -- (unpartitioned, and the partition functions leave it alone).
    SELECT CASE
        WHEN c.relkind <> 'r' THEN 'it is not a plain table'
        WHEN c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
            THEN 'it is owned by another role'
        WHEN c.relispartition OR c.relhassubclass
             OR EXISTS (SELECT FROM pg_inherits WHERE inhrelid = v_old)
            THEN 'it takes part in inheritance or partitioning'
        WHEN NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = v_old AND attname = 'ts'
                         AND atttypid = 'timestamptz'::regtype AND NOT attisdropped)
            THEN 'it has no timestamptz column ts'
        WHEN EXISTS (SELECT FROM pg_attribute WHERE attrelid = v_old AND attnum > 0 AND NOT attisdropped
                     AND (attidentity <> '' OR attgenerated <> '' OR attacl IS NOT NULL))
            THEN 'it has identity, generated or column-privileged columns'
        WHEN EXISTS (SELECT FROM pg_constraint WHERE (conrelid = v_old AND contype <> 'c') OR confrelid = v_old)
            THEN 'it has key, unique, exclusion or foreign key constraints'
        WHEN EXISTS (SELECT FROM pg_index WHERE indrelid = v_old AND indisunique)
            THEN 'it has a unique index'
        WHEN EXISTS (SELECT FROM pg_depend
                     WHERE (refclassid = 'pg_class'::regclass AND refobjid = v_old AND deptype = 'n')
                        OR (refclassid = 'pg_type'::regclass AND refobjid = c.reltype AND deptype = 'n'))
            THEN 'other objects (views, functions, defaults) depend on it'
        WHEN EXISTS (SELECT FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND d.classid = 'pg_class'::regclass
                     WHERE d.refobjid = v_old AND s.relkind = 'S')
            THEN 'it owns a sequence'
        WHEN c.relrowsecurity OR EXISTS (SELECT FROM pg_policy WHERE polrelid = v_old)
            THEN 'it has row-level security'
        WHEN EXISTS (SELECT FROM pg_publication_rel WHERE prrelid = v_old)
            THEN 'it is in a publication'
        WHEN EXISTS (SELECT FROM pg_rewrite WHERE ev_class = v_old)
            THEN 'it has rules'
    END
    INTO v_reason
    FROM pg_class c WHERE c.oid = v_old;
    IF v_reason IS NOT NULL THEN
        RAISE NOTICE 'mining_events is left unpartitioned: %', v_reason
            USING HINT = 'maintain_event_partitions() does nothing on it; partition it by hand if wanted.';
        RETURN;
    END IF;

    -- What the new table must get back, read before the rename so that the
    -- definitions name public.mining_events.
    SELECT array_agg(pg_get_indexdef(indexrelid) ORDER BY indexrelid) INTO v_indexes
    FROM pg_index WHERE indrelid = v_old;
    SELECT array_agg(pg_get_triggerdef(oid) ORDER BY tgname) INTO v_triggers
    FROM pg_trigger WHERE tgrelid = v_old AND NOT tgisinternal;
    SELECT relacl, relowner, obj_description(v_old, 'pg_class') INTO v_acl, v_owner, v_comment
    FROM pg_class WHERE oid = v_old;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_columns
    FROM pg_attribute WHERE attrelid = v_old AND attnum > 0 AND NOT attisdropped;

    ALTER TABLE public.mining_events RENAME TO mining_events_unpartitioned;
    -- LIKE keeps the columns as they are: ours, plus any a pre-existing table had.
    CREATE TABLE public.mining_events (
        LIKE public.mining_events_unpartitioned
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
        INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING STATISTICS
    ) PARTITION BY RANGE (ts);
    IF v_comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE public.mining_events IS %L', v_comment);
    END IF;

    -- An insert never fails for lack of a partition: NULL, infinite and
    -- not-yet-partitioned times land here.
    CREATE TABLE public.mining_events_default PARTITION OF public.mining_events DEFAULT;

    -- Every week holding rows (junk years outside 1-9999 stay in the default),
    -- then the current week and weeks_ahead more. The name and bounds are
    -- event_partition_name() and the ISO week, which 25_event_partitions.sql
    -- defines after the migrations run.
    FOR v_week IN
        SELECT DISTINCT date_trunc('week', ts AT TIME ZONE 'UTC')::date
        FROM public.mining_events_unpartitioned
        WHERE ts >= '0001-01-01 00:00+00' AND ts < '9999-12-01 00:00+00'
        UNION
        SELECT date_trunc('week', now() AT TIME ZONE 'UTC')::date + 7 * i
        FROM generate_series(0, (SELECT weeks_ahead FROM event_partition_policy)) AS i
        ORDER BY 1
    LOOP
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.mining_events FOR VALUES FROM (%L) TO (%L)',
                       'mining_events_p' || to_char(v_week, 'YYYYMMDD')
                           || CASE WHEN v_week < '0001-01-01' THEN '_bc' ELSE '' END,
                       v_week::timestamp AT TIME ZONE 'UTC',
                       (v_week + 7)::timestamp AT TIME ZONE 'UTC');
    END LOOP;

    -- The new table has no trigger yet: moving the rows aggregates nothing twice.
    EXECUTE format('INSERT INTO public.mining_events (%1$s) SELECT %1$s FROM public.mining_events_unpartitioned',
                   v_columns);
    -- No CASCADE: anything unforeseen depending on it stops the migration.
    DROP TABLE public.mining_events_unpartitioned;

    FOREACH v_ddl IN ARRAY coalesce(v_indexes, '{}') LOOP
        EXECUTE v_ddl;
    END LOOP;
    -- The aggregate trigger comes back in this transaction: ingest that runs
    -- across the upgrade is never left unaggregated until the functions reload.
    FOREACH v_ddl IN ARRAY coalesce(v_triggers, '{}') LOOP
        EXECUTE v_ddl;
    END LOOP;
    -- Table privileges as they were (0002: INSERT to lottery_ingest).
    FOR v_ddl IN
        SELECT format('GRANT %s ON public.mining_events TO %s%s', a.privilege_type,
                      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
        FROM aclexplode(coalesce(v_acl, '{}')) AS a
        WHERE a.grantee <> v_owner
    LOOP
        EXECUTE v_ddl;
    END LOOP;
END
$$;
