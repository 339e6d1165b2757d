"""Test harness: a real PostgreSQL 15 cluster with pg_cron, started by the tests.

* The cluster starts at session start in a temporary directory and stops at the end.
* `lottery_test_tmpl` is the template: every migration and function applied once.
* `db`: a connection to a database cloned once per session, inside a transaction
  that is rolled back after each test (fast; for most tests).
* `fresh_db`: a connection to a brand-new clone for this test only (for tests
  that commit: concurrency, NOTIFY, pg_cron).
* The shared clones (`lottery_shared` behind `db`, `lottery_api_readonly` behind the
  read-only API tests) are fingerprinted: a test after which any of their tables
  differs (it committed something there) fails, and names the tables.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

from db import apply as db_apply
from db import cluster

HOST = "127.0.0.1"
USER = "postgres"

# --plpgsql-cov: PL/pgSQL profiling and the combined coverage table and gate.
pytest_plugins = ["tests.plpgsql_coverage"]


PORT = cluster.free_port()
_DATADIR = Path(tempfile.mkdtemp(prefix="lottery-test-pg-")) / "data"


def pytest_sessionstart(session):
    cluster.start(_DATADIR, PORT)


def pytest_sessionfinish(session, exitstatus):
    cluster.stop(_DATADIR, mode="immediate")
    shutil.rmtree(_DATADIR.parent, ignore_errors=True)


def database_url(dbname: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{dbname}"


def load_schema(host, port, user, dbname, password=None, **_):
    """pytest-postgresql loader: the template gets the whole apply step, pg_cron jobs aside
    (a job pointing at a template would block cloning it)."""
    db_apply.apply(database_url(dbname), schedule=False, log=lambda *_: None)


lottery_proc = factories.postgresql_noproc(
    host=HOST, port=PORT, user=USER, dbname="lottery_test", load=[load_schema])
fresh_db = factories.postgresql("lottery_proc")


class ClusterControl:
    """Stop and start the test cluster, for outage and restart tests."""

    host, port, user = HOST, PORT, USER

    def stop(self, mode: str = "fast") -> None:
        cluster.stop(_DATADIR, mode=mode)

    def start(self) -> None:
        cluster.start(_DATADIR, PORT)

    def url(self, dbname: str) -> str:
        return database_url(dbname)

    @contextlib.contextmanager
    def clone(self, template: str, name: str):
        """Database `name` cloned from `template` for the block; yields its URL."""
        janitor = DatabaseJanitor(user=USER, host=HOST, port=PORT, dbname=name, template_dbname=template)
        janitor.init()
        try:
            yield self.url(name)
        finally:
            janitor.drop()


@pytest.fixture(scope="session")
def pg_cluster() -> ClusterControl:
    return ClusterControl()


class SharedClone:
    """A clone that many tests use and none may change: the contents of its tables,
    fingerprinted, are compared after each test that used it."""

    # Every table of every schema but the system's, partitions included.
    TABLES = """
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1"""

    def __init__(self, url: str):
        self.url = url
        self.baseline = self.fingerprint()

    def fingerprint(self) -> dict[str, tuple[int, int]]:
        """Table -> (rows, sum of the rows' text hashes): a committed insert, update or
        delete changes it; a rolled-back one does not (sequences are left out: nextval
        is never rolled back)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = [t for (t,) in conn.execute(self.TABLES).fetchall()]
            query = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {}, count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) FROM {} AS t").format(
                    sql.Literal(table), sql.SQL(table)) for table in tables)
            return {table: (rows, digest) for table, rows, digest in conn.execute(query).fetchall()}

    def changes(self) -> list[str]:
        """The tables added, dropped or changed since the last call (which then becomes the baseline)."""
        now = self.fingerprint()
        changed = sorted(t for t in now.keys() | self.baseline.keys() if now.get(t) != self.baseline.get(t))
        self.baseline = now  # only the test that made the change fails, not every one after it
        return changed


# fixture name -> its clone, once the session has made it
_SHARED_CLONES: dict[str, SharedClone] = {}


@pytest.fixture(scope="session")
def shared_clone(lottery_proc, pg_cluster):
    """`with shared_clone(name, fixture) as url:` a clone of the template, named `name`,
    that the session fixture `fixture` hands out and every test using it must leave as it was."""
    @contextlib.contextmanager
    def clone(name: str, fixture: str):
        with pg_cluster.clone(lottery_proc.template_dbname, name) as url:
            _SHARED_CLONES[fixture] = SharedClone(url)
            try:
                yield url
            finally:
                del _SHARED_CLONES[fixture]
    return clone


@pytest.fixture(autouse=True)
def _shared_clones_left_unchanged(request):
    """Fails the test after which a shared clone it used holds other rows than before."""
    yield
    for fixture, clone in list(_SHARED_CLONES.items()):
        if fixture in request.fixturenames:
            changed = clone.changes()
            assert not changed, (f"this test left rows in the shared database {clone.url.rsplit('/', 1)[1]}"
                                 f" (tables {', '.join(changed)}): roll back, or use fresh_db")


@pytest.fixture(scope="session")
def shared_db_name(shared_clone):
    """One clone of the template for the rolled-back tests of the whole session."""
    with shared_clone("lottery_shared", "shared_db_name"):
        yield "lottery_shared"


@pytest.fixture
def db(shared_db_name):
    """A connection whose every change is rolled back after the test."""
    with psycopg.connect(make_conninfo(host=HOST, port=PORT, user=USER, dbname=shared_db_name)) as conn:
        yield conn
        conn.rollback()


@pytest.fixture
def fresh_db_url(fresh_db) -> str:
    """URL of this test's own clone (the fresh_db connection stays open beside it)."""
    return database_url(fresh_db.info.dbname)
