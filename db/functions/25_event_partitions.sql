-- Weekly partitions of mining_events (migration 0005): created ahead, expired
-- after the draw, both driven by the one row of event_partition_policy. pg_cron
-- runs maintain_event_partitions() daily (db/apply.py). On a mining_events that
-- is not partitioned (a TimescaleDB hypertable) every function here does nothing.
-- Partitions are private to the owner: ingest reaches them only through the parent.

CREATE OR REPLACE FUNCTION event_partition_name(p_week date)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- as to_char is
AS $$
    -- BC years would otherwise share a name with the AD year of the same digits.
    SELECT 'mining_events_p' || to_char(w, 'YYYYMMDD') || CASE WHEN w < '0001-01-01' THEN '_bc' ELSE '' END
    FROM check_week(p_week) AS w
$$;
COMMENT ON FUNCTION event_partition_name(date) IS
    'Name of the mining_events partition of the week containing p_week: mining_events_p + its Monday as YYYYMMDD. Raises LTW02 for NULL or an infinite date.';

-- Bounds read back from the catalog text, as the current session prints and
-- parses timestamps (a round trip). to_regclass: a view must not depend on
-- mining_events, or migrations could not replace the table.
CREATE OR REPLACE VIEW mining_events_partitions AS
SELECT p.partition, p.is_default, p.range_start, p.range_end,
       CASE WHEN p.range_start = lottery_week_start_ts(lottery_week_at(p.range_start))
             AND p.range_end = lottery_week_start_ts(lottery_week_at(p.range_start) + 7)
            THEN lottery_week_at(p.range_start) END AS week_start
FROM (SELECT c.oid::regclass AS partition,
             b.bound = 'DEFAULT' AS is_default,
             CASE WHEN r[1] = 'MINVALUE' THEN '-infinity'::timestamptz ELSE btrim(r[1], '''')::timestamptz END AS range_start,
             CASE WHEN r[2] = 'MAXVALUE' THEN 'infinity'::timestamptz ELSE btrim(r[2], '''')::timestamptz END AS range_end
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid AND c.relispartition
      CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS b(bound)
      LEFT JOIN LATERAL regexp_match(b.bound, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS r ON true
      WHERE i.inhparent = to_regclass('public.mining_events')) AS p;
COMMENT ON VIEW mining_events_partitions IS
    'The partitions of mining_events: the DEFAULT one, and each range partition with its bounds; week_start is set when the range is exactly one ISO week (UTC). Empty when mining_events is not partitioned.';

CREATE OR REPLACE FUNCTION ensure_event_partitions(p_now timestamptz DEFAULT now())
RETURNS TABLE (partition_name text, week_start date, moved_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_first date := check_week(lottery_week_at(p_now));
    -- No policy row means the column defaults.
    v_ahead integer := coalesce((SELECT p.weeks_ahead FROM event_partition_policy p), 4);
    v_default regclass;
    v_columns text;
    v_week date;
    v_from timestamptz;
    v_to timestamptz;
    v_locked boolean := false;
BEGIN
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('public.mining_events')) IS DISTINCT FROM 'p' THEN
        RETURN;
    END IF;
    -- One maintainer at a time (self-conflicting); ingest and reads go on.
    LOCK TABLE mining_events IN SHARE UPDATE EXCLUSIVE MODE;
    v_default := (SELECT p.partition FROM mining_events_partitions p WHERE p.is_default);
    IF v_default IS NULL THEN
        CREATE TABLE mining_events_default PARTITION OF mining_events DEFAULT;
        v_default := to_regclass('mining_events_default');
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_columns
    FROM pg_attribute a
    WHERE a.attrelid = 'mining_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped;

    FOR v_week IN SELECT v_first + 7 * i FROM generate_series(0, v_ahead) AS i LOOP
        v_from := lottery_week_start_ts(v_week);
        v_to := lottery_week_start_ts(v_week + 7);  -- not v_from + 7 days: those count in the session's zone
        CONTINUE WHEN EXISTS (SELECT FROM mining_events_partitions p
                              WHERE NOT p.is_default AND p.range_start < v_to AND p.range_end > v_from);
        IF NOT v_locked THEN
            -- Held until commit: no insert reaches the default while its rows of
            -- the week move out, and ATTACH checks the default under this lock anyway.
            EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_default);
            v_locked := true;
        END IF;
        -- Built beside the parent and attached: CREATE ... PARTITION OF would
        -- fail when the default already holds rows of the week.
        partition_name := event_partition_name(v_week);
        week_start := v_week;
        EXECUTE format('CREATE TABLE %I (LIKE mining_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING STORAGE INCLUDING COMPRESSION)', partition_name);
        -- Straight into the new table, not through the parent: its aggregate
        -- trigger does not see these rows again.
        EXECUTE format('WITH moved AS (DELETE FROM %1$s WHERE ts >= $1 AND ts < $2 RETURNING %2$s)'
                       ' INSERT INTO %3$I (%2$s) SELECT %2$s FROM moved', v_default, v_columns, partition_name)
            USING v_from, v_to;
        GET DIAGNOSTICS moved_rows = ROW_COUNT;
        EXECUTE format('ALTER TABLE mining_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       partition_name, v_from, v_to);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ensure_event_partitions(timestamptz) IS
    'Creates the missing weekly partitions of mining_events from the week of p_now through event_partition_policy.weeks_ahead weeks after it (and the DEFAULT partition if missing), moving rows of those weeks out of the DEFAULT partition; returns each partition created and the rows it received. Weeks already covered by any partition are skipped. Does nothing when mining_events is not partitioned. Raises LTW02 for a NULL or infinite p_now.';
REVOKE EXECUTE ON FUNCTION ensure_event_partitions(timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION drop_expired_event_partitions(p_now timestamptz DEFAULT now())
RETURNS TABLE (partition_name text, week_start date)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_retention integer := (SELECT p.retention_weeks FROM event_partition_policy p);
    v_names text[];
    v_weeks date[];
    v_name text;
    v_drawn boolean;
    v_empty boolean;
    v_pending boolean;
BEGIN
    PERFORM check_week(lottery_week_at(p_now));
    IF v_retention IS NULL
       OR (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('public.mining_events')) IS DISTINCT FROM 'p' THEN
        RETURN;
    END IF;
    -- One maintainer at a time, as in ensure_event_partitions: two drops
    -- looking at the same partition would deadlock on the parent.
    LOCK TABLE mining_events IN SHARE UPDATE EXCLUSIVE MODE;
    -- Weekly partitions only (never the default or a range made by hand), whose
    -- week ended more than retention_weeks before p_now. Collected first: the
    -- drops below change the catalog the view reads.
    -- Names as text, taken now: a regclass kept in a variable is only an OID.
    SELECT array_agg(p.partition::text ORDER BY p.week_start), array_agg(p.week_start ORDER BY p.week_start)
    INTO v_names, v_weeks
    FROM mining_events_partitions p
    WHERE p.week_start IS NOT NULL
      AND p.range_end + make_interval(hours => 168 * v_retention) < p_now;  -- whole UTC weeks
    FOR i IN 1 .. coalesce(array_length(v_names, 1), 0) LOOP
        v_name := v_names[i];
        -- Raw events go only after the week's draw is completed; an empty
        -- partition loses nothing (a week without events is never drawn).
        v_drawn := EXISTS (SELECT FROM lottery_draws d
                           WHERE d.week_start = lottery_week_start_ts(v_weeks[i]) AND d.status = 'completed');
        -- Late events the fold has not reached yet stay until it has.
        EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE seq > $1)', v_name)
            INTO v_pending USING (SELECT f.folded_upto FROM event_fold f);
        CONTINUE WHEN v_pending;
        IF NOT v_drawn THEN
            EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', v_name) INTO v_empty;
            CONTINUE WHEN NOT v_empty;
        END IF;
        -- Parent first, as inserts lock them; then no insert is in flight into
        -- the partition, and a second look at it is final.
        LOCK TABLE mining_events IN ACCESS EXCLUSIVE MODE;
        IF NOT v_drawn THEN
            EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', v_name) INTO v_empty;
            CONTINUE WHEN NOT v_empty;
        END IF;
        partition_name := v_name;
        week_start := v_weeks[i];
        EXECUTE format('DROP TABLE %s', v_name);
        UPDATE event_weeks e SET raw_events_dropped_at = now()
        WHERE e.week_start = v_weeks[i] AND e.raw_events_dropped_at IS NULL;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION drop_expired_event_partitions(timestamptz) IS
    'Drops the weekly partitions of mining_events whose week ended more than event_partition_policy.retention_weeks weeks before p_now and whose draw is completed (or that hold no row), and stamps event_weeks.raw_events_dropped_at; returns what it dropped. Keeps everything when retention_weeks is NULL or mining_events is not partitioned. Raises LTW02 for a NULL or infinite p_now.';
REVOKE EXECUTE ON FUNCTION drop_expired_event_partitions(timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION maintain_event_partitions(p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_created jsonb;
    v_dropped jsonb;
BEGIN
    -- Drop first: its lock on the parent then comes before ensure's lock on the
    -- default partition, the order inserts take them in. The other way round,
    -- an insert routed to the default could deadlock with this transaction.
    SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.week_start), '[]'::jsonb) INTO v_dropped
    FROM drop_expired_event_partitions(p_now) d;
    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.week_start), '[]'::jsonb) INTO v_created
    FROM ensure_event_partitions(p_now) e;
    RETURN jsonb_build_object(
        'partitioned', (SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass('public.mining_events')),
        'created', v_created,
        'dropped', v_dropped);
END
$$;
COMMENT ON FUNCTION maintain_event_partitions(timestamptz) IS
    'Daily partition upkeep of mining_events (pg_cron job lottery-partitions): drop_expired_event_partitions(p_now), then ensure_event_partitions(p_now), in one transaction. Returns {"partitioned", "created": [{partition_name, week_start, moved_rows}], "dropped": [{partition_name, week_start}]}.';
REVOKE EXECUTE ON FUNCTION maintain_event_partitions(timestamptz) FROM PUBLIC;
