-- ISO weeks in UTC. A week is the half-open range [Monday 00:00, next Monday 00:00)
-- and is named by its Monday (a date). Nothing here reads the session TimeZone:
-- instants are built from dates and timestamps (without time zone) AT TIME ZONE
-- 'UTC', never by adding an interval to a timestamptz, which counts days in the
-- session's zone (a week with a DST change would be 167 or 169 hours long).

CREATE OR REPLACE FUNCTION lottery_week(p_day date)
RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT date_trunc('week', p_day::timestamp)::date $$;
COMMENT ON FUNCTION lottery_week(date) IS
    'The Monday of the ISO week containing p_day.';
GRANT EXECUTE ON FUNCTION lottery_week(date) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_week_at(p_at timestamptz)
RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT date_trunc('week', p_at AT TIME ZONE 'UTC')::date $$;
COMMENT ON FUNCTION lottery_week_at(timestamptz) IS
    'The Monday of the UTC ISO week containing the instant p_at.';
GRANT EXECUTE ON FUNCTION lottery_week_at(timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION lottery_week_start_ts(p_week date)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT lottery_week(p_week)::timestamp AT TIME ZONE 'UTC' $$;
COMMENT ON FUNCTION lottery_week_start_ts(date) IS
    'Monday 00:00 UTC of the week containing p_week, as an instant.';
GRANT EXECUTE ON FUNCTION lottery_week_start_ts(date) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION get_week_boundaries(p_at timestamptz DEFAULT now())
RETURNS TABLE (week_start timestamptz, week_end timestamptz, iso_year integer, iso_week integer)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT lottery_week_start_ts(w), lottery_week_start_ts(w + 7),
           CASE WHEN isfinite(p_at) THEN extract(isoyear FROM p_at AT TIME ZONE 'UTC')::integer END,
           CASE WHEN isfinite(p_at) THEN extract(week FROM p_at AT TIME ZONE 'UTC')::integer END
    FROM lottery_week_at(p_at) AS w
$$;
COMMENT ON FUNCTION get_week_boundaries(timestamptz) IS
    'The UTC ISO week containing p_at: week_start inclusive, week_end exclusive (next Monday 00:00 UTC), ISO year and week number (NULL for an infinite p_at).';
GRANT EXECUTE ON FUNCTION get_week_boundaries(timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION iso_utc(p_at timestamptz)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE  -- as to_char is
AS $$ SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
COMMENT ON FUNCTION iso_utc(timestamptz) IS
    'ISO 8601 text of p_at in UTC to the second, e.g. 2026-02-16T00:00:00Z (the frontend''s format).';
GRANT EXECUTE ON FUNCTION iso_utc(timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION iso_utc_precise(p_at timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE  -- as to_char is, and not STRICT: so the planner can inline it
AS $$ SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;
COMMENT ON FUNCTION iso_utc_precise(timestamptz) IS
    'ISO 8601 text of p_at in UTC with microseconds, for event times where order matters.';
GRANT EXECUTE ON FUNCTION iso_utc_precise(timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION check_week(p_week date)
RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_week IS NULL OR NOT isfinite(p_week) THEN
        RAISE SQLSTATE 'LTW02' USING
            MESSAGE = format('invalid week %s', coalesce(p_week::text, 'NULL')),
            HINT = 'A week is a finite date (any day of it names it).';
    END IF;
    RETURN lottery_week(p_week);
END
$$;
COMMENT ON FUNCTION check_week(date) IS
    'The Monday of the week of p_week; raises LTW02 for NULL or an infinite date.';
GRANT EXECUTE ON FUNCTION check_week(date) TO lottery_web, lottery_bi;

-- The oldest week anything can name: the one holding the first Bitcoin block.
CREATE OR REPLACE FUNCTION lottery_epoch()
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT date '2009-01-03' $$;
COMMENT ON FUNCTION lottery_epoch() IS
    'The day of the first Bitcoin block, 2009-01-03: no event, week or draw before it is valid.';
GRANT EXECUTE ON FUNCTION lottery_epoch() TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION lottery_clock(p_now timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    -- The clock is the server's for every role but the owner (and superusers):
    -- tests and the owner may ask "as of" another instant, the web, BI and
    -- ingest roles may not. Inside SECURITY DEFINER functions current_user is
    -- the owner, so the caller is the role SET ROLE chose, else the login.
    IF p_now IS NULL OR p_now = now() THEN
        RETURN now();
    END IF;
    IF pg_has_role(coalesce(nullif(current_setting('role'), 'none'), session_user),
                   (SELECT c.relowner FROM pg_class c WHERE c.oid = 'public.lottery_draws'::regclass), 'MEMBER') THEN
        RETURN p_now;
    END IF;
    RAISE SQLSTATE 'LTC01' USING
        MESSAGE = 'only the owner of the lottery may set the clock (p_now)',
        HINT = 'Leave p_now out: every other role uses the server''s clock.';
END
$$;
COMMENT ON FUNCTION lottery_clock(timestamptz) IS
    'The instant a function runs "as of": p_now for the owner of the lottery''s tables (and superusers), now() when p_now is NULL or now(); raises LTC01 when another role passes its own time.';
GRANT EXECUTE ON FUNCTION lottery_clock(timestamptz) TO lottery_web, lottery_bi, lottery_ingest;

CREATE OR REPLACE FUNCTION check_lottery_week(p_week date, p_now timestamptz DEFAULT now())
RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_week IS NULL OR NOT isfinite(p_week) OR p_week < lottery_epoch()
       OR lottery_week(p_week) > lottery_week_at(p_now) + 7 THEN
        RAISE SQLSTATE 'LTW02' USING
            MESSAGE = format('invalid week %s', coalesce(p_week::text, 'NULL')),
            HINT = format('A week is named by a day from %s to the end of next week (%s).',
                          lottery_epoch(), lottery_week_at(p_now) + 13);
    END IF;
    RETURN lottery_week(p_week);
END
$$;
COMMENT ON FUNCTION check_lottery_week(date, timestamptz) IS
    'The Monday of the week of p_week when p_week lies between 2009-01-03 (the first Bitcoin block) and the end of the week after the open one (as of p_now); raises LTW02 otherwise.';
GRANT EXECUTE ON FUNCTION check_lottery_week(date, timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION week_or_open(p_week date, p_now timestamptz DEFAULT now())
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT check_lottery_week(coalesce(p_week, lottery_week_at(p_now)), p_now) $$;
COMMENT ON FUNCTION week_or_open(date, timestamptz) IS
    'The Monday of the week of p_week, or of the open week (the week of p_now) when p_week is NULL: what every week parameter defaults to. Raises LTW02 outside 2009-01-03 .. next week (check_lottery_week).';
GRANT EXECUTE ON FUNCTION week_or_open(date, timestamptz) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION week_end_shown(p_week date)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ((lottery_week(p_week) + 7)::timestamp - interval '1 second') AT TIME ZONE 'UTC' $$;
COMMENT ON FUNCTION week_end_shown(date) IS
    'The end of the week of p_week as the frontend shows it (weekEnd): Sunday 23:59:59 UTC. The week itself runs to the next Monday 00:00 UTC, exclusive.';
GRANT EXECUTE ON FUNCTION week_end_shown(date) TO lottery_web, lottery_bi;

-- Parses the week parameter of URLs: a date (2026-11-18) or an ISO 8601
-- timestamp (a timestamp without offset is read as UTC), to the UTC day it
-- names. The day, not yet its Monday: the function it goes to checks it
-- (check_lottery_week), and the bounds are days. 2009-01-03 names the week of
-- 2008-12-29, which holds the first block; 2008-12-29 itself lies before it.
CREATE OR REPLACE FUNCTION parse_week(p_text text)
RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    v_text text := btrim(p_text);
BEGIN
    BEGIN
        IF v_text ~ '^\d{4}-\d{2}-\d{2}$' THEN
            RETURN v_text::date;
        ELSIF v_text ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$' THEN
            RETURN (v_text::timestamptz AT TIME ZONE 'UTC')::date;
        ELSIF v_text ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$' THEN
            RETURN v_text::timestamp::date;
        END IF;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format
                   OR invalid_time_zone_displacement_value THEN
        NULL;  -- well-shaped but impossible, e.g. 2026-02-30: reported below
    END;
    RAISE SQLSTATE 'LTW02' USING
        MESSAGE = format('invalid week %L', left(p_text, 64)),
        HINT = 'Use a date such as 2026-11-16 or an ISO 8601 timestamp; any day of the week names that week.';
END
$$;
COMMENT ON FUNCTION parse_week(text) IS
    'The UTC day named by a date or ISO 8601 timestamp text (no offset means UTC), which names its week; every function taking a week checks the day and normalises it to its Monday. Raises LTW02 on anything else.';
GRANT EXECUTE ON FUNCTION parse_week(text) TO lottery_web, lottery_bi;

CREATE OR REPLACE FUNCTION next_draw_at(p_now timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_now < this_monday THEN this_monday ELSE next_monday END
    FROM lottery_week_at(p_now) AS w,
         LATERAL (SELECT (w::timestamp + interval '1 minute') AT TIME ZONE 'UTC',
                         ((w + 7)::timestamp + interval '1 minute') AT TIME ZONE 'UTC') AS t(this_monday, next_monday)
$$;
COMMENT ON FUNCTION next_draw_at(timestamptz) IS
    'The next scheduled draw strictly after p_now: Monday 00:01 UTC.';
GRANT EXECUTE ON FUNCTION next_draw_at(timestamptz) TO lottery_web, lottery_bi;
