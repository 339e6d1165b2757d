"""plpgsql_check's static check over every PL/pgSQL function of the schema, against
one allow-list (db/plpgsql_check_allow.tsv); and the coverage report's arithmetic
checked against plpgsql_check's own coverage functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.helpers import add_shares
from tests.plpgsql_coverage import Profile, Statement, branch_coverage, statement_coverage

ALLOW_FILE = Path(__file__).resolve().parent.parent / "db" / "plpgsql_check_allow.tsv"

# Every kind of finding, errors included (fatal_errors off: report them all, not the first).
CHECK_OPTIONS = sql.SQL("fatal_errors := false, other_warnings := true, extra_warnings := true, "
                        "performance_warnings := true, security_warnings := true, "
                        "compatibility_warnings := true")

# Trigger functions that a freshly applied schema does not attach to any table, and the
# table to check them against (a trigger function is checked for one relation).
UNATTACHED_TRIGGERS = {
    # On each session's temporary share queue, which no session has here; it reads no row.
    "fold_shares_at_commit": "share_replay",
}

PLPGSQL_FUNCTIONS = """
    SELECT p.oid, p.proname, p.oid::regprocedure::text, p.prorettype = 'trigger'::regtype,
           t.tgrelid::regclass::text, t.tgoldtable, t.tgnewtable, p.prosrc,
           p.prorettype = 'void'::regtype OR p.proretset
             OR p.proargmodes && ARRAY['o', 'b', 't']::"char"[] AS may_fall_off_the_end
    FROM pg_proc p
    JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
    LEFT JOIN pg_trigger t ON t.tgfoid = p.oid AND NOT t.tgisinternal
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 3, 5"""


@dataclass(frozen=True)
class Allowed:
    function: str
    level: str
    pattern: re.Pattern
    reason: str
    line: int


@dataclass(frozen=True)
class Finding:
    function: str      # name
    where: str         # signature, and the trigger relation
    level: str
    text: str          # "SQLSTATE message [detail]"
    lineno: int | None

    def __str__(self) -> str:
        return f"{self.where} line {self.lineno}: {self.level}: {self.text}"


def load_allow_list() -> list[Allowed]:
    entries = []
    for number, line in enumerate(ALLOW_FILE.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        assert len(fields) == 4 and all(f.strip() for f in fields), \
            f"{ALLOW_FILE.name}:{number}: want 4 non-empty tab-separated fields (function, level, regex, reason)"
        function, level, pattern, reason = (f.strip() for f in fields)
        entries.append(Allowed(function, level, re.compile(pattern), reason, number))
    return entries


@pytest.fixture
def plpgsql_check(db) -> sql.Identifier:
    """The schema of the plpgsql_check extension, installed inside db's rolled-back transaction."""
    row = db.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                     " WHERE e.extname = 'plpgsql_check'").fetchone()
    if row:
        return sql.Identifier(row[0])
    db.execute("CREATE SCHEMA plpgsql_check_test")
    db.execute("CREATE EXTENSION plpgsql_check SCHEMA plpgsql_check_test")
    return sql.Identifier("plpgsql_check_test")


@pytest.fixture
def findings(db, plpgsql_check) -> list[Finding]:
    check = sql.SQL("SELECT level, sqlstate, message, detail, lineno"
                    " FROM {}.plpgsql_check_function_tb(%s::oid::regprocedure, %s::regclass, {},"
                    " oldtable := %s, newtable := %s)").format(plpgsql_check, CHECK_OPTIONS)
    targets = db.execute(PLPGSQL_FUNCTIONS).fetchall()
    assert targets, "no PL/pgSQL function in the schema"
    found = []
    for oid, name, signature, is_trigger, relation, oldtable, newtable, *_ in targets:
        if is_trigger and relation is None:
            relation = UNATTACHED_TRIGGERS.get(name)
            if relation is None:
                found.append(Finding(name, signature, "setup", "a trigger function on no table: add it to "
                                     "UNATTACHED_TRIGGERS in tests/test_plpgsql_check.py", None))
                continue
        where = f"{signature} on {relation}" if is_trigger else signature
        for level, sqlstate, message, detail, lineno in db.execute(
                check, (oid, relation or 0, oldtable, newtable)).fetchall():
            text = f"{sqlstate} {message}" + (f" [{detail}]" if detail else "")
            found.append(Finding(name, where, level, text, lineno))
    return found


def allowed_by(finding: Finding, entries: list[Allowed]) -> Allowed | None:
    for entry in entries:
        if entry.function == finding.function and entry.level == finding.level and entry.pattern.search(finding.text):
            return entry
    return None


def test_every_plpgsql_function_passes_plpgsql_check(findings):
    entries = load_allow_list()
    unlisted = [str(f) for f in findings if allowed_by(f, entries) is None]
    assert not unlisted, ("plpgsql_check findings not in db/plpgsql_check_allow.tsv "
                          "(fix them, or list them there with a reason):\n  " + "\n  ".join(unlisted))


def test_every_allow_list_entry_still_matches_a_finding(findings):
    entries = load_allow_list()
    used = {entry.line for entry in (allowed_by(f, entries) for f in findings) if entry}
    stale = [f"line {e.line}: {e.function} {e.level} {e.pattern.pattern}" for e in entries if e.line not in used]
    assert not stale, "db/plpgsql_check_allow.tsv lists findings that are gone; delete:\n  " + "\n  ".join(stale)


def test_no_immutable_plpgsql_function_calls_a_stable_or_volatile_project_function(db, plpgsql_check):
    """The PL/pgSQL side of tests/test_apply.py's check of IMMUTABLE SQL functions:
    plpgsql_check lists the functions of this project each one calls (not the built-in ones)."""
    depends = sql.SQL("SELECT d.oid::regprocedure::text FROM {}.plpgsql_show_dependency_tb(%s::oid::regprocedure) AS d"
                      " JOIN pg_proc c ON c.oid = d.oid WHERE d.type = 'FUNCTION' AND c.provolatile <> 'i'"
                      ).format(plpgsql_check)
    immutable = [(oid, signature) for oid, _, signature, *_ in db.execute(PLPGSQL_FUNCTIONS).fetchall()
                 if db.execute("SELECT provolatile = 'i' FROM pg_proc WHERE oid = %s", (oid,)).fetchone()[0]]
    assert len(immutable) >= 4
    mislabelled = {signature: called for oid, signature in immutable
                   if (called := [c for (c,) in db.execute(depends, (oid,)).fetchall()])}
    assert mislabelled == {}


WORKOUT = [
    "SELECT parse_week('2026-11-18')", "SELECT parse_week('2026-11-18T10:00:00Z')",
    "SELECT parse_week('2026-02-30')", "SELECT parse_week('soon')",
    "SELECT check_user_id('')", "SELECT check_game_type('chess')",
    "SELECT get_current_lottery('alice', '2026-11-12')",
    "SELECT get_weekly_game_data('alice', '2026-11-09', '2026-11-12')",
    "SELECT record_game_session('alice', 'slots', '{}', NULL, '2026-11-12')",
    "SELECT get_game_history('alice', 10, 0, 'slots')", "SELECT get_game_history('alice', 0)",
    "SELECT run_due_draws('2026-11-17')", "SELECT get_lottery_by_week('alice', '2026-11-09', '2026-11-17')",
    "SELECT rebuild_share_aggregates()", "SELECT adopt_existing_events()",
    "SELECT completed_draw('2020-01-06')", "SELECT get_draw_ranking('2026-11-09', 0)",
    "SELECT get_draw_ranking('2026-11-09', 10)", "SELECT * FROM get_live_rank('alice', '2026-11-09')",
    "SELECT * FROM get_live_rank('nobody', '2026-11-09')",
]

# A branch made of NULL; alone holds no statement: the per-statement profile cannot show it.
EMPTY_BRANCH = re.compile(r"\b(THEN|ELSE|LOOP)\s+NULL\s*;", re.I)


@pytest.fixture
def profiled_db(fresh_db):
    """A database of its own: its profiler counters start at zero whatever ran before,
    so the workout leaves the same functions partly covered every time."""
    fresh_db.execute("CREATE SCHEMA plpgsql_check_test")
    fresh_db.execute("CREATE EXTENSION plpgsql_check SCHEMA plpgsql_check_test")
    return fresh_db


def test_coverage_report_counts_like_plpgsql_check(profiled_db):
    db, plpgsql_check = profiled_db, sql.Identifier("plpgsql_check_test")
    """tests/plpgsql_coverage.py recomputes coverage from merged per-statement counters;
    in one database its figures must agree with plpgsql_coverage_statements/_branches.
    Two known differences: those also count the RETURN that PL/pgSQL appends to the body
    of a void, set-returning or OUT-parameter function not ending in one (run when the
    last statement ran without error), which the report leaves out as it is in no
    source; and branches holding no statement (EMPTY_BRANCH)."""
    db.execute("SET LOCAL plpgsql_check.profiler = on")
    add_shares(db, ("alice", 50.0, "2026-11-10 01:00"), ("bob", 70.0, "2026-11-11 02:00"))
    for call in WORKOUT:  # some branches taken, some not: the comparison is not all zeros
        try:
            with db.transaction():
                db.execute(call)
        except psycopg.Error as exc:
            assert exc.sqlstate.startswith("LT"), exc
    statements_tb = sql.SQL("SELECT stmtid, parent_stmtid, parent_note, block_num, lineno, exec_stmts,"
                            " exec_stmts_err, stmtname"
                            " FROM {}.plpgsql_profiler_function_statements_tb(%s::oid::regprocedure)"
                            ).format(plpgsql_check)
    coverage = sql.SQL("SELECT {0}.plpgsql_coverage_statements(%s::oid::regprocedure),"
                       " {0}.plpgsql_coverage_branches(%s::oid::regprocedure)").format(plpgsql_check)
    mismatches = []
    executed = 0
    for oid, name, signature, *_, source, may_fall_off_the_end in db.execute(PLPGSQL_FUNCTIONS).fetchall():
        rows = db.execute(statements_tb, (oid,)).fetchall()
        profile = Profile(signature, name, [Statement(i, p, n, b, ln, s) for i, p, n, b, ln, _, _, s in rows])
        for stmtid, *_, count, _, _ in rows:
            profile.counts[stmtid] += count
        covered, total = statement_coverage(profile)
        root = next(r for r in rows if r[1] is None)
        last = max((r for r in rows if r[1] == root[0]), key=lambda r: r[3])
        if may_fall_off_the_end and last[7] != "RETURN":  # PL/pgSQL's implicit RETURN (pl_comp.c)
            total += 1
            covered += 1 if last[5] - last[6] > 0 else 0
        branches = branch_coverage(profile)
        ours = (covered / total, branches[0] / branches[1] if branches[1] else 1.0)
        expected = db.execute(coverage, (oid, oid)).fetchone()
        if abs(ours[0] - expected[0]) > 1e-9:
            mismatches.append(f"{signature}: statements {ours[0]:.3f}, plpgsql_check {expected[0]:.3f}")
        if abs(ours[1] - expected[1]) > 1e-9 and not EMPTY_BRANCH.search(source):
            mismatches.append(f"{signature}: branches {ours[1]:.3f}, plpgsql_check {expected[1]:.3f}")
        executed += 0 < expected[0] < 1
    assert not mismatches, "\n".join(mismatches)
    assert executed >= 5, "the workout should leave several functions partly covered"
