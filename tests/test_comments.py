"""\\d+ explains every table, view and column of the project: each has a COMMENT."""


def test_every_relation_and_column_has_a_comment(db):
    missing = db.execute("""
        SELECT c.relname || coalesce('.' || a.attname, '')
        FROM pg_class c
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'u')
          AND NOT c.relispartition
          AND c.relname NOT LIKE '\\_yoyo%' AND c.relname NOT LIKE 'yoyo\\_%'
          AND CASE WHEN a.attname IS NULL THEN obj_description(c.oid, 'pg_class')
                   WHEN c.relkind IN ('v', 'm') THEN 'views: their columns are explained by the view''s comment'
                   ELSE col_description(c.oid, a.attnum) END IS NULL
        ORDER BY 1""").fetchall()
    tables = db.execute("""
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND NOT c.relispartition AND obj_description(c.oid, 'pg_class') IS NULL
          AND c.relname NOT LIKE '\\_yoyo%' AND c.relname NOT LIKE 'yoyo\\_%'""").fetchall()
    assert tables == [] and missing == []
