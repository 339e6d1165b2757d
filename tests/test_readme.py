"""Every command and example of the manual (the README and every page of docs/) runs
as printed, on what `make run` sets up: a database with the demo week and the open
week, drawn, and the API serving it.

The pages run in the order the README's "What to read next" links them (every page
of docs/ must be linked there), each ```sh, ```bash, ```sql and ```python block in
its page's order, unless the line before it says `<!-- not run: why -->`. Shell
blocks run in one bash session (a variable a block sets is there for the next, as
in one terminal: docs/api.md's first block sets what the later pages use), with
`set -euo pipefail` and a curl that fails on an HTTP error; SQL blocks run through
psql with ON_ERROR_STOP; Python blocks with the project's interpreter. The only
changes made to a block are the addresses: the API's port and the database URL
of `make run` become this test's own.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from db import apply as db_apply
from tests.api.support import make_settings, serve
from web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAKEFILE = (ROOT / "Makefile").read_text()
MAKE_RUN_URL = "postgresql://postgres@127.0.0.1:54329/lottery"
MAKE_RUN_API = "127.0.0.1:8000"
LOCAL_SECRET = re.search(r"^JWT_SECRET \?= (\S+)$", MAKEFILE, re.M).group(1)
RUNNABLE = {"sh", "bash", "sql", "python"}
SITE = "readme_site"  # the database the README runs on


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"


def pages() -> list[Path]:
    """The README, then the pages of docs/ in the order the README first links them."""
    linked = dict.fromkeys(ROOT / link for link in re.findall(r"\]\((docs/[\w-]+\.md)\)", README.read_text()))
    return [README, *linked]


def test_every_page_of_the_manual_is_linked_from_the_readme_and_short_enough():
    assert set(pages()[1:]) == set(DOCS.glob("*.md"))
    assert len(README.read_text().splitlines()) < 250   # the front door


def readme_blocks() -> list[Block]:
    return [block for page in pages() for block in page_blocks(page)]


def page_blocks(page: Path) -> list[Block]:
    blocks, lines, i = [], page.read_text().splitlines(), 0
    name = page.relative_to(ROOT).as_posix()
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)", lines[i])
        if not fence:
            i += 1
            continue
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = re.fullmatch(r"<!-- not run: (.+) -->", before.strip())
        end = lines.index("```", i + 1)
        blocks.append(Block(name, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n", skip and skip.group(1)))
        i = end + 1
    return blocks


def test_every_block_of_a_runnable_language_runs_or_says_why_not():
    blocks = [b for b in readme_blocks() if b.lang in RUNNABLE]
    assert len([b for b in blocks if not b.skip]) >= 8
    for block in blocks:
        assert block.skip is None or len(block.skip) > 10, f"{block.where}: say why it is not run"


@pytest.fixture(scope="module")
def site(pg_cluster, lottery_proc, tmp_path_factory):
    """make run's state: its pg_cron jobs, the demo weeks, drawn, and the API; yields
    (database URL, API host:port)."""
    with pg_cluster.clone(lottery_proc.template_dbname, SITE) as url:
        with psycopg.connect(url) as conn:
            assert db_apply.schedule_draws(conn, url, lambda *_: None)
        env = {**os.environ, "DATABASE_URL": url, "JWT_SECRET": LOCAL_SECRET}
        try:
            for args in (["demo", "--if-empty", "--also-open-week", "--seed", "2026", "--miners", "60"],
                         ["draw", "--due"]):
                subprocess.run([sys.executable, "-m", "db.cli", *args], cwd=ROOT, env=env, check=True,
                               capture_output=True, timeout=300)
            with serve(create_app(make_settings(url, jwt_secret=LOCAL_SECRET))) as address:
                yield url, address
        finally:  # no job may outlive its database
            with psycopg.connect(db_apply.url_for_database(url, "postgres"), autocommit=True) as cron:
                cron.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE database = %s",
                             (SITE,))


def localised(text: str, url: str, address: str) -> str:
    return text.replace(MAKE_RUN_URL, url).replace(MAKE_RUN_API, address)


def test_the_manual_runs_as_printed(site, tmp_path):
    url, address = site
    postgres = db_apply.url_for_database(url, "postgres")
    shell = ["set -euo pipefail", 'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }']
    for block in (b for b in readme_blocks() if b.lang in RUNNABLE and not b.skip):
        text = localised(block.text, url, address)
        shell.append(f"echo '=== {block.where}' >&2")
        if block.lang in ("sh", "bash"):
            shell.append(text)
        elif block.lang == "sql":  # as `make psql` would run it; pg_cron's tables live in postgres
            shell.append(f"psql -X -q -v ON_ERROR_STOP=1 {shlex.quote(postgres if 'cron.' in text else url)} <<'SQL'\n{text}SQL")
        else:
            shell.append(f"{sys.executable} - <<'PYTHON'\n{text}PYTHON")
    script = tmp_path / "readme.sh"
    script.write_text("\n".join(shell) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_URL"))}  # a fresh terminal
    result = subprocess.run(["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
