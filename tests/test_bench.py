"""bench/: the house rules of the benchmark modules, the two share generators, and the
collector-pattern measurement (its figures are not judged here, only that it
aggregates every share and leaves mining_events' triggers as it found them)."""

import ast
import math
import random
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from bench.collector import BARE_TABLE, FLOOR_TABLE, measure_collector
from bench.common import percentile
from bench.fold import PLATFORM_BARE, measure_fold
from bench.scale import generate_participants
from bench.shares import POOL_DIFFICULTIES, install_sql_generator, random_share, random_ts
from tests.helpers import utc

BENCH = Path(__file__).resolve().parent.parent / "bench"
MODULES = sorted(BENCH.glob("*.py"))
COLLECTOR_KEYS = {"user", "worker", "client_id", "diff", "sdiff", "accepted", "reject_reason", "ip"}


def bench_imports(tree: ast.Module) -> set[str]:
    """The bench.* modules a module imports."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench."):
            names.add(node.module.removeprefix("bench."))
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("bench.") for a in node.names if a.name.startswith("bench."))
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_bench_module_imports_only_at_its_top_and_never_patches_sys_path(path):
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    late = [node.lineno for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]
    assert late == [], f"{path.name}: imports inside functions or blocks at lines {late}"
    patches = [node.lineno for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr == "path"
               and isinstance(node.value, ast.Name) and node.value.id == "sys"]
    assert patches == [], f"{path.name}: sys.path at lines {patches}"
    assert len(path.read_text().splitlines()) <= 500


def test_bench_modules_import_each_other_without_a_cycle():
    graph = {p.stem: bench_imports(ast.parse(p.read_text())) for p in MODULES}
    done, visiting = set(), []

    def visit(name):
        assert name not in visiting, f"import cycle: {' -> '.join(visiting + [name])}"
        if name in done:
            return
        visiting.append(name)
        for dep in graph.get(name, ()):
            visit(dep)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)
    # Everything shared comes from common, which imports no other bench module.
    assert graph["common"] == set()
    assert "common" in graph["run"] and "common" in graph["soak"] and "common" in graph["http"]


def test_percentile_is_the_nearest_rank():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert [percentile(values, q) for q in (1, 20, 21, 50, 99, 100)] == [1.0, 1.0, 2.0, 3.0, 5.0, 5.0]
    assert percentile(list(range(1, 101)), 99) == 99
    assert math.isnan(percentile([], 50))


def test_python_share_generator_gives_honest_collector_payloads(db):
    rng = random.Random(7)
    start = utc("2026-11-16 00:00")
    shares = [random_share(rng, f"u{i % 13}", rng.choice(POOL_DIFFICULTIES),
                           random_ts(rng, start, utc("2026-11-23 00:00")), rejected=0.2) for i in range(300)]
    assert all(s.sdiff >= s.diff for s in shares)
    assert all(start <= s.ts < utc("2026-11-23 00:00") for s in shares)
    assert {s.accepted for s in shares} == {True, False}
    assert all(bool(s.reject_reason) is not s.accepted for s in shares)
    assert all(set(s.payload(with_hash=False)) == COLLECTOR_KEYS for s in shares)
    assert all(set(s.payload()) == COLLECTOR_KEYS | {"hash"} for s in shares)
    assert all(s.worker.startswith(s.user + ".") for s in shares)
    # The server agrees: each hash proves its sdiff, and every share is well-formed.
    problems = db.execute("""
        SELECT count(*) FILTER (WHERE abs(share_difficulty_from_hash(p->>'hash') / (p->>'sdiff')::float8 - 1) > 1e-9),
               count(*) FILTER (WHERE share_is_forged((p->>'sdiff')::float8, p->>'hash')),
               count(*) FILTER (WHERE share_event_problem('share_submitted', p) IS NOT NULL)
        FROM unnest(%s::jsonb[]) AS p""", ([Jsonb(s.payload()) for s in shares],)).fetchone()
    assert problems == (0, 0, 0)


def test_sql_share_generator_gives_honest_shares_of_the_participants(db):
    install_sql_generator(db)
    got = db.execute("""
        SELECT count(*), min((payload->>'sdiff')::float8),
               count(*) FILTER (WHERE share_is_forged((payload->>'sdiff')::float8, payload->>'hash')),
               count(*) FILTER (WHERE abs(share_difficulty_from_hash(payload->>'hash')
                                          / (payload->>'sdiff')::float8 - 1) > 1e-9),
               count(DISTINCT payload->>'user') FILTER (WHERE payload->>'user' !~ '^miner([1-9]|1[0-9]|20)$'),
               count(*) FILTER (WHERE NOT (payload->>'accepted')::boolean),
               count(*) FILTER (WHERE lottery_week_at(ts) <> '2026-11-16')
        FROM pg_temp.bench_events(2000, 20, '2026-11-18')""").fetchone()
    assert got[0] == 2000 and got[2:] == (0, 0, 0, 40, 0)
    assert got[1] >= 1000  # the participants' pool difficulty


def triggers(conn):
    return sorted(d for (d,) in conn.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger"
                                             " WHERE tgrelid = 'mining_events'::regclass AND NOT tgisinternal"))


def test_collector_measurement_aggregates_every_share_on_every_path(fresh_db):
    conn = fresh_db
    week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
    generate_participants(conn, week, 40, 20)
    before = triggers(conn)
    rows = []
    measure_collector(conn, rows, users=40, shares=300, week=week, batch=120)
    # bare, floor and project (folded after each flush), with and without the hash, each against
    # the same run's bare copy, project against its floor too.
    assert len(rows) == 6
    assert all(figure.endswith(" shares/s") for _, figure, _ in rows)
    assert [ref.startswith("bare ") for _, _, ref in rows] == [False, True, True] * 2
    assert ["; floor: " in ref for _, _, ref in rows] == [False, False, True] * 2
    assert not any("aggregates gained" in ref for _, _, ref in rows)   # said only when some went missing
    assert triggers(conn) == before
    assert conn.execute("SELECT to_regclass(%s), to_regclass(%s), to_regclass('collector_floor_counts')",
                        (BARE_TABLE, FLOOR_TABLE)).fetchone() == (None, None, None)
    # Two loads of 300 into mining_events, each row with the collector's source column.
    assert conn.execute("SELECT count(*), count(*) FILTER (WHERE source = 'hosted') FROM mining_events"
                        ).fetchone() == (600, 600)


def test_fold_measurement_reports_every_figure_and_leaves_the_events_folded(fresh_db, fresh_db_url):
    conn = fresh_db
    week = conn.execute("SELECT lottery_week_at(now())").fetchone()[0]
    generate_participants(conn, week, 40, 20)
    conn.commit()
    rows = []
    measure_fold(conn, fresh_db_url, rows, users=40, week=week, copy_events=400, collector_shares=300,
                 collector_batch=100, sustain_seconds=1, tail_seconds=1)
    labels = [label for label, _, _ in rows]
    # The writer beside the fold and its catch-up, both COPY forms (bare, then written and
    # caught up), throughput, judging, lag, and own weekly-data and live rank over a tail.
    assert any("judging per share" in label for label in labels), labels
    assert any("throughput on one core" in label for label in labels)
    assert any(label.startswith("fold: lag during") for label in labels)
    assert sum(label.startswith("fold: own ") for label in labels) == 2
    assert conn.execute("SELECT to_regclass(%s) IS NULL", (PLATFORM_BARE,)).fetchone()[0]
    assert conn.execute("SELECT events FROM event_fold_lag()").fetchone()[0] == 0
