"""The first minutes with the `lottery` command and the Makefile: help that lists
everything with real values, tokens for the right user, commands that work as printed,
and a way to the local database when DATABASE_URL is missing."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import jwt
import psycopg

from db import cli
from db.cli.app import lottery
from db.cli.common import MAKE_CLUSTER_URL
from db.cli.demo_data import Week
from tests.helpers import add_shares

ROOT = Path(__file__).resolve().parent.parent
SECRET = "first-minutes-secret-that-is-long-enough-for-hs256"
# What make must not take from the caller's environment in these tests.
MAKE_ENV_DROPPED = ("DATABASE_URL", "JWT_SECRET", "JWT_ALGORITHM", "MAKEFLAGS", "PGPORT", "DBNAME", "HTTP_PORT",
                    "PGDATA", "USER")


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in MAKE_ENV_DROPPED}
    return subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def drawn_week(url: str) -> str:
    """Three miners in the last closed week, drawn; returns the winner."""
    with psycopg.connect(url) as conn:
        start = conn.execute("SELECT week_start FROM get_week_boundaries(now() - interval '7 days')").fetchone()[0]
        add_shares(conn, ("w-one", 9000.0, start + dt.timedelta(hours=1)), ("w-two", 500.0, start),
                   ("w-three", 70.0, start))
        conn.execute("SELECT run_due_draws()")
    return "w-one"


def test_help_lists_every_command_and_ingest_help_holds_the_input_spec(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert sorted(lottery.commands) == ["demo", "draw", "fold", "ingest", "status", "token", "welcome"]
    for name in lottery.commands:
        assert re.search(rf"^  {name} ", text, re.M), name
    assert cli.main(["ingest", "--help"]) == 0
    text = capsys.readouterr().out
    for words in ('"event_type"', '"data"', '"createdate"', "share_event_problem()", "--start-line",
                  "ingested N lines: A accepted shares, R rejected shares, E other events, M malformed"):
        assert words in text, words


def test_the_make_cluster_url_is_the_makefiles(tmp_path):
    result = make("--eval", "print-local-url: ; @echo $(LOCAL_DATABASE_URL)", "print-local-url")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == MAKE_CLUSTER_URL


def test_without_a_database_url_the_make_cluster_is_suggested(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for argv in (["status"], ["draw"], ["demo"], ["welcome"], ["ingest", "-"], ["token", "--demo-user"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: no database: set DATABASE_URL or pass --database-url"), argv
        assert f"hint: the local cluster of `make db` and `make run` is DATABASE_URL={MAKE_CLUSTER_URL}" in err


def test_make_help_prints_values_not_variable_names():
    result = make("help", "PGPORT=54999", "HTTP_PORT=8099", "PGDATA=/tmp/pgdata-of-help")
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout
    assert "(/tmp/pgdata-of-help, port 54999)" in result.stdout
    assert "on 127.0.0.1:8099" in result.stdout
    assert "postgresql://postgres@127.0.0.1:54999/lottery" in result.stdout


def test_make_token_without_user_signs_for_the_demo_user_and_says_so(fresh_db_url):
    winner = drawn_week(fresh_db_url)
    # The shell's own $USER is nobody the API knows: it must not end up in the token.
    result = make("token", f"DATABASE_URL={fresh_db_url}", f"JWT_SECRET={SECRET}", USER="shell-login-name")
    assert result.returncode == 0, result.stderr
    assert jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])["sub"] == winner
    assert f"note: a token for {winner}, rank 1 in the draw of the week of " in result.stderr
    assert "make token USER=ID" in result.stderr

    result = make("token", "USER=alice", "ADMIN=1", f"JWT_SECRET={SECRET}", USER="shell-login-name")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["admin"] is True
    assert result.stderr == ""


def test_make_token_without_user_and_without_a_database_says_what_to_do(pg_cluster):
    result = make("token", "DATABASE_URL=postgresql://postgres@127.0.0.1:1/nowhere", f"JWT_SECRET={SECRET}")
    assert result.returncode != 0 and result.stdout == ""
    assert "error: cannot pick the demo user: cannot connect to the database" in result.stderr
    assert "hint: give --user ID (make token USER=ID)" in result.stderr


def test_the_admin_command_welcome_prints_works_as_pasted(fresh_db_url, capsys, monkeypatch):
    winner = drawn_week(fresh_db_url)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_ALGORITHM", raising=False)
    assert cli.main(["--database-url", fresh_db_url, "welcome", "--port", "8123"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    admin = next(line.strip() for line in lines if line.strip().startswith("ADMIN_TOKEN=$("))
    assert "curl -s -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" 'http://127.0.0.1:8123/api/admin/lottery/draw?week=" \
        in out
    # A shell without JWT_SECRET or DATABASE_URL, as a new terminal would be.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_URL"))}
    result = subprocess.run(["bash", "-c", f'{admin} && echo "$ADMIN_TOKEN"'], env=clean, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == winner and claims["admin"] is True


def test_token_asks_for_one_user(capsys, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", SECRET)
    for argv in (["token"], ["token", "--user", "a", "--demo-user"]):
        try:
            cli.main(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"{argv} must be a usage error")
        assert "give --user ID or --demo-user" in capsys.readouterr().err


def test_token_without_a_secret_says_how_to_get_one(capsys, monkeypatch):
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("JWT_ALGORITHM", raising=False)
    assert cli.main(["token", "--user", "alice"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot issue a token: JWT_SECRET is not set\nhint: ")
    assert "make token USER=ID" in err


def test_the_demo_weeks_are_the_weeks_of_get_week_boundaries(db):
    for monday in (dt.date(2026, 11, 16), dt.date(2026, 12, 28), dt.date(2027, 1, 4), dt.date(2024, 2, 26),
                   dt.date(2009, 1, 5)):
        sql_week = db.execute(
            "SELECT lottery_week_at(week_start), week_start, week_end, "
            "(week_end_shown(lottery_week_at(week_start)) AT TIME ZONE 'UTC')::date "
            "FROM get_week_boundaries(%s::date + time '12:00' AT TIME ZONE 'UTC')", (monday,)).fetchone()
        assert Week.of(monday) == Week(*sql_week), monday
