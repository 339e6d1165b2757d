"""The operator CLI (db/cli/) against a real database: each test gets its own clone."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from db import cli
from db.apply import url_for_database
from db.cli import draws as cli_draws
from db.cli.demo_data import generate_demo, segwit_v0_address

from core.rules import TRUEDIFFONE
from tests.helpers import insert_events
from tests.helpers import share as share_event

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


def run(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--database-url", url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def weeks(url: str) -> tuple[dt.date, dt.date, dt.datetime]:
    """(last closed week, open week, now) as the database sees them."""
    with psycopg.connect(url) as conn:
        open_week, now = conn.execute("SELECT lottery_week_at(now()), now()").fetchone()
    return open_week - dt.timedelta(days=7), open_week, now


def monday(week: dt.date) -> dt.datetime:
    return dt.datetime.combine(week, dt.time(), UTC)


def hash_for(diff: float) -> str:
    """The hash that proves a difficulty (any hash for a difficulty that cannot be)."""
    return format(int(TRUEDIFFONE // diff) if diff > 0 else 1, "064x")


def share(ts: dt.datetime, user: str, sdiff: float, accepted: bool = True, worker: str | None = None) -> dict:
    return {"ts": ts.isoformat().replace("+00:00", "Z"), "event_type": "share_submitted",
            "payload": {"user": user, "worker": worker or f"{user}.rig1", "sdiff": sdiff,
                        "accepted": accepted, "hash": hash_for(sdiff)}}


def write_jsonl(path: Path, lines: list[str | dict]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


# --------------------------------------------------------------------------
# draw


def load_week(url: str, week: dt.date, users: int) -> list[tuple[str, float]]:
    """users participants with distinct best difficulties; returns them best first."""
    start = monday(week)
    expected = []
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            for i in range(users):
                user = f"miner{i:02d}"
                best = 1000.0 * (i + 1) ** 2
                expected.append((user, best))
                for j, diff in enumerate((best / 10, best, best / 3)):
                    event = share(start + dt.timedelta(hours=i + 1, minutes=j), user, diff)
                    cur.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES (%s, %s, %s)",
                                (event["ts"], event["event_type"], json.dumps(event["payload"])))
            cur.execute("INSERT INTO users (id, display_name) VALUES ('miner11', 'Eleven the Miner') "
                        "ON CONFLICT (id) DO NOTHING")
    return sorted(expected, key=lambda e: -e[1])


def test_draw_prints_the_top_10_and_is_idempotent(fresh_db_url, capsys):
    closed, _open, _now = weeks(fresh_db_url)
    expected = load_week(fresh_db_url, closed, users=12)

    code, out, err = run(capsys, fresh_db_url, "draw")  # default: the last closed week
    assert code == 0, err
    assert f"week {closed.isoformat()} .. {(closed + dt.timedelta(days=6)).isoformat()}" in out
    assert "status: completed (drawn now)" in out
    assert "participants: 12" in out and "shares: 36" in out and "drawn_at: " in out
    table = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in table] == list(range(1, 11))
    assert [row[1] for row in table] == [user for user, _ in expected[:10]]
    assert "Eleven the Miner" in out                      # display names from users
    assert f"{expected[0][1]:,.0f}" in out                # exact best difficulty
    assert all(row[-1] == "100" for row in table)         # xp of ranks 1-10
    assert "miner01" not in out and "miner00" not in out  # ranks 11 and 12 are not shown
    draw_id = out.split("draw ")[1].split()[0]

    code, again, err = run(capsys, fresh_db_url, "draw", "--week", (closed + dt.timedelta(days=3)).isoformat())
    assert code == 0, err
    assert "status: completed (already drawn)" in again
    assert again.split("draw ")[1].split()[0] == draw_id
    assert again.split("\n", 2)[2] == out.split("\n", 2)[2]  # same table

    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM lottery_draws").fetchone()[0] == 1
        assert conn.execute("SELECT count(*), sum(amount) FROM xp_transactions").fetchone() == (12, 10 * 100 + 2 * 50)


def test_draw_of_an_open_week_exits_1_with_ltw01(fresh_db_url, capsys):
    _closed, open_week, _now = weeks(fresh_db_url)
    code, out, err = run(capsys, fresh_db_url, "draw", "--week", open_week.isoformat())
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"error LTW01: the week of {open_week.isoformat()} has not closed yet")
    assert lines[1].startswith("hint: It closes at ")

    code, _out, err = run(capsys, fresh_db_url, "draw", "--week", "2026-02-30")
    assert code == 1 and err.startswith("error LTW02: invalid week") and "\nhint: " in err
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM lottery_draws").fetchone()[0] == 0


def test_draw_due_draws_each_closed_week_once(fresh_db_url, capsys):
    closed, _open, _now = weeks(fresh_db_url)
    older = closed - dt.timedelta(days=14)
    load_week(fresh_db_url, older, users=2)
    load_week(fresh_db_url, closed, users=3)
    code, out, err = run(capsys, fresh_db_url, "draw", "--due")
    assert code == 0, err
    assert out.index(f"week {older.isoformat()}") < out.index(f"week {closed.isoformat()}")  # oldest first
    assert "participants: 2" in out and "participants: 3" in out
    code, out, err = run(capsys, fresh_db_url, "draw", "--due")
    assert code == 0 and out.startswith("nothing due")
    code, out, err = run(capsys, fresh_db_url, "draw", "--week", "2020-01-08")  # a week without events
    assert code == 0, err
    assert "week 2020-01-06 .. 2020-01-12" in out and "participants: 0" in out and "no participants" in out

    with pytest.raises(SystemExit) as exc:  # --due and --week exclude each other
        cli.main(["--database-url", fresh_db_url, "draw", "--due", "--week", closed.isoformat()])
    assert exc.value.code == 2


# --------------------------------------------------------------------------
# status


def test_status_shows_the_next_draw_and_the_pg_cron_jobs(fresh_db, fresh_db_url, capsys):
    dbname = fresh_db.info.dbname
    _closed, open_week, now = weeks(fresh_db_url)
    with psycopg.connect(fresh_db_url) as conn:
        event = share(now - dt.timedelta(seconds=1), "live-miner", 4242.0)
        conn.execute("INSERT INTO mining_events (ts, event_type, payload) VALUES (%s, %s, %s)",
                     (event["ts"], event["event_type"], json.dumps(event["payload"])))
        conn.commit()
        conn.execute("SELECT fold_pending_events()")  # as the background fold would, a moment later
        next_draw = conn.execute("SELECT next_draw_at()").fetchone()[0]

    cron_url = url_for_database(fresh_db_url, "postgres")
    with psycopg.connect(cron_url, autocommit=True) as cron:
        cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")

    code, out, err = run(capsys, fresh_db_url, "status")
    assert code == 0, err
    assert f"open week:   {open_week.isoformat()} .. " in out
    assert "live:        1 participants, 1 accepted shares; leader live-miner" in out
    assert "last draw:   none yet" in out
    assert f"next draw:   {next_draw.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" in out
    assert "pg_cron in database 'postgres':" in out
    assert f"lottery-draw:{dbname}: MISSING" in out
    assert f"lottery-catchup:{dbname}: MISSING" in out
    assert "the draw is not scheduled" in out

    job = f"lottery-draw:{dbname}"
    try:
        with psycopg.connect(cron_url, autocommit=True) as cron:
            cron.execute("SELECT cron.schedule_in_database(%s, '1 0 * * 1', 'SELECT run_due_draws()', %s)",
                         (job, dbname))
        code, out, err = run(capsys, fresh_db_url, "status")
        assert code == 0, err
        assert f"{job}: schedule '1 0 * * 1' active, command: SELECT run_due_draws()" in out
        assert "last run: never" in out
        assert f"lottery-catchup:{dbname}: MISSING" in out  # the other one is still missing
    finally:
        with psycopg.connect(cron_url, autocommit=True) as cron:
            cron.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = %s", (job,))


def test_status_says_plainly_when_pg_cron_is_not_loaded(fresh_db_url, capsys, monkeypatch):
    monkeypatch.setattr(cli_draws, "cron_database", lambda conn: None)
    code, out, err = run(capsys, fresh_db_url, "status")
    assert code == 0, err
    assert "pg_cron not loaded: the draw is not scheduled" in out


# --------------------------------------------------------------------------
# ingest


# Why a line is malformed: the parser's words for what is not JSON that jsonb can
# store in a known envelope with a readable time; share_event_problem()'s (SQL's)
# for an event that is not sound.
NO_USER = "user is missing, not a string, empty or longer than 128"
BAD_SDIFF = "sdiff is not a positive finite number"


def mixed_log(week: dt.date) -> list[tuple[str, str]]:
    """(line, what it is): every form and every kind of bad line. What it is: accepted,
    rejected, other, blank, or the reason the CLI must give for refusing it."""
    start = monday(week)
    at = lambda hours: start + dt.timedelta(hours=hours)  # noqa: E731
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    epoch = lambda t: (t - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()  # noqa: E731
    good = json.dumps
    return [
        (good(share(at(1), "alice", 100.0)), "accepted"),
        (good({**share(at(2), "bob", 5000.5), "ts": at(2).strftime("%Y-%m-%dT%H:%M:%S")}), "accepted"),
        ('{"ts": "2026-01-01T00:00:00Z", "event_type": "share_submitted", "payload": {"user": "x"', "bad JSON: "),
        (good({**share(at(3), "x", 10.0), "payload": {"sdiff": 10.0, "accepted": True}}), NO_USER),
        (good(share(at(3), "carol", -5.0)), BAD_SDIFF),
        ('{"ts": "%s", "event_type": "share_submitted", "payload": {"user": "carol", "sdiff": NaN, '
         '"accepted": true}}' % iso(at(3)), "bad JSON: NaN is not a JSON value"),
        (good({**share(at(3), "carol", 1.0), "payload": {"user": "carol", "sdiff": "abc", "accepted": True}}),
         BAD_SDIFF),
        (good({**share(at(3), "carol", 1.0), "payload": {"user": "carol", "sdiff": 9.0, "accepted": "yes"}}),
         "accepted is not true or false"),
        (good({"ts": iso(at(3)), "event_type": "share_submitted", "payload": ["alice", 9.0]}),
         "payload is not a JSON object"),
        (good({**share(at(3), "carol", 9.0), "ts": "2026-02-30T00:00:00Z"}), 'bad "ts": '),
        (good(share(at(4), "carol", 50.0, accepted=False)), "rejected"),
        (good({"type": "share_submitted", "createdate": f"{int(epoch(at(5)))},123456789", "username": "carol",
               "workername": "carol.bitaxe", "diff": 32, "sdiff": 77.25, "result": True, "hash": hash_for(77.25)}),
         "accepted"),  # ckpool flat form, "sec,nsec"
        (good({"event_type": "share_submitted", "ts": epoch(at(6)) + 0.25, "user": "dave", "worker": "dave.s9",
               "sdiff": 1234, "accepted": True}), "accepted"),  # flat form, epoch number, no hash
        (good({"createdate": f"{int(epoch(at(7)))},5", "username": "erin", "workername": "erin.1",
               "sdiff": 3.5, "result": True, "hash": hash_for(3.5)}), "accepted"),  # share log line, no type
        (good({"ts": iso(at(8)), "event_type": "new_block_network", "payload": {"diff": 1.05e14}}), "other"),
        (good({"ts": iso(at(9)), "event_type": "block_found", "payload": {"user": "alice", "height": 900000}}),
         "other"),
        ("   ", "blank"),
        (good(share(at(10), "", 10.0)), NO_USER),
        ('{"ts": "%s", "event_type": "share_submitted", "payload": {"user": "f", "sdiff": Infinity, '
         '"accepted": true}}' % iso(at(10)), "bad JSON: Infinity is not a JSON value"),
        (good(share(at(10), "frank", 0)), BAD_SDIFF),
        (good({**share(at(10), "frank", 1.0), "payload": {"user": "frank", "sdiff": True, "accepted": True}}),
         BAD_SDIFF),
        (good({**share(at(10), "frank", 1.0), "event_type": 42}), '"event_type" must be a string, not a number'),
        (good({**share(at(10), "frank", 1.0), "payload": {"user": 123, "sdiff": 5.0, "accepted": True}}),
         NO_USER),
        ("[1, 2, 3]", "not a JSON object but a array"),
        (good({"event_type": "share_submitted", "payload": {"user": "g", "sdiff": 5.0, "accepted": True}}),
         '"ts" is missing'),
        # SQL does not judge the hash (a share counts without one) nor the worker: neither does the CLI.
        (good({**share(at(10), "grace", 5.0), "payload": {"user": "grace", "sdiff": 5.0, "accepted": True,
                                                           "hash": "xyz"}}), "accepted"),
        (good({**share(at(10), "ivan", 6.0), "payload": {"user": "ivan", "worker": 7, "sdiff": 6.0,
                                                          "accepted": True}}), "accepted"),
        (good({**share(at(10), "grace", 5.0), "payload": {"user": "grace", "worker": "a\u0000b", "sdiff": 5.0,
                                                           "accepted": True}}), "\\u0000, which jsonb cannot store"),
        (good({"ts": iso(at(11)), "event_type": "worker_connected", "payload": {"worker": "alice.rig1"}}), "other"),
        (good(share(at(12), "alice", 250000.0)), "accepted"),
        (good({**share(at(13), "heidi", 8.0), "ts": f"{epoch(at(13)):.6f}"}), "accepted"),  # epoch as text
        (good({"ts": iso(at(13)), "event_type": "new_block_network", "payload": {"diff": "big"}}),
         "diff is not a positive finite number"),
        (good({"ts": iso(at(14)), "payload": {"user": "judy"}}), "event_type is missing"),  # no type, not a share
        (good({**share(at(14), "judy", 5.0), "event_type": ""}), "event_type is missing"),
        (good(share(at(14), "j" * 129, 5.0)), NO_USER),
        (good({"ts": iso(at(14)), "event_type": "block_found", "payload": {"height": 900001}}), NO_USER),
        ('{"ts": "%s", "event_type": "share_submitted", "payload": {"user": "k", "sdiff": 1e400, '
         '"accepted": true}}' % iso(at(14)), "bad JSON: a number beyond the range of a double"),
    ]


LOADED = ("accepted", "rejected", "other", "blank")
SHOWN = 20  # malformed lines listed one by one


def check_ingest_output(out: str, err: str, log: list[tuple[str, str]], first_line: int = 1) -> None:
    """The summary counts the lines from first_line on; the first SHOWN bad lines are
    named in order, each with its reason (the parser's or SQL's), then a count of the rest."""
    kinds = [kind for _, kind in log]
    tail = kinds[first_line - 1:]
    bad = {n: kind for n, kind in enumerate(kinds, 1) if n >= first_line and kind not in LOADED}
    assert (f"ingested {len(tail) - tail.count('blank')} lines: {tail.count('accepted')} accepted shares, "
            f"{tail.count('rejected')} rejected shares, {tail.count('other')} other events, "
            f"{len(bad)} malformed") in out
    named = [line for line in err.splitlines() if line.startswith("line ")]
    shown = sorted(bad)[:SHOWN]
    assert [int(line.split()[1].rstrip(":")) for line in named] == shown
    for number, line in zip(shown, named):
        assert line.startswith(f"line {number}: malformed, not loaded: ")
        assert bad[number] in line, (line, bad[number])
    more = len(bad) - len(shown)
    if more:
        assert f"... and {more} more malformed line{'s' if more > 1 else ''} not loaded" in err
    else:
        assert "more malformed" not in err


def test_ingest_loads_every_good_line_and_names_the_bad_ones(fresh_db_url, capsys, tmp_path):
    closed, _open, _now = weeks(fresh_db_url)
    log = mixed_log(closed)
    path = write_jsonl(tmp_path / "events.jsonl", [line for line, _ in log])
    kinds = [kind for _, kind in log]
    bad = [n for n, kind in enumerate(kinds, 1) if kind not in LOADED]
    assert len(bad) > SHOWN

    # Small batches: bad lines of both kinds (the parser's, SQL's) in several batches.
    code, out, err = run(capsys, fresh_db_url, "ingest", str(path), "--batch-size", "7")
    assert code == 0, err
    check_ingest_output(out, err, log)

    # The bad lines past the first 20, with their reasons: load the tail once more.
    tail_start = bad[SHOWN - 1] + 1
    code, out, err = run(capsys, fresh_db_url, "ingest", str(path), "--single-transaction",
                         "--start-line", str(tail_start))
    assert code == 0, err
    check_ingest_output(out, err, log, first_line=tail_start)

    loaded = lambda kinds: sum(kind in ("accepted", "rejected", "other") for kind in kinds)  # noqa: E731
    accepted = kinds.count("accepted") + kinds[tail_start - 1:].count("accepted")
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM mining_events").fetchone()[0] == \
            loaded(kinds) + loaded(kinds[tail_start - 1:])
        shares, participants = conn.execute(
            "SELECT sum(share_count), count(*) FROM share_weekly_best WHERE week_start = %s", (closed,)).fetchone()
        assert shares == accepted
        assert participants == 8  # alice bob carol dave erin grace heidi ivan
        best = dict(conn.execute("SELECT user_id, best_difficulty FROM share_weekly_best").fetchall())
        assert best == {"alice": 250000.0, "bob": 5000.5, "carol": 77.25, "dave": 1234.0, "erin": 3.5,
                        "grace": 5.0, "heidi": 8.0, "ivan": 6.0}
        # The share with a malformed hash counts, without a hash.
        assert conn.execute("SELECT best_hash FROM share_weekly_best WHERE user_id = 'grace'").fetchone()[0] is None
        times = dict(conn.execute(
            "SELECT payload->>'user', ts FROM mining_events WHERE event_type = 'share_submitted'").fetchall())
        start = monday(closed)
        assert times["bob"] == start + dt.timedelta(hours=2)  # no offset means UTC
        assert times["carol"] == start + dt.timedelta(hours=5, microseconds=123456)  # ckpool sec,nsec
        assert times["dave"] == start + dt.timedelta(hours=6, milliseconds=250)
        assert times["erin"] == start + dt.timedelta(hours=7)  # ",5" is 5 ns
        flat = conn.execute("SELECT payload FROM mining_events WHERE payload->>'user' = 'carol' "
                            "AND payload->>'accepted' = 'true'").fetchone()[0]
        assert flat == {"user": "carol", "worker": "carol.bitaxe", "diff": 32, "sdiff": 77.25, "accepted": True,
                        "hash": hash_for(77.25)}


def test_ingest_from_stdin_lists_20_bad_lines_then_counts(fresh_db_url, capsys, monkeypatch):
    closed, _open, _now = weeks(fresh_db_url)
    good = [json.dumps(share(monday(closed) + dt.timedelta(minutes=i), f"u{i}", 10.0 + i)) for i in range(5)]
    data = "\n".join(good + ["{oops"] * 25) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    code, out, err = run(capsys, fresh_db_url, "ingest", "-")
    assert code == 0, err
    assert "ingested 30 lines: 5 accepted shares, 0 rejected shares, 0 other events, 25 malformed" in out
    named = [line for line in err.splitlines() if line.startswith("line ")]
    assert [int(line.split()[1].rstrip(":")) for line in named] == list(range(6, 26))
    assert "... and 5 more malformed lines not loaded" in err


def test_ingest_in_batches_counts_match_the_aggregates(fresh_db_url, capsys, tmp_path):
    closed, _open, _now = weeks(fresh_db_url)
    start = monday(closed)
    lines = [share(start + dt.timedelta(seconds=20 * i), f"user{i % 700}", 1.0 + (i * 7919) % 100_003,
                   accepted=i % 97 != 0) for i in range(25_000)]
    path = write_jsonl(tmp_path / "big.jsonl", lines)
    accepted = sum(1 for e in lines if e["payload"]["accepted"])

    code, out, err = run(capsys, fresh_db_url, "ingest", str(path), "--batch-size", "10000", "--progress")
    assert code == 0, err
    assert f"ingested 25000 lines: {accepted} accepted shares, {25_000 - accepted} rejected shares" in out
    assert "\ringest: " in err  # the progress counter
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM mining_events").fetchone()[0] == 25_000
        assert conn.execute("SELECT sum(share_count), count(*) FROM share_weekly_best").fetchone() == (accepted, 700)
        expected_best = max(e["payload"]["sdiff"] for e in lines if e["payload"]["accepted"])
        assert conn.execute("SELECT max(best_difficulty) FROM share_weekly_best").fetchone()[0] == expected_best


def test_ingest_failure_reports_what_is_committed_and_resumes(fresh_db_url, capsys, tmp_path):
    closed, _open, _now = weeks(fresh_db_url)
    start = monday(closed)
    lines = [share(start + dt.timedelta(minutes=i), "boom" if i == 14 else f"u{i}", 10.0) for i in range(25)]
    path = write_jsonl(tmp_path / "events.jsonl", lines)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.payload->>'user' = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_boom BEFORE INSERT ON mining_events FOR EACH ROW EXECUTE FUNCTION test_boom();
        """)

    code, out, err = run(capsys, fresh_db_url, "ingest", str(path), "--batch-size", "10")
    assert code == 1
    assert "error P0001: boom" in err
    assert "the batch of lines 11-20 failed" in err
    assert "resume with --start-line 11" in err

    code, _out, err = run(capsys, fresh_db_url, "ingest", str(path), "--single-transaction")
    assert code == 1 and "nothing was loaded" in err

    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM mining_events").fetchone()[0] == 10
        conn.execute("DROP TRIGGER test_boom ON mining_events")
    code, out, err = run(capsys, fresh_db_url, "ingest", str(path), "--batch-size", "10", "--start-line", "11")
    assert code == 0, err
    assert "ingested 15 lines: 15 accepted shares" in out
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM mining_events").fetchone()[0] == 25
        assert conn.execute("SELECT sum(share_count) FROM share_weekly_best").fetchone()[0] == 25


def test_ingest_needs_no_more_than_the_ingest_role(fresh_db, fresh_db_url, capsys, tmp_path):
    """A login in lottery_ingest (INSERT on mining_events, EXECUTE on share_event_problem)
    can run ingest: the staging table is the session's own TEMP table."""
    closed, _open, _now = weeks(fresh_db_url)
    start = monday(closed)
    path = write_jsonl(tmp_path / "events.jsonl", [share(start, "ivy", 42.0), share(start, "ivy", 50.0, False),
                                                  share(start, "ivy", -1.0)])
    name = f"t_ingest_{uuid.uuid4().hex[:6]}"
    fresh_db.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE lottery_ingest").format(sql.Identifier(name)))
    fresh_db.commit()
    try:
        code, out, err = run(capsys, make_conninfo(fresh_db_url, user=name), "ingest", str(path))
        assert code == 0, err
        assert "ingested 3 lines: 1 accepted shares, 1 rejected shares, 0 other events, 1 malformed" in out
        assert f"line 3: malformed, not loaded: {BAD_SDIFF}" in err
        assert fresh_db.execute("SELECT best_difficulty, share_count FROM share_weekly_best "
                                "WHERE user_id = 'ivy'").fetchone() == (42.0, 1)
    finally:
        fresh_db.rollback()
        # The ingest backend drops its TEMP staging table as it exits, just after
        # the client has gone: until then the role still owns it.
        deadline = time.monotonic() + 10
        while True:
            try:
                fresh_db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
                fresh_db.commit()
                break
            except psycopg.errors.DependentObjectsStillExist:
                fresh_db.rollback()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_ingest_of_a_missing_file(fresh_db_url, capsys, tmp_path):
    code, _out, err = run(capsys, fresh_db_url, "ingest", str(tmp_path / "nope.jsonl"))
    assert code == 1 and err.startswith("error: cannot read")


# --------------------------------------------------------------------------
# demo


def test_demo_generates_a_believable_week(fresh_db_url, capsys):
    closed, open_week, _now = weeks(fresh_db_url)
    code, out, err = run(capsys, fresh_db_url, "demo", "--miners", "40", "--shares", "40", "--seed", "7",
                         "--also-open-week")
    assert code == 0, err
    assert f"demo (seed 7): week {closed.isoformat()}" in out
    assert f"next: lottery draw --week {closed.isoformat()}" in out

    with psycopg.connect(fresh_db_url) as conn:
        q = lambda sql, *p: conn.execute(sql, p).fetchone()  # noqa: E731
        # Every hash proves its share's difficulty.
        worst, unreadable, total = q("""
            SELECT max(abs(share_difficulty_from_hash(payload->>'hash') / (payload->>'sdiff')::float8 - 1)),
                   count(*) FILTER (WHERE share_difficulty_from_hash(payload->>'hash') IS NULL), count(*)
            FROM mining_events WHERE event_type = 'share_submitted'""")
        assert total > 1000 and unreadable == 0 and worst < 1e-9
        week = "ts >= lottery_week_start_ts(%s) AND ts < lottery_week_start_ts(%s) + interval '7 days'"
        # Heavy tail: the best share of the week dwarfs the typical one.
        top, median = q(f"""
            SELECT max((payload->>'sdiff')::float8),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY (payload->>'sdiff')::float8)
            FROM mining_events WHERE event_type = 'share_submitted' AND {week}""", closed, closed)
        assert top > 1000 * median
        # Several workers per user, for some users; user names like a pool's.
        multi, users = q(f"""
            SELECT count(*) FILTER (WHERE workers >= 2), count(*) FROM (
                SELECT payload->>'user' AS u, count(DISTINCT payload->>'worker') AS workers
                FROM mining_events WHERE event_type = 'share_submitted' AND {week} GROUP BY 1) AS w""",
                             closed, closed)
        assert multi >= 1 and users == 40
        assert q("SELECT count(*) FROM users WHERE display_name <> ''")[0] == 40
        assert q("SELECT count(*) FROM users WHERE id LIKE 'bc1q%%' AND length(id) = 42")[0] >= 10
        # Some rejected shares, about 1-2 %.
        rejected, shares = q(f"""
            SELECT count(*) FILTER (WHERE payload->'accepted' = 'false'), count(*)
            FROM mining_events WHERE event_type = 'share_submitted' AND {week}""", closed, closed)
        assert 0 < rejected < 0.05 * shares
        # Exactly one block, found by a participant whose best share beats the network.
        assert q("SELECT count(*) FROM mining_events WHERE event_type = 'block_found'")[0] == 1
        finder, = q("SELECT payload->>'user' FROM mining_events WHERE event_type = 'block_found'")
        assert q("SELECT best_difficulty >= network_difficulty_at(best_at) FROM share_weekly_best "
                 "WHERE week_start = %s AND user_id = %s", closed, finder)[0]
        # Network difficulty in the realistic range, a few updates a day.
        lo, hi, updates = q(f"""
            SELECT min((payload->>'diff')::float8), max((payload->>'diff')::float8), count(*)
            FROM mining_events WHERE event_type = 'new_block_network' AND {week}""", closed, closed)
        assert 8.6e13 <= lo <= hi <= 1.2e14 and 7 * 3 <= updates <= 7 * 6
        # Inside the week, spread over all of it.
        days = q(f"SELECT count(DISTINCT (ts AT TIME ZONE 'UTC')::date) FROM mining_events WHERE {week}",
                 closed, closed)[0]
        assert days == 7
        # --also-open-week: live shares in the open week, none in the future.
        live, future = q("SELECT count(*), count(*) FILTER (WHERE ts > now()) FROM mining_events "
                         "WHERE ts >= lottery_week_start_ts(%s)", open_week)
        assert future == 0
        assert live > 0 or _now - monday(open_week) < dt.timedelta(minutes=5)

    code, out, err = run(capsys, fresh_db_url, "draw")
    assert code == 0, err
    assert "participants: 40" in out and f"\n     1  {finder} " in out

    code, out, err = run(capsys, fresh_db_url, "demo", "--if-empty")  # as `make run` calls it
    assert code == 0 and out.startswith("demo skipped")
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM mining_events WHERE event_type = 'block_found'").fetchone()[0] == 1


def test_demo_is_deterministic_for_a_seed():
    week = dt.date(2026, 11, 9)
    now = dt.datetime(2026, 11, 18, 12, tzinfo=UTC)
    one = generate_demo(5, 25, 30, week, now, also_open_week=False, open_week=dt.date(2026, 11, 16))
    two = generate_demo(5, 25, 30, week, now, also_open_week=False, open_week=dt.date(2026, 11, 16))
    other = generate_demo(6, 25, 30, week, now, also_open_week=False, open_week=dt.date(2026, 11, 16))
    assert one.events == two.events and [u.user_id for u in one.users] == [u.user_id for u in two.users]
    assert one.events != other.events
    assert all(monday(week) <= ts < monday(week) + dt.timedelta(days=7) for ts, _e, _p in one.events)


def test_demo_addresses_are_valid_bech32():
    # BIP 173 test vector.
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert segwit_v0_address(program) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


# --------------------------------------------------------------------------
# token and plumbing


def is_admin(claims: dict) -> bool:
    return claims.get("admin") is True  # what web.auth issues and checks


def test_token_prints_a_jwt_for_the_user(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)  # no database needed
    monkeypatch.setenv("JWT_SECRET", "cli-test-secret-that-is-long-enough-for-hs256")
    monkeypatch.setenv("JWT_ALGORITHM", "HS256")

    code = cli.main(["token", "--user", "bc1qalice", "--ttl", "120"])
    out, err = capsys.readouterr()
    assert code == 0, err
    token = out.strip()
    assert token.count(".") == 2
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "bc1qalice"
    assert 0 < claims["exp"] - time.time() <= 125
    assert not is_admin(claims)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt.decode(token, os.environ["JWT_SECRET"], algorithms=["HS256"])["sub"] == "bc1qalice"

    code = cli.main(["token", "--user", "root-operator", "--admin"])
    out, err = capsys.readouterr()
    assert code == 0, err
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert claims["sub"] == "root-operator" and is_admin(claims)
    assert 86000 < claims["exp"] - time.time() <= 86405


def test_welcome_prints_a_token_and_curl_lines(fresh_db_url, capsys, monkeypatch):
    closed, _open, _now = weeks(fresh_db_url)
    winner = load_week(fresh_db_url, closed, users=3)[0][0]
    assert run(capsys, fresh_db_url, "draw")[0] == 0
    monkeypatch.setenv("JWT_SECRET", "cli-test-secret-that-is-long-enough-for-hs256")
    monkeypatch.setenv("JWT_ALGORITHM", "HS256")
    code, out, err = run(capsys, fresh_db_url, "welcome", "--port", "8123")
    assert code == 0, err
    assert f"user:   {winner}, rank 1 in the draw of the week of {closed.isoformat()}" in out
    token = out.split("token:  ")[1].split()[0]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == winner
    assert "curl -s -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8123/api/lottery/current" in out
    assert f"http://127.0.0.1:8123/api/lottery/week/{closed.isoformat()}" in out


def test_without_a_database_url_it_says_how_to_give_one(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["status"]) == 2
    assert "DATABASE_URL" in capsys.readouterr().err


def test_database_url_from_the_environment_and_unreachable_server(fresh_db_url, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", fresh_db_url)
    assert cli.main(["status"]) == 0
    assert "open week:" in capsys.readouterr().out
    code = cli.main(["status", "--database-url", "postgresql://postgres@127.0.0.1:1/nowhere"])
    assert code == 1 and "error: cannot connect to the database" in capsys.readouterr().err


def test_python_dash_m_entry_point(fresh_db_url):
    env = {**os.environ, "DATABASE_URL": fresh_db_url}
    help_text = subprocess.run([sys.executable, "-m", "db.cli", "--help"], cwd=ROOT, env=env,
                               capture_output=True, text=True, check=True).stdout
    for command in ("draw", "status", "ingest", "demo", "token"):
        assert command in help_text
    _closed, open_week, _now = weeks(fresh_db_url)
    result = subprocess.run([sys.executable, "-m", "db.cli", "draw", "--week", open_week.isoformat()],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.startswith("error LTW01: ")


def test_ingest_counts_forged_shares_apart(tmp_path, fresh_db, fresh_db_url, capsys):
    from tests.helpers import hash_for
    lines = [{"ts": "2026-11-17T00:00:00Z", "event_type": "share_submitted",
              "payload": {"user": "honest", "sdiff": 50.0, "accepted": True, "hash": hash_for(50.0)}},
             {"ts": "2026-11-17T00:00:00Z", "event_type": "share_submitted",
              "payload": {"user": "forger", "sdiff": 1e12, "accepted": True, "hash": hash_for(10.0)}}]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli.main(["--database-url", fresh_db_url, "ingest", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ingested 2 lines: 1 accepted shares, 0 rejected shares, 0 other events, 0 malformed" in out
    assert "1 accepted shares claim more difficulty than their hash proves" in out
    assert fresh_db.execute("SELECT user_id FROM share_weekly_best").fetchall() == [("honest",)]
    assert fresh_db.execute("SELECT forged_shares FROM event_weeks").fetchone() == (1,)


def test_fold_folds_what_is_pending_and_status_check_reports_a_fold_behind(capsys, fresh_db_url):
    _, _, now = weeks(fresh_db_url)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        insert_events(conn, [share_event("alice", 5.0, now - dt.timedelta(minutes=5)),
                             share_event("bob", 6.0, now - dt.timedelta(minutes=4))], fold_now=False)
        # The fold last had everything 20 s ago, then 90 s ago: warning, then critical.
        for age, severity, code in ((20, "warning", 1), (90, "critical", 2)):
            conn.execute("UPDATE event_fold SET folded_at = now() - make_interval(secs => %s)", (age,))
            status, out, _ = run(capsys, fresh_db_url, "status", "--check")
            behind = [line for line in out.splitlines() if "fold_behind" in line]
            assert len(behind) == 1 and behind[0].startswith(f"{severity}: fold_behind"), out
            assert status >= code, out
    status, out, _ = run(capsys, fresh_db_url, "fold")
    assert (status, out.strip()) == (0, "folded 2 events")
    status, out, _ = run(capsys, fresh_db_url, "status", "--check")
    assert "fold_behind" not in out
    status, out, _ = run(capsys, fresh_db_url, "fold")
    assert (status, out.strip()) == (0, "folded 0 events")   # nothing pending: 0, and no error
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT user_id, share_count FROM share_weekly_best ORDER BY 1").fetchall() == \
            [("alice", 1), ("bob", 1)]
