"""A private PostgreSQL 15 cluster with pg_cron, for `make run` and the tests.

    python -m db.cluster start DATADIR PORT
    python -m db.cluster stop DATADIR

PostgreSQL refuses to run as root; when we are root, initdb, pg_ctl and the
server run as the `postgres` system user (which owns DATADIR).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    # plpgsql_check (Debian: postgresql-15-plpgsql-check) gives the tests the PL/pgSQL
    # profiler behind the coverage report; preloaded so the profile lives in shared memory
    # (plpgsql_check 2.3 ignores profiler_max_shared_chunks from this file: the default
    # 15000 chunks, ~24 MB, hold 30 statements each, plenty for every test database).
    "shared_preload_libraries": "'pg_cron,plpgsql,plpgsql_check'",
    # Off here, so `make run` and the benchmarks run unprofiled; tests/plpgsql_coverage.py
    # turns it on for the test cluster.
    "plpgsql_check.profiler": "off",
    # pg_cron lives in the stable `postgres` database and schedules into the
    # app databases with cron.schedule_in_database.
    "cron.database_name": "'postgres'",
    "cron.use_background_workers": "on",
    "max_worker_processes": "32",
    "max_connections": "200",
    "timezone": "'UTC'",
    "fsync": "on",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _give_to_postgres(path: Path) -> None:
    """As root: let the postgres user own PATH and traverse every ancestor."""
    if os.geteuid() != 0:
        return
    shutil.chown(path, "postgres", "postgres")
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def is_running(datadir: Path) -> bool:
    if not (datadir / "PG_VERSION").exists():
        return False
    result = subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "status", "-D", str(datadir)]),
                            capture_output=True)
    return result.returncode == 0


def init(datadir: Path, overrides: dict[str, str] | None = None) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    _give_to_postgres(datadir)
    datadir.chmod(0o700)
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, stdout=subprocess.DEVNULL)
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.write("\n# db/cluster.py\n")
        for key, value in {**SETTINGS, **(overrides or {})}.items():
            conf.write(f"{key} = {value}\n")


def start(datadir: Path, port: int, overrides: dict[str, str] | None = None) -> None:
    """Start the cluster, creating it first (with SETTINGS, then `overrides`) when absent."""
    datadir = datadir.resolve()
    if not (datadir / "PG_VERSION").exists():
        init(datadir, overrides)
    if is_running(datadir):
        return
    log = datadir / "server.log"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(datadir),
                                 "-l", str(log),
                                 "-o", f"-p {port} -k {datadir}"]),
                   check=True, stdout=subprocess.DEVNULL)


def standby(primary_port: int, datadir: Path, port: int) -> None:
    """Make DATADIR a streaming hot standby of the cluster of this module on 127.0.0.1:PRIMARY_PORT
    and start it on PORT (it inherits the primary's settings; read-only queries only).

    pg_basebackup -R writes standby.signal and primary_conninfo; -X stream brings the WAL
    written during the copy. The cluster's pg_hba (initdb --auth=trust) already trusts
    replication connections from 127.0.0.1. DATADIR must be absent or empty.
    """
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    _give_to_postgres(datadir)
    datadir.chmod(0o700)
    # -c fast: a spread checkpoint would hold the backup back for up to minutes.
    subprocess.run(_as_postgres([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port),
                                 "-U", "postgres", "-D", str(datadir), "-R", "-X", "stream", "-c", "fast"]),
                   check=True, stdout=subprocess.DEVNULL)
    (datadir / "server.log").unlink(missing_ok=True)  # the primary's log, copied along
    start(datadir, port)  # PG_VERSION came with the copy: no initdb


def stop(datadir: Path, mode: str = "fast") -> None:
    datadir = datadir.resolve()
    if is_running(datadir):
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(datadir)]),
                       check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("start", "stop", "status"):
        print(__doc__, file=sys.stderr)
        return 2
    datadir = Path(argv[1])
    if argv[0] == "start":
        start(datadir, int(argv[2]) if len(argv) > 2 else 5432)
    elif argv[0] == "stop":
        stop(datadir)
    else:
        print("running" if is_running(datadir) else "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
