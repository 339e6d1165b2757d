"""DATABASE_READ_URL on a real streaming hot standby of the test cluster.

The standby is a pg_basebackup of the running test cluster (db.cluster.standby), so it
replicates every database, this module's own clone included. Pausing WAL replay on it
freezes what it shows: a read that returns the frozen value was served by the standby,
and a write that succeeds while it is frozen (and read-only) went to the primary.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import psycopg
import pytest

from db import cluster
from tests.api.conftest import asgi_client
from tests.api.support import Shares, auth, make_settings
from tests.helpers import hash_for

pytestmark = pytest.mark.anyio

DBNAME = "lottery_replica"
TIMEOUT = 15.0  # seconds for the standby to replay what the primary committed


@dataclass(frozen=True)
class Replica:
    primary_url: str
    standby_url: str


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


def stop_immediately(datadir: Path) -> None:
    """pg_ctl stop -m immediate. Not cluster.stop: under --plpgsql-cov that first harvests
    the profiler counters of every database, which takes a CREATE SCHEMA a standby refuses."""
    if cluster.is_running(datadir):
        subprocess.run(cluster._as_postgres([str(cluster.PG_BIN / "pg_ctl"), "stop", "-w", "-m", "immediate",
                                             "-D", str(datadir)]), check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def replica(lottery_proc, pg_cluster):
    """A clone of the template on the test cluster, and a hot standby of that cluster."""
    with pg_cluster.clone(lottery_proc.template_dbname, DBNAME) as primary_url:
        datadir = Path(tempfile.mkdtemp(prefix="lottery-test-standby-")) / "data"
        port = cluster.free_port()
        try:
            cluster.standby(pg_cluster.port, datadir, port)
            yield Replica(primary_url, f"postgresql://{pg_cluster.user}@127.0.0.1:{port}/{DBNAME}")
        finally:
            stop_immediately(datadir)
            shutil.rmtree(datadir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def primary(replica):
    with psycopg.connect(replica.primary_url) as conn:
        yield conn


@pytest.fixture(scope="module")
def standby(replica):
    # autocommit: an open snapshot on a standby can hold replay back (recovery conflicts).
    with psycopg.connect(replica.standby_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def shares(primary) -> Shares:
    return Shares(primary)


@pytest.fixture(scope="module")
async def client(replica):
    async with asgi_client(make_settings(replica.primary_url, database_read_url=replica.standby_url)) as http:
        yield http


def primary_lsn(primary) -> str:
    lsn = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    primary.commit()
    return lsn


def wait_replayed(primary, standby) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    lsn = primary_lsn(primary)
    deadline = time.monotonic() + TIMEOUT
    while not standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
        assert time.monotonic() < deadline, f"the standby did not replay up to {lsn} in {TIMEOUT}s"
        time.sleep(0.05)


@contextlib.contextmanager
def replay_paused(standby):
    standby.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        standby.execute("SELECT pg_wal_replay_resume()")


def best_on_standby(standby, user: str):
    row = standby.execute("SELECT best_difficulty FROM share_weekly_best WHERE user_id = %s"
                          " AND week_start = lottery_week_at(now())", (user,)).fetchone()
    return row and row[0]


def test_standby_is_a_hot_standby_that_replays_commits(primary, standby, shares):
    assert standby.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    assert primary.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
    primary.commit()
    assert best_on_standby(standby, "carol") is None

    shares.add("carol", 700.0, hash_hex=hash_for(700.0))
    deadline = time.monotonic() + TIMEOUT
    while best_on_standby(standby, "carol") != 700:
        assert time.monotonic() < deadline, "a share committed on the primary never reached the standby"
        time.sleep(0.05)


async def test_reads_are_served_by_the_standby(client, primary, standby, shares):
    shares.add("alice", 1000.0, hash_hex=hash_for(1000.0))
    wait_replayed(primary, standby)
    response = await client.get("/api/games/weekly-data", headers=auth("alice"))
    assert response.status_code == 200, response.text
    assert response.json()["bestDifficulty"] == 1000

    with replay_paused(standby):
        better = shares.add("alice", 5000.0, hash_hex=hash_for(5000.0))
        committed = primary_lsn(primary)
        # The new share is on the primary and its WAL has reached the standby, unreplayed.
        assert shares.scalar("SELECT get_weekly_game_data('alice')->>'bestDifficulty'") == "5000"
        deadline = time.monotonic() + TIMEOUT
        while not standby.execute("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (committed,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the standby did not receive the new WAL"
            await anyio.sleep(0.05)
        assert standby.execute("SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", (committed,)).fetchone()[0]

        stale = (await client.get("/api/games/weekly-data", headers=auth("alice"))).json()
        assert stale["bestDifficulty"] == 1000 and stale["bestHash"] == hash_for(1000.0)

    deadline = time.monotonic() + TIMEOUT
    while True:
        fresh = (await client.get("/api/games/weekly-data", headers=auth("alice"))).json()
        if fresh["bestDifficulty"] == 5000:
            break
        assert time.monotonic() < deadline, f"the standby still serves {fresh['bestDifficulty']} after resume"
        await anyio.sleep(0.05)
    assert fresh["bestHash"] == better


async def test_writes_go_to_the_primary(client, primary, standby, shares):
    shares.add("dave", 300.0, hash_hex=hash_for(300.0))
    wait_replayed(primary, standby)
    with replay_paused(standby):
        response = await client.post("/api/games/play", headers=auth("dave"), json={"gameType": "hammer"})
        assert response.status_code == 201, response.text
        assert shares.scalar("SELECT count(*) FROM game_sessions WHERE user_id = 'dave'") == 1
        # The same call on the standby is refused: the read pool could not have served it.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as refused:
            standby.execute("SELECT record_game_session('dave', 'slots', '{}'::jsonb, NULL)")
        assert refused.value.sqlstate == "25006"


async def test_read_pool_is_connected_to_the_standby(client, replica, primary, standby):
    assert (await client.get("/healthz")).status_code == 200
    names_on = "SELECT array_agg(DISTINCT application_name) FROM pg_stat_activity WHERE datname = %s"
    on_standby = standby.execute(names_on, (DBNAME,)).fetchone()[0] or []
    on_primary = primary.execute(names_on, (DBNAME,)).fetchone()[0] or []
    primary.commit()
    assert "lottery-web-read" in on_standby
    assert "lottery-web-read" not in on_primary and "lottery-web-write" in on_primary
