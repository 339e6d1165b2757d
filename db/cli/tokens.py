"""`lottery token` and `lottery welcome`: tokens for local use (core.tokens) and what
`make run` prints to get started."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click
import psycopg

from core.tokens import TokenSettings, issue_token
from db.cli.common import CliError, connect, database_url, database_url_option

DEFAULT_TTL = 86400

WELCOME_USER_SQL = """
    -- Whose token to print: the best of the last draw who is also mining the open
    -- week (every endpoint then shows data), else the last winner, else the leader.
    WITH last_draw AS (
        SELECT id, week_start FROM lottery_draws WHERE status = 'completed'
        ORDER BY week_start DESC LIMIT 1)
    (SELECT r.user_id, 'rank ' || r.rank || ' in the draw of the week of '
                       || lottery_week_at(d.week_start) || ', mining this week too'
     FROM last_draw d JOIN lottery_results r ON r.draw_id = d.id
     JOIN share_weekly_best o ON o.user_id = r.user_id AND o.week_start = lottery_week_at(now())
     ORDER BY r.rank LIMIT 1)
    UNION ALL
    (SELECT r.user_id, 'rank ' || r.rank || ' in the draw of the week of ' || lottery_week_at(d.week_start)
     FROM last_draw d JOIN lottery_results r ON r.draw_id = d.id
     ORDER BY r.rank LIMIT 1)
    UNION ALL
    (SELECT user_id, 'leading the open week' FROM ranked_week(lottery_week_at(now())) WHERE rank = 1)
    LIMIT 1
"""
LAST_DRAWN_WEEK_SQL = "SELECT lottery_week_at(max(week_start)) FROM lottery_draws WHERE status = 'completed'"
TOKEN_HINT = ("sign with the key of the API that checks the token, e.g. JWT_SECRET=... lottery token --user ID; "
              "for the API of `make run`: make token USER=ID (ADMIN=1 for an admin token)")


def welcome_user(conn: psycopg.Connection) -> tuple[str, str] | None:
    """(user id, why) of the user worth looking at, or None in an empty database."""
    return conn.execute(WELCOME_USER_SQL).fetchone()


def signing_env() -> str:
    """The environment `lottery token` needs to sign as this process does, as shell words."""
    settings = TokenSettings.from_env()
    words = [] if settings.algorithm == "HS256" else [f"JWT_ALGORITHM={shlex.quote(settings.algorithm)}"]
    if settings.is_hmac:
        words.append(f"JWT_SECRET={shlex.quote(settings.secret or '...')}")
    else:
        raw = os.environ.get("JWT_PRIVATE_KEY", "")
        words.append("JWT_PRIVATE_KEY=" + ('"$JWT_PRIVATE_KEY"' if "-----BEGIN" in raw or not raw
                                           else shlex.quote(raw)))
    return " ".join(words)


def lottery_command() -> str:
    """How to run this command from the current directory: the virtualenv's script."""
    script = Path(sys.executable).with_name("lottery")
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m db.cli"
    try:
        path = str(script.relative_to(Path.cwd()))
    except ValueError:
        path = str(script)
    return shlex.quote(path if "/" in path else "./" + path)


def pick_demo_user() -> str:
    """The user `lottery welcome` shows, said on stderr (stdout keeps the token alone)."""
    fix = "give --user ID (make token USER=ID), or start the local cluster with its demo week: make run"
    url = database_url()
    try:
        with connect(url, autocommit=True) as conn:
            row = welcome_user(conn)
    except CliError as exc:
        raise CliError(f"cannot pick the demo user: {exc.format_message()}", hint=fix) from exc
    except psycopg.Error as exc:
        raise CliError(f"cannot pick the demo user: {exc.sqlstate}: {str(exc).strip()}", hint=fix) from exc
    if row is None:
        raise CliError("no demo user: the database has no draw and no share this week", hint=fix)
    click.echo(f"note: a token for {row[0]}, {row[1]} (the user `lottery welcome` shows); "
               "--user ID (make token USER=ID) for another", err=True)
    return row[0]


def sign(user: str, admin: bool, ttl: int) -> str:
    try:
        return issue_token(user, admin=admin, ttl_seconds=ttl)
    except Exception as exc:  # configuration problems (JWT_SECRET unset, bad key, ...)
        raise CliError(f"cannot issue a token: {exc}", hint=TOKEN_HINT) from exc


@click.command("token")
@click.option("--user", metavar="ID", help="The user id (the token's sub).")
@click.option("--demo-user", is_flag=True,
              help="The user `lottery welcome` shows (the last draw's best who mines this week); needs the database.")
@click.option("--admin", is_flag=True, help="An admin token.")
@click.option("--ttl", type=click.IntRange(min=1), default=DEFAULT_TTL, metavar="SECONDS", show_default=True,
              help="Lifetime in seconds.")
@database_url_option()
def token_command(user: str | None, demo_user: bool, admin: bool, ttl: int) -> int:
    """Print a JWT for local use.

    Signed with JWT_SECRET / JWT_ALGORITHM (or JWT_PRIVATE_KEY for an asymmetric
    algorithm) as core.tokens.issue_token does, for curl and the frontend in
    development. Needs no database, except for --demo-user. The token alone goes
    to stdout: TOKEN=$(lottery token --user ID).
    """
    if (user is None) == (not demo_user):
        raise click.UsageError("give --user ID or --demo-user (one of them)")
    if demo_user:
        user = pick_demo_user()
    click.echo(sign(user, admin, ttl))
    return 0


def print_try_lines(base: str, token: str | None, week) -> None:
    auth = '-H "Authorization: Bearer $TOKEN" '
    click.echo("try:")
    click.echo(f"  TOKEN={token or '...'}")
    click.echo(f"  curl -s {auth}{base}/api/lottery/current")
    if week:
        click.echo(f"  curl -s {auth}{base}/api/lottery/week/{week}")
    click.echo(f"  curl -s {auth}{base}/api/lottery/stats")
    click.echo(f"  curl -s {auth}{base}/api/games/weekly-data")
    click.echo(f"  curl -s {auth}{base}/api/games/weekly-data/horse_race")
    click.echo(f"  curl -s {auth}-H 'Content-Type: application/json' "
               f"-d '{{\"gameType\": \"slots\", \"resultData\": {{\"won\": true}}}}' {base}/api/games/play")
    click.echo(f"  curl -s {auth}'{base}/api/games/history?limit=10'")


@click.command("welcome")
@click.option("--port", type=click.IntRange(min=1), default=8000, metavar="PORT", show_default=True,
              help="The API's port.")
@click.option("--host", default="127.0.0.1", metavar="HOST", show_default=True, help="The API's host.")
@click.option("--user", metavar="ID", help="The user to show (default: the last draw's winner).")
@click.option("--ttl", type=click.IntRange(min=1), default=DEFAULT_TTL, metavar="SECONDS", show_default=True,
              help="The token's lifetime.")
@database_url_option()
def welcome_command(port: int, host: str, user: str | None, ttl: int) -> int:
    """Print a token and curl lines for the local API.

    For `make run`: the API's address, a user worth looking at (the last draw's
    best who is mining the open week, else the last winner, else the open week's
    leader), a token for them, a curl line per endpoint, and the command that
    makes an admin token, with the signing secret it needs.
    """
    base = f"http://{host}:{port}"
    url = database_url()
    why, name, week = "", None, None
    try:
        with connect(url, autocommit=True) as conn:
            if user is None:
                user, why = welcome_user(conn) or (None, "")
            if user is not None:
                name = conn.execute("SELECT user_display_name(%s)", (user,)).fetchone()[0]
            week = conn.execute(LAST_DRAWN_WEEK_SQL).fetchone()[0]
    except (CliError, psycopg.Error) as exc:
        click.echo(f"note: could not read the database ({exc})", err=True)
    user = user or "alice"
    token = None
    try:
        token = sign(user, admin=False, ttl=ttl)
    except CliError as exc:  # no JWT_SECRET: the rest is still useful
        click.echo(f"note: no token ({exc.format_message()}); {TOKEN_HINT}", err=True)

    click.echo(f"API:    {base}  (health {base}/healthz, OpenAPI {base}/openapi.json)")
    click.echo(f"user:   {user}" + (f" ({name})" if name else "") + (f", {why}" if why else ""))
    if token:
        click.echo(f"token:  {token}")
        click.echo(f"        valid {ttl // 3600} h")
        click.echo(f"page:   {base}/play#token={token}")
    print_try_lines(base, token, week)
    click.echo(f"  WebSocket: ws://{host}:{port}/ws?token=$TOKEN")
    click.echo("admin: a token with the admin claim, for the draw endpoint (paste as it is, from this directory):")
    click.echo(f"  ADMIN_TOKEN=$({signing_env()} {lottery_command()} token --user {shlex.quote(user)} --admin)")
    if week:
        click.echo(f"  curl -s -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" "
                   f"'{base}/api/admin/lottery/draw?week={week}'")
    return 0
