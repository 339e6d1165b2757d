"""Fault tolerance of the weekly draw (db/functions/40_draw.sql) at full size.

* The whole server is killed (SIGKILL of the postmaster and of every process of its
  data directory) half-way through a draw of 100,000 participants; after restart
  nothing of the draw is visible, and the hourly catch-up (`SELECT run_due_draws()`,
  the pg_cron command) completes it exactly once, with the very results of a clean
  draw of the same data in a clone of the database.
* The same with only the drawing backend killed (SIGKILL: PostgreSQL then restarts
  every backend and runs crash recovery).
* Ingest is never blocked by a draw: share INSERTs for the drawn week and for the open
  week go through, under lock_timeout, while the draw runs and while its transaction
  is still open.

The week is loaded once (one INSERT of 125,000 shares) into a source database; the
clean draw runs in one clone of it and each test works in another, so all three see
the very same data.

The test cluster is shared by the whole session: every path restarts it (finally).
The PL/pgSQL profile (tests/plpgsql_coverage.py) lives in shared memory, which a crash
empties, so it is harvested just before each kill.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.helpers import wait_until

PARTICIPANTS = 100_000
SHARES = PARTICIPANTS + PARTICIPANTS // 4   # a quarter of the miners send two shares

# One INSERT: heavy-tailed difficulties (Pareto, alpha 1/1.2) rounded to two significant
# digits, so many miners tie on difficulty, and 1,500 distinct minutes, so some tie on
# (difficulty, time) as well and the user_id tie-break decides.
LOAD_WEEK = """
    INSERT INTO mining_events (ts, event_type, payload)
    SELECT lottery_week_start_ts(%(week)s) + make_interval(mins => (g * 37) %% 1500),
           'share_submitted',
           jsonb_build_object('user', 'u' || (g %% %(participants)s), 'worker', 'rig1',
                              'sdiff', round(d.x, 1 - floor(log(d.x))::integer),
                              'accepted', true)
    FROM generate_series(1, %(shares)s) AS g,
         LATERAL (SELECT floor(1000 / power(((g::bigint * 2654435761) %% 1000003 + 1)::float8 / 1000004,
                                            1.2))::numeric AS x) AS d"""

WEEK_CLAUSE = "week_start = lottery_week_start_ts(%(week)s)"
RESULTS = f"""
    SELECT r.user_id, r.rank, r.best_difficulty, r.best_share_at, r.best_hash, r.ticket_count, r.xp_awarded
    FROM lottery_results r JOIN lottery_draws d ON d.id = r.draw_id
    WHERE d.{WEEK_CLAUSE} ORDER BY r.rank"""
LEDGER = f"""
    SELECT x.user_id, x.amount, x.description
    FROM xp_transactions x JOIN lottery_draws d ON x.reference_id = d.id::text
    WHERE x.source = 'lottery' AND d.{WEEK_CLAUSE} ORDER BY x.user_id"""
TOP10 = "SELECT user_id, title, body FROM notifications ORDER BY user_id"

DEADLINE = 60.0   # seconds: generous bound of every wait below


# ---------------------------------------------------------------------------
# data and the clean draw


def load_week(conn: psycopg.Connection):
    """PARTICIPANTS miners in a week closed two weeks ago; commits; returns the week (a date)."""
    week = conn.execute("SELECT lottery_week_at(now()) - 14").fetchone()[0]
    conn.execute(LOAD_WEEK, {"week": week, "participants": PARTICIPANTS, "shares": SHARES})
    conn.commit()
    conn.execute("SELECT fold_pending_events()")  # as the background fold would, a moment later
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM (ANALYZE) share_weekly_best, share_daily_best")   # as autovacuum would, in a week
    conn.autocommit = False
    count, diffs, ties = conn.execute(
        "SELECT count(*), count(DISTINCT best_difficulty),"
        "       count(*) - count(DISTINCT (best_difficulty, best_at))"
        " FROM share_weekly_best WHERE week_start = %s", (week,)).fetchone()
    assert count == PARTICIPANTS >= 100_000
    assert diffs < count / 10 and ties > 100, "the data must exercise both tie-breaks"
    return week


def draw_outcome(conn: psycopg.Connection, week) -> dict:
    """Everything a draw of `week` leaves behind, draw ids aside."""
    params = {"week": week}
    return {
        # The digest differs between two draws of the same week (a random salt per result):
        # whether it verifies, and the results by user id, are what must be the same.
        "draws": conn.execute(f"SELECT status, total_participants, total_shares,"
                              f" results_digest = lottery_results_digest(id), forged_shares"
                              f" FROM lottery_draws"
                              f" WHERE {WEEK_CLAUSE}", params).fetchall(),
        "results": conn.execute(RESULTS, params).fetchall(),
        "ledger": conn.execute(LEDGER, params).fetchall(),
        "top10": conn.execute(TOP10).fetchall(),
        "rankings": conn.execute("SELECT user_id, rank, xp_awarded FROM weekly_rankings ORDER BY rank").fetchall(),
    }


def nothing_drawn(conn: psycopg.Connection) -> dict:
    """Counts of every table a draw writes: all zero when nothing of a draw is visible."""
    return dict(zip(
        ("lottery_draws", "lottery_results", "xp_transactions", "notifications", "weekly_rankings"),
        conn.execute("SELECT (SELECT count(*) FROM lottery_draws), (SELECT count(*) FROM lottery_results),"
                     " (SELECT count(*) FROM xp_transactions), (SELECT count(*) FROM notifications),"
                     " (SELECT count(*) FROM weekly_rankings)").fetchone()))


NOTHING = dict.fromkeys(("lottery_draws", "lottery_results", "xp_transactions", "notifications",
                         "weekly_rankings"), 0)


@dataclass
class Loaded:
    """The source database (the week loaded, nothing drawn) and the outcome of a clean draw of it."""
    dbname: str
    week: dt.date
    clean: dict
    draw_seconds: float


@pytest.fixture(scope="module")
def loaded(lottery_proc, pg_cluster):
    source = "draw_faults_source"
    with pg_cluster.clone(lottery_proc.template_dbname, source) as source_url:
        with psycopg.connect(source_url) as conn:
            week = load_week(conn)
        with pg_cluster.clone(source, "draw_faults_clean") as clean_url, psycopg.connect(clean_url) as conn:
            started = time.monotonic()
            drawn = conn.execute("SELECT status, total_participants FROM run_lottery_draw(%s, now())",
                                 (week,)).fetchone()
            conn.commit()
            seconds = time.monotonic() - started
            assert drawn == ("completed", PARTICIPANTS)
            clean = draw_outcome(conn, week)
        yield Loaded(source, week, clean, seconds)


@pytest.fixture
def week_db(loaded, pg_cluster, request) -> str:
    """URL of this test's own clone of the source database."""
    name = "draw_faults_" + request.node.name.removeprefix("test_")[:40]
    request.node.user_properties.append(("clean_draw_seconds", round(loaded.draw_seconds, 2)))
    with pg_cluster.clone(loaded.dbname, name) as url:
        yield url


def assert_catch_up_completes_once(url: str, week, clean: dict) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        made = conn.execute("SELECT week_start, status, total_participants FROM run_due_draws()").fetchall()
        assert len(made) == 1, made
        assert made[0][1:] == ("completed", PARTICIPANTS)
        assert conn.execute("SELECT lottery_week_at(%s)", (made[0][0],)).fetchone()[0] == week
        assert conn.execute("SELECT * FROM run_due_draws()").fetchall() == []   # the next hour: nothing due

        got = draw_outcome(conn, week)
        assert clean["draws"][0][3]                   # the SHA-256 of the ranked list
        assert got["draws"] == clean["draws"]
        assert len(got["results"]) == PARTICIPANTS
        assert got["results"] == clean["results"]     # user, rank, difficulty, time, tickets, XP
        assert got["ledger"] == clean["ledger"]       # one XP row per participant, same amounts
        assert len(got["ledger"]) == len({row[0] for row in got["ledger"]}) == PARTICIPANTS
        assert conn.execute("SELECT count(*) FROM xp_transactions").fetchone()[0] == PARTICIPANTS
        assert got["top10"] == clean["top10"] and len(got["top10"]) == 10
        assert got["rankings"] == clean["rankings"]


# ---------------------------------------------------------------------------
# processes


def accepts_connections(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def server_processes(datadir: str) -> list[int]:
    """Every live postgres process of datadir: each one runs with the data directory as its
    working directory, and keeps it even when orphaned by a killed postmaster."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if (os.readlink(f"/proc/{entry}/cwd") == datadir
                    and Path(f"/proc/{entry}/comm").read_text().strip() == "postgres" and alive(int(entry))):
                found.append(int(entry))
        except OSError:
            continue
    return found


def kill_server(datadir: str) -> None:
    """kill -9 of the whole server: the postmaster, then every process of its data directory."""
    postmaster = int((Path(datadir) / "postmaster.pid").read_text().splitlines()[0])
    os.kill(postmaster, signal.SIGKILL)

    def all_dead() -> bool:
        left = server_processes(datadir)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not left

    wait_until(all_dead, "every process of the killed server to die", DEADLINE, interval=0.02)


def remove_stale_lock_files(datadir: str) -> None:
    """Once every process of the server is dead: remove its lock files (postmaster.pid and the
    socket's .s.PGSQL.<port>.lock) when the PID in them is dead or a zombie. Where nothing
    reaps the killed postmaster (a container's PID 1 may not), its zombie keeps the PID
    "existing", and a new postmaster refuses to start beside such a lock file."""
    if server_processes(datadir):
        return
    pidfile = Path(datadir) / "postmaster.pid"
    directories = {Path(datadir)}
    try:
        lines = pidfile.read_text().splitlines()
        if len(lines) > 4 and lines[4].strip():
            directories.add(Path(lines[4].strip()))   # line 5: the socket directory
    except OSError:
        pass
    for lock in [pidfile, *(p for d in directories for p in d.glob(".s.PGSQL.*.lock"))]:
        try:
            if not alive(int(lock.read_text().splitlines()[0])):
                lock.unlink()
        except (OSError, ValueError, IndexError):
            continue


def restart_after_kill(pg_cluster, datadir: str) -> None:
    """Start the server again (a no-op when it still runs) and wait until it accepts connections."""
    for attempt in (1, 2):
        remove_stale_lock_files(datadir)
        try:
            pg_cluster.start()
            break
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
            time.sleep(1)   # e.g. a port still held: once more
    wait_until(lambda: accepts_connections(pg_cluster.url("postgres")), "the restarted server", DEADLINE,
               interval=0.1)


def save_plpgsql_profile(config, pg_cluster) -> None:
    """Under --plpgsql-cov: harvest the profiler counters of every database now, as the plugin
    does before a clean stop; a crash empties shared memory and would lose them."""
    plugin = config.pluginmanager.get_plugin("tests.plpgsql_coverage")
    state = config.stash.get(plugin._KEY, None) if plugin is not None else None
    if state is not None:
        state["collector"].harvest_cluster(pg_cluster.url("postgres"))


class Draw(threading.Thread):
    """`SELECT run_lottery_draw(week, now())` on its own connection, in the background."""

    def __init__(self, url: str, week, commit: bool = True):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(url, autocommit=commit)
        self.pid = self.conn.info.backend_pid
        self.week = week
        self.result = self.error = None

    def run(self) -> None:
        try:
            self.result = self.conn.execute("SELECT status, total_participants FROM run_lottery_draw(%s, now())",
                                            (self.week,)).fetchone()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def finish(self) -> None:
        self.join(DEADLINE)
        assert not self.is_alive(), "the draw did not end"

    def close(self) -> None:
        """Whatever happened: wait (bounded) for the thread, close the connection."""
        if self.ident is not None:
            self.join(DEADLINE)
        self.conn.close()


def wait_until_written(monitor: psycopg.Connection, draw: Draw, table: str, min_bytes: int) -> int:
    """Wait until the draw, still running, has written at least min_bytes of `table` (its file
    grows as the uncommitted rows go in, and other sessions see the size, not the rows)."""

    def written():
        assert draw.is_alive(), \
            f"the draw ended before writing {min_bytes} bytes of {table}: {draw.result or draw.error}"
        size = monitor.execute("SELECT pg_relation_size(%s)", (table,)).fetchone()[0]
        return size if size >= min_bytes else None

    wait_until(lambda: monitor.execute(
        "SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", (draw.pid,)).fetchone()[0],
        "the draw to be running", DEADLINE, interval=0.02)
    return written() or wait_until(written, f"the draw to write {table}", DEADLINE, interval=0.01)


# ---------------------------------------------------------------------------
# the tests


def crash_during_draw(url, loaded, pg_cluster, request, *, kill, table, min_bytes):
    """Start the draw of the loaded week, kill() it once it has written min_bytes of `table`,
    restart, check nothing is visible, run the catch-up and compare with the clean draw."""
    with psycopg.connect(url, autocommit=True) as admin:
        datadir = os.path.realpath(admin.execute("SHOW data_directory").fetchone()[0])
        admin.execute("CHECKPOINT")   # bounds crash recovery to the draw's own WAL
    save_plpgsql_profile(request.config, pg_cluster)

    draw = Draw(url, loaded.week)
    try:
        with psycopg.connect(url, autocommit=True) as monitor:
            draw.start()
            written = wait_until_written(monitor, draw, table, min_bytes)
            kill(draw, datadir)
        draw.finish()
    finally:
        try:
            draw.close()
        finally:
            restart_after_kill(pg_cluster, datadir)
    request.node.user_properties.append((f"{table}_bytes_at_kill", written))

    assert draw.result is None, f"the draw was not interrupted: {draw.result}"
    assert isinstance(draw.error, psycopg.OperationalError), repr(draw.error)

    with psycopg.connect(url, autocommit=True) as conn:
        assert nothing_drawn(conn) == NOTHING                       # nothing partial is visible
        assert conn.execute("SELECT count(*) FROM share_weekly_best").fetchone()[0] == PARTICIPANTS
    assert_catch_up_completes_once(url, loaded.week, loaded.clean)


def kill_the_server(draw: Draw, datadir: str) -> None:
    kill_server(datadir)


def kill_the_backend(draw: Draw, datadir: str) -> None:
    """kill -9 of the drawing backend alone: the postmaster then ends every other backend,
    runs crash recovery and accepts connections again (restart_after_kill waits for that)."""
    os.kill(draw.pid, signal.SIGKILL)


def test_server_killed_mid_draw_then_the_catch_up_draws_once_as_a_clean_draw(
        week_db, loaded, pg_cluster, request):
    # Killed while lottery_results fills (about a quarter of its rows written).
    crash_during_draw(week_db, loaded, pg_cluster, request,
                      kill=kill_the_server, table="lottery_results", min_bytes=3 * 2**20)


def test_backend_killed_mid_draw_then_the_catch_up_draws_once_as_a_clean_draw(
        week_db, loaded, pg_cluster, request):
    # Killed later: every result written, the XP ledger filling.
    crash_during_draw(week_db, loaded, pg_cluster, request,
                      kill=kill_the_backend, table="xp_transactions", min_bytes=2**20)


INGEST = """
    INSERT INTO mining_events (ts, event_type, payload) VALUES
        (%(late)s, 'share_submitted', jsonb_build_object('user', 'u1', 'sdiff', 1e15, 'accepted', true)),
        (%(late)s, 'share_submitted', jsonb_build_object('user', %(newcomer)s::text, 'sdiff', 5, 'accepted', true)),
        (%(late)s, 'share_submitted', jsonb_build_object('user', 'forger', 'sdiff', 1e6, 'accepted', true,
                                                          'hash', %(hash_of_1)s::text)),
        (now(), 'share_submitted', jsonb_build_object('user', 'u2', 'sdiff', 7, 'accepted', true)),
        (now(), 'share_submitted', jsonb_build_object('user', %(newcomer)s::text, 'sdiff', 9, 'accepted', true))"""

HASH_OF_DIFFICULTY_1 = "00000000ffff" + "0" * 52   # 'forger' claims 1e6: left out, tallied in event_weeks
SHARE_TABLES = ("mining_events", "share_daily_best", "share_weekly_best", "event_weeks")


def test_ingest_is_never_blocked_by_a_running_draw(week_db, loaded):
    url, closed = week_db, loaded.week
    with psycopg.connect(url) as conn:
        open_week, late = conn.execute(
            "SELECT lottery_week_at(now()), lottery_week_start_ts(%s) + interval '6 days 23 hours'",
            (closed,)).fetchone()    # late: the last hour of the closed week
    timings = []

    def ingest(ingester: psycopg.Connection, newcomer: str) -> None:
        started = time.monotonic()
        with ingester.transaction():   # one batch, as the collector sends them; lock_timeout: 2 s
            ingester.execute(INGEST, {"late": late, "newcomer": newcomer, "hash_of_1": HASH_OF_DIFFICULTY_1})
        timings.append(time.monotonic() - started)
        assert timings[-1] < 2.0, timings

    draw = Draw(url, closed, commit=False)   # the draw's transaction stays open until we commit
    try:
        with psycopg.connect(url, autocommit=True) as ingester, \
                psycopg.connect(url, autocommit=True) as monitor:
            ingester.execute("SET ROLE lottery_ingest")   # the collector's role: INSERT on mining_events only
            ingester.execute("SET lock_timeout = '2s'")

            draw.start()
            wait_until_written(monitor, draw, "lottery_results", 1)
            ingest(ingester, "newcomer-during-draw")       # while the draw statement runs
            assert draw.is_alive(), "the insert should have landed while the draw was running"

            draw.finish()
            assert draw.error is None and draw.result == ("completed", PARTICIPANTS)
            # The draw's transaction is still open and holds its locks: none of them may
            # stop the INSERT into mining_events.
            held = monitor.execute(
                "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.pid = %s AND l.granted AND c.relname = ANY(%s)"
                " AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')",
                (draw.pid, list(SHARE_TABLES))).fetchall()
            assert held == []
            ingest(ingester, "newcomer-before-commit")      # while the draw's transaction is open
            draw.conn.commit()
    finally:
        draw.close()

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT fold_pending_events()")   # the late shares, as the background fold takes them
        # The draw ranked what it read when it started; the late shares are all recorded.
        assert conn.execute("SELECT status, total_participants FROM lottery_draws").fetchall() == \
            [("completed", PARTICIPANTS)]
        assert conn.execute("SELECT count(*), count(DISTINCT user_id) FROM lottery_results").fetchone() == \
            (PARTICIPANTS, PARTICIPANTS)
        assert conn.execute("SELECT count(*) FROM xp_transactions").fetchone()[0] == PARTICIPANTS
        weekly = dict(conn.execute(
            "SELECT week_start, count(*) FROM share_weekly_best GROUP BY week_start").fetchall())
        assert weekly == {closed: PARTICIPANTS + 2, open_week: 3}
        assert conn.execute("SELECT best_difficulty FROM share_weekly_best WHERE week_start = %s"
                            " AND user_id = 'u1'", (closed,)).fetchone()[0] == 1e15
        assert conn.execute("SELECT week_start, forged_shares FROM event_weeks ORDER BY 1").fetchall() == \
            [(closed, 2), (open_week, 0)]
