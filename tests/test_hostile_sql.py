"""Hostile input to every SQL function of db/functions/: NaN, ±Infinity, negative and
extreme numbers, the ends of the calendar, empty and 10 KB strings, SQL fragments,
JSON of the wrong type, deep nesting. A call either returns or raises a documented
SQLSTATE (core/sqlstates.tsv) or one of the few standard data exceptions listed in
ALLOWED_STANDARD; anything else (XX000, 0A000, 42xxx, a statement timeout) fails.

Every function of the public schema that takes an argument is tested; the list comes
from db/functions/*.sql, and test_every_function_with_arguments_is_tested checks it
against pg_proc. Arguments are generated from the declared types read from pg_proc,
so a new function is covered without touching this file (a new argument type needs
a generator in GENERATORS). Two tests per function:

* test_boundary_values: each hand-picked edge value of a type goes, in turn, to every
  argument of that type, the others staying ordinary (deterministic, exhaustive);
* test_random_values: Hypothesis mixes valid and hostile values in all arguments at
  once, sometimes leaving defaulted trailing arguments out.

Each call runs in a SAVEPOINT on the rolled-back `db` transaction, under a 5 s
statement_timeout (the writing functions insert draws and sessions, and a hostile
argument must not hang a call).

Every generated call runs and is checked: nothing is skipped as a known bug. A bug
found here is fixed, and its minimal reproduction joins FORMER_BUGS, one regression
test each (test_former_bug).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import reprlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg import sql

from web.errors import STANDARD_SQLSTATES

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "db" / "functions"
# The binding the test database gets (db/apply.py picks it for an empty database).
BINDING_FILE = ROOT / "db" / "binding" / "standalone.sql"

STATEMENT_TIMEOUT = "5s"
# Hypothesis examples per function. Deterministic by default, like
# tests/api/test_api_schemathesis.py; HOSTILE_RANDOM=1 HOSTILE_EXAMPLES=500 explores further.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "50"))
DERANDOMIZE = not os.environ.get("HOSTILE_RANDOM")


def documented_sqlstates() -> set[str]:
    lines = [line for line in (ROOT / "core" / "sqlstates.tsv").read_text().splitlines()
             if line and not line.startswith("#")]
    header, *rows = (line.split("\t") for line in lines)
    assert header[0] == "code"
    return {row[0] for row in rows}


DOCUMENTED = documented_sqlstates()

# Standard SQLSTATEs a hostile argument may raise, each a class 22 data exception that
# web/errors.py already maps to 400. Nothing else: no XX000, 0A000, 42xxx, 53xxx, 57xxx.
ALLOWED_STANDARD: dict[str, str] = {
    "22003": "numeric_value_out_of_range: the argument's own cast (2^63-1 to an integer "
             "parameter, 2^63 to bigint, as the web layer's %s::integer does for limit=99999999999), "
             "and game_view reading a JSON member such as 1e400 or 99999999999999999999 as "
             "double precision / bigint",
    "22008": "datetime_field_overflow: the last days of the calendar, e.g. a date after "
             "294276-12-31 has no timestamp, and an instant in the last week of timestamptz "
             "(294276 AD) cannot have 7 days or a minute added (next_draw_at, user_found_block); "
             "also the first second of 4714 BC minus one second (lottery_draw_json's weekEnd)",
    "22023": "invalid_parameter_value: game_view (horse_race) given a dailyBestDiffs that is a "
             "JSON scalar or object, not an array (jsonb_array_elements_text)",
    "22P02": "invalid_text_representation: game_view reading a JSON string member such as "
             "\"x\" or a fraction as a number (\"x\"::double precision, 1.5::bigint), and a jsonb "
             "argument holding a lone \\ud800 escape",
    "22P05": "untranslatable_character: a jsonb argument holding \\u0000 (jsonb cannot store it); "
             "raised by the argument's cast before the function runs",
}


def test_allowed_standard_codes_are_data_exceptions_the_web_layer_maps_to_400():
    for code in ALLOWED_STANDARD:
        assert code[:2] in ("22", "23"), code
        assert STANDARD_SQLSTATES[code][0] == 400, code
    assert not DOCUMENTED & set(ALLOWED_STANDARD)


ACCEPTED = DOCUMENTED | set(ALLOWED_STANDARD)

# ---------------------------------------------------------------------------
# the functions under test

_CREATE = re.compile(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+(\w+)\s*\((.*?)\)\s*RETURNS\s+(\w+)",
                     re.I | re.S)


def declared_functions() -> tuple[list[str], list[str]]:
    """(functions with arguments, functions without) declared in db/functions/ and the
    binding, triggers aside."""
    with_args, without = [], []
    for path in [BINDING_FILE, *sorted(FUNCTIONS_DIR.glob("*.sql"))]:
        for name, args, returns in _CREATE.findall(path.read_text()):
            if returns.lower() == "trigger":
                continue
            (with_args if args.strip() else without).append(name)
    return sorted(set(with_args)), sorted(set(without))


FUNCTIONS, NO_INPUT = declared_functions()
# Take no argument at all, so nothing hostile to give them: maintenance helpers of apply,
# the binding's name and its XP catch-up, the share queue's opening and fold, the pending
# events' fold and its lag, the relations writers lock, the epoch.
NO_INPUT_EXPECTED = {"adopt_existing_events", "mining_events_is_hypertable", "lottery_binding",
                     "deliver_pending_xp", "open_share_queue", "fold_pending_shares", "lottery_epoch",
                     "fold_pending_events", "event_fold_lag", "event_relations"}

PROJECT_FUNCTIONS = """
    SELECT p.proname, p.oid::regprocedure::text, p.pronargs,
           p.prorettype = 'trigger'::regtype
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')"""


def test_every_function_with_arguments_is_tested(db):
    rows = db.execute(PROJECT_FUNCTIONS).fetchall()
    with_args = {name for name, _, nargs, trigger in rows if nargs > 0 and not trigger}
    without = {name for name, _, nargs, trigger in rows if nargs == 0 and not trigger}
    assert with_args == set(FUNCTIONS)
    assert without == set(NO_INPUT) == NO_INPUT_EXPECTED
    assert len(FUNCTIONS) >= 40


# ---------------------------------------------------------------------------
# value generators, one per argument type
#
# Values are Python objects passed as query parameters and cast to the declared type
# (`%s::date`), so that text literals such as 'infinity', '4714-11-24 BC' and '1e400'
# reach the server as they are. A composite argument (a table row) is a tuple of its
# columns' values, sent as ROW(%s::col_type, ...)::row_type.

NUL_FREE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
KB10 = 10 * 1024


@dataclass
class Gen:
    specials: list                   # edge values, each sent to every argument of the type
    strategy: st.SearchStrategy      # random values, specials included
    typical: Any                     # an ordinary value, for the other arguments


def _gen(specials: list, random: st.SearchStrategy, typical: Any) -> Gen:
    return Gen(specials, st.one_of(st.sampled_from(specials), random), typical)


HEX64 = "0000000000a1b2c3" + "0" * 48
TEXT_SPECIALS = [
    None, "", " ", "\t", "alice", "u" * 128, "u" * 129, "x" * KB10, "€" * (KB10 // 3),
    # game and event types, near misses
    "hammer", "horse_race", "slots", "scratch_card", "HAMMER", " slots", "slots\n", "ｓｌｏｔｓ",
    "share_submitted", "new_block_network", "block_found",
    # weeks: valid, impossible, edge, odd digits
    "2026-11-16", "2026-11-18T12:34:56Z", "2026-11-18 12:00", "2026-11-18T12:00:00.123456+05:30",
    "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31T23:59:59-15:59", "2026-11-16T12:00:00+99",
    "2026-11-16T23:60:00Z", "99999-01-01", "２０２６-１１-１６", "٢٠٢٦-١١-١٦", "\ufeff2026-11-16",
    "infinity", "-infinity", "epoch", "NaN", "Infinity", "1e308", "-1",
    # hashes
    HEX64, "0" * 64, "f" * 64, "F" * 64, "g" * 64, "ß" * 64, "0" * 63, "0" * 65, "0" * 7 + "1",
    # SQL and format fragments
    "'; DROP TABLE users; --", "$$", "$1", "\\", "\\\\x00", "%s", "%(x)s", "' OR '1'='1", '"',
    "';\n--", "{}", "[]", "null", "NULL", "^0*$", ".*",
    # unicode
    "🎰", "\u202eevil", "ﬀ", "é" * 64, "\U0010ffff",
]
WEEK_LIKE = st.from_regex(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?", fullmatch=True)
TEXT = _gen(TEXT_SPECIALS, st.one_of(
    st.text(NUL_FREE, max_size=200),
    st.text("0123456789abcdefABCDEF", min_size=60, max_size=68),
    WEEK_LIKE,
    st.text(NUL_FREE, min_size=KB10, max_size=KB10 + 16),
), "alice")

FLOAT_SPECIALS = [None, math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0, 1.0, 1e308, -1e308,
                  5e-324, -5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 86388558925171.0]
FLOAT = _gen(FLOAT_SPECIALS, st.floats(), 1000.0)

INT_SPECIALS = [None, 0, -1, 1, 10, 11, 50, 51, 100, 101, 2**31 - 1, -(2**31 - 1), -2**31, 2**31,
                2**63 - 1, -(2**63 - 1), -2**63, 2**63]
INT = _gen(INT_SPECIALS, st.one_of(st.integers(-5, 200), st.integers(-2**63, 2**63 - 1)), 5)

DATE_SPECIALS = [None, "-infinity", "infinity", "4714-11-24 BC", "4714-11-25 BC", "0001-01-01 BC",
                 "0001-01-01", "1970-01-01", "2026-11-16", "2026-11-22", "2026-11-23", "2999-01-04",
                 "9999-12-31", "294276-12-24", "294276-12-31", "294277-01-01", "5874897-12-31"]
DATE = _gen(DATE_SPECIALS, st.one_of(
    st.dates().map(date.isoformat),
    st.dates(date(2020, 1, 1), date(2030, 12, 31)).map(date.isoformat),
), "2026-11-16")

TIMESTAMPTZ_SPECIALS = [None, "-infinity", "infinity", "4714-11-24 00:00:00+00 BC",
                        "0001-01-01 00:00:00+00", "1970-01-01 00:00:00+00",
                        "2026-11-22 23:59:59.999999+00", "2026-11-23 00:00:59.999999+00",
                        "2026-11-23 00:01:00+00", "9999-12-31 23:59:59.999999+00",
                        "294276-12-24 00:00:00+00", "294276-12-31 23:59:59.999999+00", "epoch", "now"]
ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
TIMESTAMPTZ = _gen(TIMESTAMPTZ_SPECIALS, st.one_of(
    st.datetimes(timezones=ZONES),
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=ZONES),
), "2026-11-18 12:00:00+00")

INTERVAL = _gen([None, "0", "-1 day", "1 microsecond", "0.2 seconds", "178000000 years", "-178000000 years"],
                st.timedeltas(timedelta(days=-3650), timedelta(days=3650)), "30 seconds")

UUID = _gen([None, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
            st.uuids().map(str), "6f1c1e2a-3b4c-4d5e-8f60-718293a4b5c6")

BOOLEAN = _gen([None, True, False], st.booleans(), True)


# jsonb: JSON text. Fragments are JSON texts too, so that numbers JSON allows but Python
# would not write (1e400, -0, 1e-400) reach the server verbatim.
def nested(depth: int, leaf: str = "{}", key: str = "a") -> str:
    return f'{{"{key}": ' * depth + leaf + "}" * depth


HOSTILE_FRAGMENTS = [
    "null", "true", "false", "0", "-0", "-1", "1", "1.5", "1e308", "-1e308", "1e400", "-1e400",
    "1e-400", "5e-324", "99999999999999999999", "123456789012345678901234567890.5",
    '"NaN"', '"Infinity"', '"-Infinity"', '""', '"x"', '"1e400"', json.dumps("x" * KB10),
    json.dumps(HEX64), json.dumps("alice"), "[]", "[1, 2]", '["NaN", "-Infinity", 1e308, -1, "x"]',
    "{}", nested(9), nested(64), '{"a": "\\u0000"}', '"\\ud800"',
]
SHARE_KEYS = ["user", "sdiff", "accepted", "hash", "diff", "worker"]
GAME_DATA_KEYS = ["bestDifficulty", "networkDifficulty", "progressRatio", "dailyBestDiffs", "bestHash",
                  "weeklyRank", "percentile", "totalShares", "blockFound", "weekStart"]
SHARE = {"user": '"alice"', "sdiff": "1000", "accepted": "true", "hash": json.dumps(HEX64)}
GAME_DATA = {"bestDifficulty": "300", "networkDifficulty": "86388558925171", "progressRatio": "0.18",
             "dailyBestDiffs": "[0, 0, 0, 300, 0, 0, 0]", "bestHash": json.dumps(HEX64),
             "weeklyRank": "1", "percentile": "100", "totalShares": "1", "blockFound": "false"}


def json_object(members: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in members.items()) + "}"


JSON_SPECIALS = [None, *HOSTILE_FRAGMENTS, nested(1000), "[" * 1000 + "]" * 1000,
                 json_object({"x" * KB10: "1"}), json_object({"x": json.dumps("y" * 5000)}),
                 json_object(SHARE), json_object(GAME_DATA)]
JSON_SPECIALS += [json_object({**SHARE, key: bad}) for key in ("user", "sdiff", "accepted")
                  for bad in ("1e400", "-1", '"1000"', "null", json.dumps("u" * 129), "[]")]
JSON_SPECIALS += [json_object({**GAME_DATA, key: bad}) for key in GAME_DATA_KEYS
                  for bad in ('"x"', "1e400", "-1e308", "1.5", "99999999999999999999", "{}", "null",
                              '"NaN"', '["NaN", "-Infinity", 1e308, -1]')]

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(NUL_FREE, max_size=40))
JSON_VALUE = st.recursive(JSON_LEAF, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(st.text(NUL_FREE, max_size=10), children, max_size=5)),
    max_leaves=25)
FRAGMENT = st.one_of(st.sampled_from(HOSTILE_FRAGMENTS), JSON_VALUE.map(json.dumps))
JSON = _gen(JSON_SPECIALS, st.one_of(
    JSON_VALUE.map(json.dumps),
    st.dictionaries(st.sampled_from(SHARE_KEYS), FRAGMENT, max_size=6).map(json_object),
    st.dictionaries(st.sampled_from(GAME_DATA_KEYS), FRAGMENT, max_size=10).map(json_object),
    st.fixed_dictionaries({k: st.one_of(st.just(v), st.just(v), FRAGMENT) for k, v in GAME_DATA.items()},
                          optional={"weekStart": FRAGMENT}).map(json_object),
    st.integers(1, 200).map(nested),
), "{}")

# Arrays (the 7-day arrays of a participant-week, the fold's bucket moves): the
# right length and the wrong ones, holes, and the scalar types' edge values inside.
FLOAT_ARRAY = _gen([None, [], [None] * 7, [0.0] * 7, [1.0] * 3, [1.0] * 100, [math.nan] * 7,
                    [math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0]],
                   st.lists(st.one_of(st.none(), st.floats()), max_size=10), [0.0] * 7)
INT_ARRAY = _gen([None, [], [None] * 7, [0] * 7, [1] * 3, [1] * 100, [2**31 - 1] * 7, [-2**31] * 7, [2**31] * 7],
                 st.lists(st.one_of(st.none(), st.integers(-2**31, 2**31 - 1)), max_size=10), [0] * 7)
DATE_ARRAY = _gen([None, [], [None], ["2026-11-16"], ["infinity", "-infinity"], ["2026-11-16"] * 3, ["0001-01-01 BC"]],
                  st.lists(st.one_of(st.none(), st.sampled_from(DATE_SPECIALS[1:])), max_size=5), ["2026-11-16"])

GENERATORS: dict[str, Gen] = {
    "text": TEXT, "character varying": TEXT,
    "double precision": FLOAT,
    "smallint": INT, "integer": INT, "bigint": INT,
    "date": DATE, "timestamp with time zone": TIMESTAMPTZ,
    "jsonb": JSON, "uuid": UUID, "boolean": BOOLEAN, "interval": INTERVAL,
    "double precision[]": FLOAT_ARRAY, "integer[]": INT_ARRAY, "bigint[]": INT_ARRAY, "date[]": DATE_ARRAY,
}
# Ordinary values by argument or column name, where the type's typical value would
# stop the function at its first check; with several, the boundary sweep runs with each
# (every game's branch of game_view meets every hostile p_data).
from core.rules import GAME_TYPES
TYPICAL_BY_NAME = {"p_game_type": GAME_TYPES, "p_event_type": ["share_submitted", "new_block_network", "block_found"],
                   "game_type": ["slots"], "game_played": ["slots"], "status": ["completed"], "ranking_format": [2, 1],
                   "p_hash": [HEX64], "p_text": ["2026-11-16"], "p_limit": [20], "p_offset": [0],
                   "p_payload": [json_object(SHARE)], "p_data": [json_object(GAME_DATA)],
                   "p_best": [1e6], "p_network": [86388558925171.0], "p_participants": [10],
                   "week_start": ["2026-11-16 00:00:00+00"], "week_end": ["2026-11-23 00:00:00+00"]}


@dataclass
class Arg:
    name: str
    type: str                                        # format_type(), e.g. character varying(128)
    gen: Gen | None = None                           # scalar
    columns: list[Arg] = field(default_factory=list)  # composite (a table's row type)

    @property
    def typicals(self) -> list:
        if self.columns:
            return [tuple(c.typicals[0] for c in self.columns)]
        return TYPICAL_BY_NAME.get(self.name, [self.gen.typical])

    def specials(self) -> list:
        if not self.columns:
            return self.gen.specials
        typical = self.typicals[0]
        rows = [None, tuple(None for _ in self.columns), typical]
        for i, column in enumerate(self.columns):
            rows += [typical[:i] + (value,) + typical[i + 1:] for value in column.specials()[1:]]
        return rows

    def strategy(self) -> st.SearchStrategy:
        """Half ordinary values, half the type's specials and random values."""
        if not self.columns:
            return st.one_of(st.sampled_from(self.typicals), self.gen.strategy)
        return st.one_of(st.sampled_from(self.typicals), st.sampled_from(self.specials()),
                         st.tuples(*(c.strategy() for c in self.columns)))

    def placeholder(self, value) -> tuple[sql.Composable, list]:
        if not self.columns:
            return sql.SQL("%s::{}").format(sql.SQL(self.type)), [value]
        if value is None:
            return sql.SQL("NULL::{}").format(sql.SQL(self.type)), []
        parts, params = zip(*(c.placeholder(v) for c, v in zip(self.columns, value)))
        return (sql.SQL("ROW({})::{}").format(sql.SQL(", ").join(parts), sql.SQL(self.type)),
                [p for ps in params for p in ps])


@dataclass
class Signature:
    name: str
    regprocedure: str
    args: list[Arg]
    required: int                    # arguments without a default

    def call(self, values: list) -> tuple[sql.Composable, list]:
        parts, params = [], []
        for arg, value in zip(self.args, values):
            part, ps = arg.placeholder(value)
            parts.append(part)
            params += ps
        return sql.SQL("SELECT {}({})").format(sql.Identifier(self.name), sql.SQL(", ").join(parts)), params


def base_type(type_name: str) -> str:
    return type_name.split("(")[0]


def make_arg(db, name: str, type_oid: int) -> Arg:
    type_name, relid = db.execute(
        "SELECT format_type(oid, NULL), CASE WHEN typtype = 'c' THEN typrelid END FROM pg_type WHERE oid = %s",
        (type_oid,)).fetchone()
    if relid:
        columns = db.execute(
            "SELECT attname, atttypid, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (relid,)).fetchall()
        return Arg(name, type_name, columns=[
            Arg(col, full, gen=_generator(col, full)) for col, _, full in columns])
    return Arg(name, type_name, gen=_generator(name, type_name))


def _generator(name: str, type_name: str) -> Gen:
    gen = GENERATORS.get(base_type(type_name))
    assert gen is not None, f"no generator for {name} {type_name}: add one to GENERATORS"
    return gen


def signatures(db, name: str) -> list[Signature]:
    rows = db.execute(
        "SELECT oid::regprocedure::text, proargtypes::oid[], proargnames, proargmodes, pronargs, pronargdefaults "
        "FROM pg_proc WHERE proname = %s AND pronamespace = 'public'::regnamespace AND pronargs > 0",
        (name,)).fetchall()
    assert rows, name
    sigs = []
    for regproc, oids, names, modes, nargs, ndefaults in rows:
        # proargnames also names OUT and TABLE columns; proargtypes holds the input ones only.
        names = [n for n, mode in zip(names, modes or ["i"] * len(names)) if mode in ("i", "b", "v")]
        assert len(names) == len(oids) == nargs, regproc
        sigs.append(Signature(name, regproc, [make_arg(db, n, oid) for n, oid in zip(names, oids)],
                              nargs - ndefaults))
    return sigs


# ---------------------------------------------------------------------------
# bugs found here and fixed: their repros stay as regression tests (test_former_bug)

FORMER_BUGS = [
    # an infinite week made generate_series(v_week, v_week + 6, '1 day') endless
    "SELECT get_weekly_game_data('alice', 'infinity')",
    "SELECT get_weekly_game_data('alice', NULL, 'infinity')",
    "SELECT get_game_data('alice', 'slots', '-infinity')",
    # extract(isoyear FROM infinity)::integer raised 0A000
    "SELECT * FROM get_week_boundaries('infinity')",
    # walked every calendar week up to an infinite bound
    "SELECT rebuild_share_aggregates('2020-01-06', 'infinity')",
    # an explicit NULL p_now reached a NOT NULL column (23502)
    "SELECT * FROM record_game_session('alice', 'slots', '{}', '2026-11-16', NULL)",
    # infinite weeks were drawn and stored
    "SELECT * FROM run_lottery_draw('-infinity')",
    "SELECT * FROM run_lottery_draw(NULL, 'infinity')",
]


# ---------------------------------------------------------------------------
# the check

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
short = _repr.repr


def check_call(db, query: sql.Composable, params: list, what: str) -> None:
    """The call returns, or raises an accepted SQLSTATE; the test transaction survives either way."""
    try:
        # A SAVEPOINT, rolled back even on success: an error does not abort the test's
        # transaction, and every call sees the same database (no rate limit builds up).
        # The rows are not fetched: the server has computed (and printed) all of them by
        # then, and psycopg could not load a date such as -infinity into Python.
        with db.transaction(force_rollback=True):
            db.execute(query, params)
    except psycopg.Error as exc:
        assert exc.sqlstate in ACCEPTED, (
            f"{what} raised {exc.sqlstate} {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def run(db, sig: Signature, values: list) -> None:
    query, params = sig.call(values)
    check_call(db, query, params, f"{sig.regprocedure} with {short(tuple(values))}")


@pytest.fixture
def hostile_db(db):
    db.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
    return db


@pytest.mark.parametrize("name", FUNCTIONS)
def test_boundary_values(hostile_db, name):
    """Every edge value of each argument's type, one argument at a time."""
    ran = 0
    for sig in signatures(hostile_db, name):
        for typical in itertools.product(*(arg.typicals for arg in sig.args)):
            for i, arg in enumerate(sig.args):
                for value in arg.specials():
                    run(hostile_db, sig, [*typical[:i], value, *typical[i + 1:]])
                    ran += 1
    assert ran > 0


@pytest.mark.parametrize("name", FUNCTIONS)
def test_random_values(hostile_db, name):
    """Hypothesis: valid and hostile values in all arguments at once."""
    for sig in signatures(hostile_db, name):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                  phases=[Phase.explicit, Phase.generate, Phase.shrink],
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                         HealthCheck.data_too_large, HealthCheck.large_base_example])
        @given(values=st.tuples(*(arg.strategy() for arg in sig.args)),
               count=st.integers(sig.required, len(sig.args)))
        def call(values, count):
            run(hostile_db, sig, list(values[:count]))
        call()


@pytest.mark.parametrize("repro", FORMER_BUGS)
def test_former_bug(db, repro):
    db.execute("SET LOCAL statement_timeout = '5s'")
    check_call(db, sql.SQL(repro), [], repro)
