"""Apply the database: the binding, migrations, every function file, event partitions, then the pg_cron jobs.

    python -m db.apply [--no-schedule] [--binding NAME|FILE]   (DATABASE_URL names the database)

First the binding is chosen from the catalog (db/binding/detect.sql), before
anything is written: "platform" when the platform's users, xp_ledger,
user_gamification and notifications are there, "standalone" when none of them is;
LOTTERY_BINDING (or --binding) names one instead: standalone, platform, or a
deployment's own .sql file defining the same functions. The binding file is
loaded before db/functions/, in the same transaction.

Running it twice changes nothing: migrations are applied once (yoyo), function
files are reloaded with CREATE OR REPLACE every time, and pg_cron jobs are
upserted by name.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from yoyo import get_backend, read_migrations

DB_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = DB_DIR / "migrations"
FUNCTIONS_DIR = DB_DIR / "functions"
BINDING_DIR = DB_DIR / "binding"
BINDINGS = ("standalone", "platform")
# The binding interface: every binding file defines the functions standalone.sql does.
BINDING_INTERFACE = BINDING_DIR / "standalone.sql"
_DEFINED = re.compile(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+(\w+)\s*\(", re.I)

# pg_cron jobs, by name: (schedule in UTC, command). The draw at Monday 00:01, an
# hourly catch-up for missed weeks, and daily upkeep of the weekly event partitions
# (created ahead before the week starts, expired after the draw). Each command is
# run_scheduled_job (db/functions/95_operations.sql), which runs the job and records
# its outcome in this database's scheduled_job_runs, where lottery_operations() reads it.
CRON_JOBS = {name: (schedule, f"CALL run_scheduled_job('{name}')") for name, schedule in (
    ("lottery-draw", "1 0 * * 1"),
    ("lottery-catchup", "11 * * * *"),
    ("lottery-partitions", "7 0 * * *"),
)}
# The background fold (fold_events_for, db/functions/22_share_fold.sql): pg_cron
# starts it every minute and it folds, committing batch by batch, for 55 s of it;
# a run still at work when the next starts makes the newcomer return at once.
CRON_JOBS["lottery-fold"] = ("* * * * *", "CALL fold_events_for(55)")


def yoyo_url(database_url: str) -> str:
    """yoyo wants its own scheme to pick the psycopg 3 driver."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise SystemExit(f"DATABASE_URL must be a postgresql:// URL, got {database_url!r}")
    return "postgresql+psycopg://" + rest


def url_for_database(url: str, dbname: str) -> str:
    """The same connection settings as `url`, for another database on that server."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def apply_migrations(database_url: str) -> list[str]:
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        # Closed now, not whenever the backend is collected: an idle session left on
        # the database keeps it from being a template (CREATE DATABASE ... TEMPLATE).
        backend.connection.close()
    return [m.id for m in pending]


@dataclass(frozen=True)
class Binding:
    """The binding an apply loads: its name, its file, and how it was chosen."""
    name: str
    path: Path
    chosen: str     # "chosen from the catalog" or "named by LOTTERY_BINDING"
    found: str      # the tables the catalog showed, with their user key


def functions_defined(path: Path) -> set[str]:
    return set(_DEFINED.findall(path.read_text()))


def choose_binding(conn: psycopg.Connection, named: str | None = None) -> Binding:
    """The binding for this database (db/binding/detect.sql), or the one `named`.
    Refuses, before anything is written, a database holding part of the platform only."""
    detected, found, missing = conn.execute((BINDING_DIR / "detect.sql").read_text()).fetchone()
    if named:
        path = BINDING_DIR / f"{named}.sql" if named in BINDINGS else Path(named)
        if not path.is_file():
            raise SystemExit(f"binding: LOTTERY_BINDING={named!r} is neither {' nor '.join(BINDINGS)} "
                             "nor a .sql file")
        lacking = functions_defined(BINDING_INTERFACE) - functions_defined(path)
        if lacking:
            raise SystemExit(f"binding: {path} does not define {', '.join(sorted(lacking))} "
                             f"(every binding defines the functions of {BINDING_INTERFACE.relative_to(DB_DIR.parent)})")
        name = named if named in BINDINGS else path.stem
        return Binding(name, path, "named by LOTTERY_BINDING", found)
    if detected is None:
        raise SystemExit(
            f"binding: neither fits this database, nothing was applied: it has part of the platform's "
            f"tables ({found}) but lacks {missing}. Complete the platform's schema, or name a binding "
            f"with LOTTERY_BINDING=standalone|platform|FILE.sql (docs/platform.md: Installing into the platform).")
    return Binding(detected, BINDING_DIR / f"{detected}.sql", "chosen from the catalog", found)


def function_files() -> list[Path]:
    return sorted(FUNCTIONS_DIR.glob("*.sql"))


def load_functions(conn: psycopg.Connection, binding: Binding | None = None) -> int:
    """Reload the binding (default: the catalog's choice), then every function file, in one
    transaction: all or none. The binding goes first: functions of db/functions/ call its functions."""
    files = [(binding or choose_binding(conn)).path, *function_files()]
    with conn.transaction():
        for path in files:
            try:
                conn.execute(path.read_text())
            except psycopg.Error as exc:
                where = path.relative_to(DB_DIR.parent) if path.is_relative_to(DB_DIR.parent) else path
                raise SystemExit(f"{where}: {exc}") from exc
    return len(files) - 1


def schedule_draws(conn: psycopg.Connection, database_url: str, log) -> bool:
    """Upsert the pg_cron jobs in cron.database_name, targeting this database."""
    cron_db = conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()[0]
    dbname = conn.info.dbname
    if not cron_db:
        log("pg_cron is not loaded on this server (shared_preload_libraries): "
            "the weekly draw is NOT scheduled. Run SELECT run_due_draws(); yourself "
            "(and SELECT maintain_event_partitions(); daily), or load pg_cron and apply again.")
        return False
    try:
        with psycopg.connect(url_for_database(database_url, cron_db), autocommit=True) as cron:
            cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
            for name, (schedule, command) in CRON_JOBS.items():
                cron.execute(
                    "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                    (f"{name}:{dbname}", schedule, command, dbname),
                )
    except psycopg.Error as exc:
        log(f"pg_cron could not be set up in database {cron_db!r} ({exc.sqlstate}: {exc}): "
            "the weekly draw is NOT scheduled.")
        return False
    log(f"pg_cron: draw jobs scheduled in {cron_db!r} for database {dbname!r} "
        f"({', '.join(f'{n} {s}' for n, (s, _) in CRON_JOBS.items())}, UTC)")
    return True


def apply(database_url: str, schedule: bool = True, log=print, binding: str | None = None) -> None:
    """`binding`: a name or file that overrides the catalog's choice (LOTTERY_BINDING)."""
    with psycopg.connect(database_url) as conn:
        chosen = choose_binding(conn, binding)    # before anything is written
    applied = apply_migrations(database_url)
    log(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ", none pending"))
    log(f"binding: {chosen.name} ({chosen.chosen}; found {chosen.found})")
    with psycopg.connect(database_url) as conn:
        count = load_functions(conn, chosen)
        log(f"functions: {count} files reloaded from {FUNCTIONS_DIR.relative_to(DB_DIR.parent)}/")
        # At once, not at the job's next run: this week's partition and the next ones.
        with conn.transaction():
            partitions = conn.execute("SELECT maintain_event_partitions()").fetchone()[0]
        if partitions["created"] or partitions["dropped"]:
            log(f"partitions: {len(partitions['created'])} created, {len(partitions['dropped'])} dropped")
        with conn.transaction():
            adopted = conn.execute("SELECT adopt_existing_events()").fetchone()[0]
        if adopted:
            log(f"aggregates: built from {adopted} existing events")
        # What arrived while the functions were being reloaded, or before any fold ran.
        with conn.transaction():
            folded = conn.execute("SELECT fold_pending_events()").fetchone()[0]
        if folded:
            log(f"fold: {folded} pending events folded")
        if schedule:
            schedule_draws(conn, database_url, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-schedule", action="store_true", help="do not register pg_cron jobs")
    parser.add_argument("--binding", default=os.environ.get("LOTTERY_BINDING") or None,
                        help="standalone, platform, or a .sql file of the same functions "
                             "(default: LOTTERY_BINDING, else chosen from the catalog)")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/lottery)", file=sys.stderr)
        return 2
    apply(database_url, schedule=not args.no_schedule, binding=args.binding)
    return 0


if __name__ == "__main__":
    sys.exit(main())
