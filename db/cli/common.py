"""What every command shares: the database option, connections and the errors that
end a command with a message and an exit status."""

from __future__ import annotations

import click
import psycopg

# The database of the local cluster `make db` / `make run` start (the Makefile's
# LOCAL_DATABASE_URL with its default PGPORT and DBNAME; tests/test_cli.py checks
# that the two agree).
MAKE_CLUSTER_URL = "postgresql://postgres@127.0.0.1:54329/lottery"

_URL_KEY = "lottery.database_url"
DATABASE_URL_HELP = "postgresql:// URL of the database (default: $DATABASE_URL)"


class CliError(click.ClickException):
    """A failure reported as `error: message` (and `hint: ...`), exit status 1."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


class NoDatabase(CliError):
    """No DATABASE_URL and no --database-url: bad usage, exit status 2."""

    exit_code = 2

    def __init__(self) -> None:
        super().__init__("no database: set DATABASE_URL or pass --database-url",
                         hint=f"the local cluster of `make db` and `make run` is DATABASE_URL={MAKE_CLUSTER_URL}")


def _remember_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # ctx.meta is shared by the group and its command: the command's own
    # --database-url, given after the command name, wins over the group's.
    if value:
        ctx.meta[_URL_KEY] = value
    return value


def database_url_option(envvar: str | None = None):
    """--database-url, accepted before and after the command name."""
    return click.option("--database-url", metavar="URL", envvar=envvar, show_envvar=False,
                        expose_value=False, callback=_remember_url, help=DATABASE_URL_HELP)


def database_url() -> str:
    """The URL the command runs against; NoDatabase when there is none."""
    url = click.get_current_context().meta.get(_URL_KEY)
    if not url:
        raise NoDatabase()
    return url


def connect(url: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(url, client_encoding="UTF8", **kwargs)
    except psycopg.OperationalError as exc:
        raise CliError(f"cannot connect to the database: {str(exc).strip()}") from exc
