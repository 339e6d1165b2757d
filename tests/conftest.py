"""Test harness: a real PostgreSQL 15 cluster with pg_cron, started by the tests.

* The cluster starts at session start in a temporary directory and stops at the end.
* `lottery_test_tmpl` is the template: every migration and function applied once.
* `db`: a connection to a database cloned once per session, inside a transaction
  that is rolled back after each test (fast; for most tests).
* `fresh_db`: a connection to a brand-new clone for this test only (for tests
  that commit: concurrency, NOTIFY, pg_cron).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

from db import apply as db_apply
from tests.helpers import fold_each_statement
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


@pytest.fixture(scope="session")
def shared_db_name(lottery_proc, pg_cluster):
    """One clone of the template for the rolled-back tests of the whole session."""
    with pg_cluster.clone(lottery_proc.template_dbname, "lottery_shared"):
        yield "lottery_shared"


@pytest.fixture
def db(shared_db_name):
    """A connection whose every change is rolled back after the test."""
    with psycopg.connect(make_conninfo(host=HOST, port=PORT, user=USER, dbname=shared_db_name)) as conn:
        fold_each_statement(conn)  # it never commits
        yield conn
        conn.rollback()


@pytest.fixture
def fresh_db_url(fresh_db) -> str:
    """URL of this test's own clone (the fresh_db connection stays open beside it)."""
    return database_url(fresh_db.info.dbname)
