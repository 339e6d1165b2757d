-- Which binding fits this database, read from the catalog. db/apply.py runs this
-- query before any migration, so that it sees the database as it was found.
--
-- 'platform'   every table, column and unique key below is there: the platform's
--              users, xp_ledger, user_gamification and notifications.
-- 'standalone' none of the platform's marks is there (xp_ledger, user_gamification,
--              users.btc_address): this project's own minimal
--              users, xp_transactions and notifications are used, created when absent.
-- NULL         some marks but not all of the platform: `missing` says what lacks.
--
-- One row: binding, found (the tables present, with their user key), missing.
WITH wanted (tbl, col, typ, uniq, mark) AS (VALUES
    ('users',             'id',              'bigint', false, false),
    ('users',             'btc_address',     NULL,     true,  true),
    ('users',             'display_name',    NULL,     false, false),
    ('xp_ledger',         'user_id',         'bigint', false, true),
    ('xp_ledger',         'amount',          NULL,     false, true),
    ('xp_ledger',         'source',          NULL,     false, true),
    ('xp_ledger',         'source_id',       NULL,     false, true),
    ('xp_ledger',         'description',     NULL,     false, true),
    ('xp_ledger',         'idempotency_key', NULL,     true,  true),
    ('user_gamification', 'user_id',         'bigint', true,  true),
    ('user_gamification', 'total_xp',        NULL,     false, true),
    ('user_gamification', 'updated_at',      NULL,     false, true),
    ('notifications',     'user_id',         'bigint', false, false),
    ('notifications',     'type',            NULL,     false, false),
    ('notifications',     'subtype',         NULL,     false, false),  -- the standalone table has one too
    ('notifications',     'title',           NULL,     false, false),
    ('notifications',     'description',     NULL,     false, false),
    ('notifications',     'action_url',      NULL,     false, false),
    ('notifications',     'action_label',    NULL,     false, false)
), checked AS (
    SELECT w.tbl, w.col, w.typ, w.uniq, w.mark,
           a.attname IS NOT NULL AS present,
           format_type(a.atttypid, NULL) AS actual,
           -- ON CONFLICT (col) needs a unique index on exactly that column, not partial.
           EXISTS (SELECT FROM pg_index i
                   WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indpred IS NULL
                     AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum) AS is_unique
    FROM wanted w
    LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(format('public.%I', w.tbl))
                            AND a.attname = w.col AND a.attnum > 0 AND NOT a.attisdropped
), judged AS (
    SELECT *, present AND (typ IS NULL OR actual = typ) AND (NOT uniq OR is_unique) AS ok
    FROM checked
), tables (tbl, key, ord) AS (VALUES
    ('users', 'id', 1), ('xp_ledger', 'user_id', 2), ('user_gamification', 'user_id', 3),
    ('notifications', 'user_id', 4), ('xp_transactions', 'user_id', 5)
), found AS (
    SELECT string_agg(format('%s(%s %s)', t.tbl, t.key, format_type(a.atttypid, NULL)), ', ' ORDER BY t.ord) AS found
    FROM tables t
    JOIN pg_attribute a ON a.attrelid = to_regclass(format('public.%I', t.tbl))
                       AND a.attname = t.key AND NOT a.attisdropped
)
SELECT CASE WHEN bool_and(ok) THEN 'platform'
            WHEN NOT bool_or(present AND mark) THEN 'standalone' END AS binding,
       coalesce((SELECT found FROM found), 'none of users, xp_ledger, user_gamification, notifications') AS found,
       string_agg(format('%s.%s', tbl, col)
                  || CASE WHEN NOT present THEN ''
                          WHEN typ IS NOT NULL AND actual <> typ THEN format(' (%s, not %s)', actual, typ)
                          ELSE ' (not unique)' END, ', ') FILTER (WHERE NOT ok) AS missing
FROM judged
