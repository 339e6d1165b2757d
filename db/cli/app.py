"""The `lottery` command group and its entry point, main()."""

from __future__ import annotations

from typing import Sequence

import click

from db.cli.common import database_url_option
from db.cli.demo import demo_command
from db.cli.draws import draw_command, status_command
from db.cli.fold import fold_command
from db.cli.ingest import ingest_command
from db.cli.tokens import token_command, welcome_command

EPILOG = """\b
Examples:
  lottery status
  lottery draw --week 2026-11-09
  lottery draw --due
  lottery ingest /var/log/ckpool/events.jsonl
  lottery demo --miners 200 --shares 100 --also-open-week --seed 42
  lottery token --user bc1qexample --ttl 3600
  lottery welcome --port 8000
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@database_url_option(envvar="DATABASE_URL")
def lottery() -> None:
    """Operate the weekly lottery database: draws, status, event loading, demo data, tokens.

    The database is DATABASE_URL (postgresql://user@host:port/dbname) unless
    --database-url is given, before or after the command. Every time is shown
    in UTC. Errors from the database are printed as `error SQLSTATE: message`
    and `hint: ...` on stderr with exit status 1; bad usage exits with status 2,
    an interrupt with 130.
    """


for command in (draw_command, status_command, fold_command, ingest_command, demo_command, token_command,
                welcome_command):
    lottery.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command and returns its exit status; bad usage exits with status 2."""
    try:
        return lottery.main(args=list(argv) if argv is not None else None, prog_name="lottery",
                            standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C (Click has already ended the line)
        click.echo("interrupted", err=True)
        return 130
