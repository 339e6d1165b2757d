"""pytest plugin: one coverage report for Python, PL/pgSQL and SQL functions, with a gate.

    pytest --cov --cov-report= --plpgsql-cov      (what `make test` and `make coverage` run)

Without --plpgsql-cov this plugin does nothing at all.

* Python: line coverage of web/ and db/ as measured by pytest-cov (--cov is required:
  the sources and settings come from [tool.coverage] in pyproject.toml).
* PL/pgSQL: statement and branch coverage of every PL/pgSQL function of db/functions/,
  from plpgsql_check's profiler, which the test cluster preloads (db/cluster.py) and
  this plugin switches on (plpgsql_check.profiler = on, test cluster only).
* SQL-language functions: the profiler cannot see them (most are inlined by the
  planner), so each one is reported with the tests whose source names it; a
  function that no test names counts as uncovered.

Why the counters are harvested database by database: plpgsql_check 2.3 keys its
shared-memory profile by (function oid, *database oid*, pg_proc row version), and
reads only the current database's. The suite runs in many clones of one template
(same function oids, different database oids) that are dropped as it goes, and the
outage tests restart the server, which empties shared memory. So the plugin reads
and resets a database's counters (a) just before it is dropped through psycopg
(DROP DATABASE, or the ALTER DATABASE ... allow_connections false that
pytest-postgresql's janitor issues first) and (b) in every database just before
db.cluster.stop(). Counters are merged by (function signature, md5 of its source),
statement by statement; branch coverage is recomputed from the merged counters with
plpgsql_check's own rules (profiler.c: coverage_internal).

The run fails (exit status 1) when Python or PL/pgSQL statement coverage is below
the thresholds just below: the one place they are set.
"""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db import cluster

PYTHON_MIN = 85.0                # % of lines of web/ and db/
PLPGSQL_STATEMENTS_MIN = 85.0    # % of statements of all PL/pgSQL functions of db/functions/

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "db" / "functions"
BINDING_DIR = ROOT / "db" / "binding"
TESTS_DIR = ROOT / "tests"

EXT_SCHEMA = "plpgsql_cov_tmp"   # created and rolled back in each harvested database

LOOP_STATEMENTS = {"LOOP", "WHILE", "FOR with integer loop variable", "FOR over SELECT rows",
                   "FOR over cursor", "FOR over EXECUTE statement", "FOREACH over array"}

HARVEST_FUNCTIONS = """
    SELECT p.oid, p.oid::regprocedure::text, p.proname, l.lanname, md5(p.prosrc)
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
    WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
      AND l.lanname IN ('plpgsql', 'sql')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')"""


# ---------------------------------------------------------------------------
# collecting


@dataclass
class Statement:
    stmtid: int
    parent: int | None
    note: str | None
    block_num: int
    lineno: int | None
    name: str


@dataclass
class Profile:
    """One version of one PL/pgSQL function: its statements and their summed counts."""
    signature: str
    name: str
    statements: list[Statement]
    counts: Counter = field(default_factory=Counter)
    databases: int = 0


_GONE_ALREADY = re.compile(r'database ".*" (does not exist|is not currently accepting connections)')


class Collector:
    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str], Profile] = {}
        self.sql_functions: dict[str, str] = {}    # signature -> name
        self.harvests = 0
        self.failures: list[str] = []

    def harvest(self, conninfo: str) -> None:
        """Add the profiler counters of one database, then reset them there."""
        dbname = conninfo_to_dict(conninfo).get("dbname")
        try:
            with psycopg.connect(conninfo, connect_timeout=10) as conn:
                self._harvest(conn)
                conn.rollback()
            self.harvests += 1
        except psycopg.Error as exc:
            message = str(exc).strip()
            if _GONE_ALREADY.search(message):
                return  # closed by an earlier harvest point (the janitor's ALTER), or never there
            self.failures.append(f"{dbname}: {type(exc).__name__}: {message}")

    def _harvest(self, conn: psycopg.Connection) -> None:
        functions = conn.execute(HARVEST_FUNCTIONS).fetchall()
        plpgsql = [f for f in functions if f[3] == "plpgsql"]
        for _, signature, name, language, _ in functions:
            if language == "sql":
                self.sql_functions[signature] = name
        if not plpgsql:
            return
        row = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                           " ON n.oid = e.extnamespace WHERE e.extname = 'plpgsql_check'").fetchone()
        if row:
            schema = row[0]
        else:
            schema = EXT_SCHEMA
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE EXTENSION plpgsql_check SCHEMA {}").format(sql.Identifier(schema)))
        statements_tb = sql.SQL("SELECT stmtid, parent_stmtid, parent_note, block_num, lineno, exec_stmts, stmtname"
                                " FROM {}.plpgsql_profiler_function_statements_tb(%s::oid::regprocedure)"
                                ).format(sql.Identifier(schema))
        reset = sql.SQL("SELECT {}.plpgsql_profiler_reset(%s::oid::regprocedure)").format(sql.Identifier(schema))
        for oid, signature, name, _, source_md5 in plpgsql:
            rows = conn.execute(statements_tb, (oid,)).fetchall()
            conn.execute(reset, (oid,))
            key = (signature, source_md5)
            profile = self.profiles.get(key)
            if profile is None:
                profile = self.profiles[key] = Profile(signature, name, [
                    Statement(stmtid, parent, note, block_num, lineno, stmtname)
                    for stmtid, parent, note, block_num, lineno, _, stmtname in rows])
            profile.databases += 1
            for stmtid, *_, exec_stmts, _ in rows:
                profile.counts[stmtid] += exec_stmts or 0

    def harvest_cluster(self, conninfo: str) -> None:
        """Harvest every database of the cluster that conninfo points at."""
        params = conninfo_to_dict(conninfo)
        params["dbname"] = "postgres"
        try:
            with psycopg.connect(make_conninfo(**params), connect_timeout=10) as conn:
                names = [r[0] for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datallowconn"
                    " AND datname NOT IN ('postgres', 'template0', 'template1') ORDER BY datname")]
        except psycopg.Error:
            return  # not running: nothing in shared memory either
        for name in names:
            params["dbname"] = name
            self.harvest(make_conninfo(**params))


# ---------------------------------------------------------------------------
# where databases go away


_GONE = re.compile(r"""^\s*(?:DROP\s+DATABASE\s+(?:IF\s+EXISTS\s+)?|ALTER\s+DATABASE\s+)
                       ("(?:[^"]|"")+"|[^\s;]+)(.*)$""", re.I | re.S | re.X)
_NO_CONNECTIONS = re.compile(r"\ballow_connections\s*=?\s*(false|off|0)\b", re.I)


def _vanishing_database(cursor, query) -> str | None:
    """The database a statement drops or closes to connections, if it does."""
    if isinstance(query, sql.Composable):
        try:
            query = query.as_string(cursor.connection)
        except Exception:
            return None
    elif isinstance(query, bytes):
        query = query.decode(errors="replace")
    if not isinstance(query, str) or "DATABASE" not in query[:64].upper():
        return None
    match = _GONE.match(query)
    if not match:
        return None
    name, rest = match.groups()
    if query.lstrip()[:5].upper() == "ALTER" and not _NO_CONNECTIONS.search(rest):
        return None
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _install_hooks(collector: Collector, monkey: pytest.MonkeyPatch) -> None:
    original_execute = psycopg.Cursor.execute

    def execute(self, query, params=None, **kwargs):
        dbname = _vanishing_database(self, query)
        if dbname:
            collector.harvest(make_conninfo(self.connection.info.dsn, dbname=dbname))
        return original_execute(self, query, params, **kwargs)

    original_stop = cluster.stop

    def stop(datadir, *args, **kwargs):
        address = _address_of(Path(datadir))
        if address:  # db.cluster makes `postgres` the superuser
            collector.harvest_cluster(make_conninfo(host=address[0], port=address[1], user="postgres",
                                                    dbname="postgres"))
        return original_stop(datadir, *args, **kwargs)

    monkey.setattr(psycopg.Cursor, "execute", execute)
    monkey.setattr(cluster, "stop", stop)


def _address_of(datadir: Path) -> tuple[str, int] | None:
    """(host, port) of the server running on datadir, from its postmaster.pid
    (line 4: port, line 5: socket directory, line 6: first listen address)."""
    try:
        lines = (datadir.resolve() / "postmaster.pid").read_text().splitlines()
        host = lines[5].strip() if lines[5].strip() not in ("", "*") else lines[4].strip()
        return host, int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------
# arithmetic


def statement_coverage(profile: Profile) -> tuple[int, int]:
    """(executed, total) statements of the source, as plpgsql_coverage_statements counts
    them, less the RETURN that PL/pgSQL appends to a void, set-returning or OUT-parameter
    function whose body does not end in one: it is in no source, so not counted here."""
    counted = [s for s in profile.statements if s.lineno is not None and s.lineno != -1]
    return sum(1 for s in counted if profile.counts[s.stmtid] > 0), len(counted)


def branch_coverage(profile: Profile) -> tuple[int, int]:
    """(executed, total) branches, by plpgsql_coverage_branches' rules: a loop body; each
    THEN / ELSIF / ELSE (an IF without ELSE has an implicit one, taken as often as the IF
    ran more often than its explicit branches); each CASE WHEN and the CASE ELSE; a block
    with handlers: its body and each handler. A branch counts as run when its first
    statement ran. One difference: a branch holding no statement at all (e.g. a handler
    that is just NULL;) is invisible in the per-statement profile and is not counted."""
    counts = profile.counts
    lists: dict[tuple[int, str], list[Statement]] = defaultdict(list)
    for s in profile.statements:
        if s.parent is not None:
            lists[(s.parent, s.note or "")].append(s)

    def first(parent: int, note: str) -> int:
        body = lists.get((parent, note))
        return counts[min(body, key=lambda s: s.block_num).stmtid] if body else 0

    branches: list[int] = []
    for s in profile.statements:
        notes = sorted(n for (p, n) in lists if p == s.stmtid)
        if s.name in LOOP_STATEMENTS:
            branches.append(first(s.stmtid, "loop body"))
        elif s.name == "IF":
            explicit = [first(s.stmtid, "then body")]
            explicit += [first(s.stmtid, n) for n in notes if n.startswith("elsif ")]
            branches += explicit
            if "else body" in notes:
                branches.append(first(s.stmtid, "else body"))
            else:
                branches.append(counts[s.stmtid] - sum(explicit))
        elif s.name == "CASE":
            branches += [first(s.stmtid, n) for n in notes if n.startswith("case when ")]
            branches.append(first(s.stmtid, "case else"))
        elif any(n.startswith("exception ") for n in notes):
            branches.append(first(s.stmtid, "body"))
            branches += [first(s.stmtid, n) for n in notes if n.startswith("exception ")]
    return sum(1 for b in branches if b > 0), len(branches)


SHORT_TYPES = {"timestamp with time zone": "timestamptz", "double precision": "float8",
               "character varying": "varchar", "timestamp without time zone": "timestamp"}


def short(signature: str) -> str:
    for long_name, short_name in SHORT_TYPES.items():
        signature = signature.replace(long_name, short_name)
    return signature


def percent(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


# ---------------------------------------------------------------------------
# the report


def function_files() -> dict[str, str]:
    """name -> file of every function that db/functions/*.sql and the bindings define
    (a binding's function by standalone.sql, the binding of the test databases)."""
    pattern = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:public\.)?\"?(\w+)\"?\s*\(", re.I)
    files = {}
    for path in [*sorted(FUNCTIONS_DIR.glob("*.sql")), BINDING_DIR / "standalone.sql", BINDING_DIR / "platform.sql"]:
        for name in pattern.findall(path.read_text()):
            files.setdefault(name, path.name)
    return files


def tests_naming(names: set[str]) -> dict[str, list[str]]:
    """name -> the tests (test functions, with their decorators) whose source names it;
    for a name only fixtures or helpers of the test code mention, those (marked so)."""
    found: dict[str, list[str]] = defaultdict(list)
    helpers: dict[str, list[str]] = defaultdict(list)
    words = {n: re.compile(rf"(?<![\w.]){re.escape(n)}(?!\w)") for n in names}
    for path in sorted(TESTS_DIR.rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        source = path.read_text()
        rel = path.relative_to(ROOT).as_posix()
        lines = source.splitlines(keepends=True)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        test_spans = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                test_spans.append((start, node.end_lineno, node.name))
        in_tests = set()
        for start, end, test in test_spans:
            text = "".join(lines[start - 1:end])
            in_tests.update(range(start, end + 1))
            for name, word in words.items():
                if word.search(text):
                    found[name].append(f"{rel}::{test}")
        other = "".join(line for i, line in enumerate(lines, 1) if i not in in_tests)
        for name, word in words.items():
            if word.search(other):
                helpers[name].append(f"{rel} (fixture/helper)")
    return {n: found.get(n) or helpers.get(n, []) for n in names}


@dataclass
class Row:
    kind: str
    what: str
    covered: int
    total: int
    note: str = ""

    @property
    def pct(self) -> float:
        return percent(self.covered, self.total)


def python_rows(config) -> list[Row] | None:
    plugin = config.pluginmanager.getplugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    if controller is None:
        return None
    cov = controller.cov
    rows = []
    for path in sorted(cov.get_data().measured_files()):
        try:
            _, statements, _, missing, _ = cov.analysis2(path)
        except Exception:
            continue
        try:
            name = Path(path).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            name = path
        rows.append(Row("python", name, len(statements) - len(missing), len(statements)))
    return rows


def build_report(collector: Collector, config) -> tuple[list[Row], list[Row], list[str]]:
    """(rows, totals, problems): problems are the gates that failed."""
    files = function_files()
    rows: list[Row] = []
    totals: list[Row] = []
    problems: list[str] = []

    py = python_rows(config)
    if py is None:
        problems.append("Python coverage was not measured (run with --cov)")
    else:
        rows += py
        total = Row("python", "TOTAL python", sum(r.covered for r in py), sum(r.total for r in py))
        totals.append(total)
        if total.pct < PYTHON_MIN:
            problems.append(f"Python line coverage {total.pct:.1f}% is under {PYTHON_MIN:.0f}%")

    # One version per PL/pgSQL function: the one seen in the most databases (the template's).
    chosen: dict[str, Profile] = {}
    for profile in collector.profiles.values():
        if profile.name not in files:
            continue
        best = chosen.get(profile.signature)
        if best is None or profile.databases > best.databases:
            chosen[profile.signature] = profile
    merged = sorted(chosen.values(), key=lambda p: (files[p.name], p.signature))
    stmt_rows = []
    branch_rows = []
    for profile in merged:
        label = f"{files[profile.name]} {short(profile.signature)}"
        unrun = [f"{s.name} at line {s.lineno}" for s in profile.statements
                 if s.lineno not in (None, -1) and profile.counts[s.stmtid] == 0]
        stmt_rows.append(Row("plpgsql statements", label, *statement_coverage(profile),
                             ("not run: " + ", ".join(unrun)) if unrun else ""))
        branch_rows.append(Row("plpgsql branches", label, *branch_coverage(profile)))
    rows += stmt_rows + branch_rows
    stmt_total = Row("plpgsql statements", "TOTAL plpgsql statements",
                     sum(r.covered for r in stmt_rows), sum(r.total for r in stmt_rows))
    totals.append(stmt_total)
    totals.append(Row("plpgsql branches", "TOTAL plpgsql branches",
                      sum(r.covered for r in branch_rows), sum(r.total for r in branch_rows)))
    if not stmt_rows:
        problems.append("no PL/pgSQL profile was collected (is plpgsql_check preloaded?)")
    elif stmt_total.pct < PLPGSQL_STATEMENTS_MIN:
        problems.append(f"PL/pgSQL statement coverage {stmt_total.pct:.1f}% is under {PLPGSQL_STATEMENTS_MIN:.0f}%")

    sql_functions = {sig: name for sig, name in collector.sql_functions.items() if name in files}
    naming = tests_naming(set(sql_functions.values()))
    sql_rows = []
    for sig, name in sorted(sql_functions.items(), key=lambda i: (files[i[1]], i[0])):
        tests = naming.get(name, [])
        note = (tests[0] + (f" (+{len(tests) - 1} more)" if len(tests) > 1 else "")) if tests else "NO TEST NAMES IT"
        sql_rows.append(Row("sql named-by-test", f"{files[name]} {short(sig)}", 1 if tests else 0, 1, note))
    rows += sql_rows
    totals.append(Row("sql named-by-test", "TOTAL sql named-by-test",
                      sum(r.covered for r in sql_rows), len(sql_rows)))
    return rows, totals, problems


def write_table(tr, rows: list[Row], totals: list[Row], problems: list[str], collector: Collector) -> None:
    width = max(len(r.what) for r in rows + totals)
    kind_width = max(len(r.kind) for r in rows + totals)
    header = f"{'module or function':<{width}}  {'covered':>7}  {'total':>6}  {'percent':>7}  {'kind':<{kind_width}}  notes"
    tr.write_sep("=", "coverage: python, plpgsql, sql")
    tr.write_line(header)
    tr.write_line("-" * len(header))
    kind = None
    for r in rows:
        if kind is not None and r.kind != kind:
            tr.write_line("")
        kind = r.kind
        tr.write_line(f"{r.what:<{width}}  {r.covered:>7}  {r.total:>6}  {r.pct:>6.1f}%  {r.kind:<{kind_width}}  {r.note}".rstrip())
    tr.write_line("-" * len(header))
    for r in totals:
        tr.write_line(f"{r.what:<{width}}  {r.covered:>7}  {r.total:>6}  {r.pct:>6.1f}%  {r.kind}", bold=True)
    tr.write_line(f"(PL/pgSQL counters from {collector.harvests} database harvests"
                  + (f"; {len(collector.failures)} harvests failed, e.g. {collector.failures[0]}" if collector.failures else "")
                  + f"; gate: python >= {PYTHON_MIN:.0f}%, plpgsql statements >= {PLPGSQL_STATEMENTS_MIN:.0f}%)")
    if problems:
        for p in problems:
            tr.write_line(f"COVERAGE FAILURE: {p}", red=True, bold=True)
    else:
        tr.write_line("coverage gate passed", green=True)


# ---------------------------------------------------------------------------
# pytest hooks


def pytest_addoption(parser):
    parser.getgroup("plpgsql-cov").addoption(
        "--plpgsql-cov", action="store_true", default=False,
        help="profile PL/pgSQL (plpgsql_check), print one coverage table with pytest-cov's Python "
             f"figures and fail under {PYTHON_MIN:.0f}% Python / {PLPGSQL_STATEMENTS_MIN:.0f}% PL/pgSQL statements")


_KEY = pytest.StashKey[dict]()


def pytest_configure(config):
    if not config.getoption("--plpgsql-cov", default=False):
        return
    plugin = config.pluginmanager.getplugin("_cov")
    if plugin is None or getattr(plugin, "_disabled", False):
        raise pytest.UsageError("--plpgsql-cov needs pytest-cov measuring Python: add --cov (and --cov-report= "
                                "to leave the printing to the combined table)")
    monkey = pytest.MonkeyPatch()
    collector = Collector()
    # Only the test cluster profiles: `make run` and the benchmarks keep it off.
    monkey.setitem(cluster.SETTINGS, "plpgsql_check.profiler", "on")
    _install_hooks(collector, monkey)
    config.stash[_KEY] = {"collector": collector, "monkey": monkey, "report": None}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """After conftest's pytest_sessionfinish stopped the cluster (harvesting it first)."""
    state = session.config.stash.get(_KEY, None)
    if state is None or session.config.option.collectonly:
        return
    state["report"] = report = build_report(state["collector"], session.config)
    if report[2] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash.get(_KEY, None)
    if state is None or state["report"] is None:
        return
    rows, totals, problems = state["report"]
    write_table(terminalreporter, rows, totals, problems, state["collector"])


def pytest_unconfigure(config):
    state = config.stash.get(_KEY, None)
    if state is not None:
        state["monkey"].undo()
