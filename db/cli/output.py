"""Output helpers shared by the commands: how times, difficulties and counts are
written, tables, progress bars and SQL errors. Every time is shown in UTC."""

from __future__ import annotations

import datetime as dt
import sys
from typing import IO, Sequence

import click
import psycopg
from tabulate import tabulate
from tqdm import tqdm

UTC = dt.timezone.utc


def fmt_ts(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_diff(value: float | None) -> str:
    """A difficulty the way pool dashboards show it: 3 significant digits and an SI suffix."""
    if value is None:
        return "-"
    for suffix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.2f}"


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def week_label(first_day: dt.date, last_day: dt.date) -> str:
    """A week as its first and last day, both as SQL gives them (see WEEK_DAYS_SQL)."""
    return f"{first_day.isoformat()} .. {last_day.isoformat()}"


# The first and last day of the week named by the date expression {week}: what
# week_label prints. SQL owns the calendar; the CLI only formats it.
WEEK_DAYS_SQL = ("lottery_week({week}), (week_end_shown({week}) AT TIME ZONE 'UTC')::date")


def print_table(rows: Sequence[Sequence[str]], headers: Sequence[str], align: Sequence[str],
                out: IO[str] | None = None, indent: str = "  ") -> None:
    """Cells as given (already formatted), columns two spaces apart, each as wide as its
    widest cell; the header row is aligned as its column (so it goes in as a row: as
    headers, tabulate would widen every column by its minimum padding)."""
    text = tabulate([headers, *rows], tablefmt="plain", colalign=align, disable_numparse=True)
    for line in text.splitlines():
        click.echo((indent + line).rstrip(), file=out)


def print_sql_error(exc: psycopg.Error) -> None:
    """`error SQLSTATE: message`, then the detail and hint the server sent, on stderr."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    click.echo(f"error {exc.sqlstate}: {message}" if exc.sqlstate else f"error: {message}", err=True)
    if diag.message_detail:
        click.echo(f"detail: {diag.message_detail}", err=True)
    if diag.message_hint:
        click.echo(f"hint: {diag.message_hint}", err=True)


def want_progress(flag: bool | None) -> bool:
    """--progress / --no-progress, else a bar only when stderr is a terminal."""
    return sys.stderr.isatty() if flag is None else flag


def progress_bar(label: str, enabled: bool, total: int | None = None, unit: str = "it",
                 scale: bool = False) -> tqdm:
    """A progress bar on stderr (nothing at all when not enabled)."""
    return tqdm(desc=label, total=total, unit=unit, unit_scale=scale, disable=not enabled,
                file=sys.stderr, mininterval=0.2, dynamic_ncols=True)
