"""`lottery ingest` of the events as the platform writes them: the collector's datagram
envelope, mining_events.source, and ckpool's share-log line of an invalid-job reject."""

from __future__ import annotations

import datetime as dt
import json

import psycopg

from db import cli
from tests.helpers import hash_for

UTC = dt.timezone.utc


def closed_week_instant(url: str, hours: float) -> dt.datetime:
    """An instant `hours` into the last closed week, as the database sees the weeks."""
    with psycopg.connect(url) as conn:
        start = conn.execute("SELECT week_start FROM get_week_boundaries(now() - interval '7 days')").fetchone()[0]
    return start + dt.timedelta(hours=hours)


def datagram(at: dt.datetime, user: str, sdiff: float, accepted: bool = True, **envelope) -> dict:
    """A share as the collector receives it (services/event-collector/src/schemas.py)."""
    return {"event": "share_submitted", "ts": at.timestamp(), **envelope,
            "data": {"user": user, "worker": f"{user}.bitaxe", "client_id": 7, "diff": 512.0, "sdiff": sdiff,
                     "accepted": accepted, "reject_reason": "" if accepted else "Stale", "ip": "10.0.0.7"}}


def ingest(capsys, url: str, path) -> tuple[int, str, str]:
    code = cli.main(["--database-url", url, "ingest", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, lines: list[dict]):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_collector_datagrams_load_into_a_source_column_with_its_default(fresh_db, fresh_db_url, capsys,
                                                                        tmp_path):
    fresh_db.execute("ALTER TABLE mining_events ADD COLUMN source varchar(16) DEFAULT 'hosted'")
    fresh_db.commit()
    at = lambda hours: closed_week_instant(fresh_db_url, hours)  # noqa: E731
    lines = [
        datagram(at(1), "bc1qalice", 4000.5, source="hosted", region="eu"),
        datagram(at(2), "bc1qbob", 900.0, source="proxy"),
        datagram(at(3), "bc1qbob", 77.0, accepted=False, source="proxy"),
        datagram(at(4), "bc1qcarol", 12.0),                                  # no source: the column default
        {"event": "new_block_network", "ts": at(5).timestamp(), "source": "hosted",
         "data": {"height": 925000, "hash": hash_for(1.1e14), "diff": 1.1e14, "prev_hash": hash_for(1e14)}},
        {"ts": at(6).isoformat(), "event_type": "share_submitted", "source": "self-hosted",  # the row form
         "payload": {"user": "bc1qdave", "sdiff": 3.0, "accepted": True}},
        datagram(at(7), "bc1qerin", 5.0, source="x" * 17),                   # longer than varchar(16)
        datagram(at(8), "bc1qerin", 6.0, source=16),                          # not a string
    ]
    code, out, err = ingest(capsys, fresh_db_url, write(tmp_path, lines))
    assert code == 0, err
    assert "ingested 8 lines: 4 accepted shares, 1 rejected shares, 1 other events, 2 malformed" in out
    assert "line 7: malformed, not loaded: source is longer than the 16 characters mining_events.source holds" \
        in err
    assert 'line 8: malformed, not loaded: "source" must be a string, not a number' in err

    rows = fresh_db.execute("SELECT event_type, coalesce(payload->>'user', '-'), source, payload ? 'source', "
                            "payload ? 'data', ts FROM mining_events ORDER BY ts").fetchall()
    assert [row[:5] for row in rows] == [
        ("share_submitted", "bc1qalice", "hosted", False, False),
        ("share_submitted", "bc1qbob", "proxy", False, False),
        ("share_submitted", "bc1qbob", "proxy", False, False),
        ("share_submitted", "bc1qcarol", "hosted", False, False),
        ("new_block_network", "-", "hosted", False, False),
        ("share_submitted", "bc1qdave", "self-hosted", False, False),
    ]
    assert rows[0][5] == at(1)  # unix seconds with their fraction, to the microsecond
    best = dict(fresh_db.execute("SELECT user_id, best_difficulty FROM share_weekly_best").fetchall())
    assert best == {"bc1qalice": 4000.5, "bc1qbob": 900.0, "bc1qcarol": 12.0, "bc1qdave": 3.0}


def test_datagrams_without_a_source_column_drop_the_source(fresh_db, fresh_db_url, capsys, tmp_path):
    at = lambda hours: closed_week_instant(fresh_db_url, hours)  # noqa: E731
    lines = [datagram(at(1), "bc1qalice", 40.0, source="hosted"), datagram(at(2), "bc1qbob", 9.0, source="x" * 40)]
    code, out, err = ingest(capsys, fresh_db_url, write(tmp_path, lines))
    assert code == 0, err
    assert "ingested 2 lines: 2 accepted shares, 0 rejected shares, 0 other events, 0 malformed" in out
    assert fresh_db.execute("SELECT count(*) FILTER (WHERE payload ? 'source'), count(*) FROM mining_events"
                            ).fetchone() == (0, 2)
    assert fresh_db.execute("SELECT sum(share_count) FROM share_weekly_best").fetchone()[0] == 2


def test_an_invalid_job_reject_of_ckpools_share_log_is_a_rejected_share(fresh_db, fresh_db_url, capsys, tmp_path):
    """ckpool logs a share of a job it no longer knows with sdiff -1 and no hash:
    a rejected share, not a malformed line (share_event_problem judges no sdiff of a
    share that was not accepted)."""
    at = closed_week_instant(fresh_db_url, 3)
    stamp = f"{int(at.timestamp())},{at.microsecond * 1000}"
    common = {"workinfoid": 7323, "clientid": 12, "enonce1": "0a1b2c3d", "nonce2": "0000000000000000",
              "nonce": "1a2b3c4d", "ntime": "6919e2a3", "diff": 512.0, "createdate": stamp,
              "createby": "code", "createcode": "parse_submit", "createinet": "0.0.0.0:3333",
              "workername": "bc1qalice.bitaxe", "username": "bc1qalice", "address": "10.0.0.7",
              "agent": "bitaxe/BM1370/v2.4.0"}
    lines = [{**common, "sdiff": -1.0, "hash": "", "result": False, "reject-reason": "Invalid JobID", "errn": -1},
             {**common, "sdiff": 2048.0, "hash": hash_for(2048.0), "result": True, "errn": 0}]
    code, out, err = ingest(capsys, fresh_db_url, write(tmp_path, lines))
    assert code == 0, err
    assert "ingested 2 lines: 1 accepted shares, 1 rejected shares, 0 other events, 0 malformed" in out
    assert fresh_db.execute("SELECT best_difficulty, share_count FROM share_weekly_best").fetchone() == (2048.0, 1)
