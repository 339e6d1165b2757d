"""Benchmark `lottery ingest` on a 1,000,000-line JSON-lines event log.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scratch python -m bench.ingest_1m
        [--lines 1000000] [--users 10000] [--batch-size N] [--single-transaction] [--keep]

Writes the log into a temporary directory (ckpool-like: share_submitted events
from bench/shares.py, in the mining_events form with the collector's payload
and, one line in five, in ckpool's flat form with a "sec,nsec" createdate;
~1.5% rejected shares; a new_block_network event every ~2,000 lines; a few
malformed lines), then runs `python -m db.cli ingest FILE` on DATABASE_URL as a
subprocess, prints the wall time and lines/s, and checks that
share_weekly_best gained exactly the accepted shares.

It LOADS EVERY LINE INTO DATABASE_URL: use a scratch database with the schema
applied (python -m db.apply --no-schedule).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import ROOT
from bench.shares import POOL_DIFFICULTIES, random_share

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def write_log(path: Path, lines: int, users: int, seed: int, week_start: dt.datetime) -> dict:
    rng = random.Random(seed)
    names = [f"bc1qbench{rng.getrandbits(128):032x}" for _ in range(users)]
    pool_diffs = [rng.choice(POOL_DIFFICULTIES) for _ in range(users)]
    span_us = 7 * 86400 * 10**6
    step = span_us // lines
    counts = {"accepted": 0, "rejected": 0, "other": 0, "malformed": 0}
    with path.open("w") as out:
        for i in range(lines):
            ts = week_start + dt.timedelta(microseconds=i * step + rng.randrange(step or 1))
            if i % 2000 == 1999:
                out.write(json.dumps({"ts": ts.isoformat().replace("+00:00", "Z"), "event_type": "new_block_network",
                                      "payload": {"diff": 1.02e14 + rng.random() * 1e12}}) + "\n")
                counts["other"] += 1
                continue
            if i % 100_000 == 77_777:
                out.write('{"ts": "2026-01-01T00:00:00Z", "event_type": "share_submitted", "payload": {"user": ""}}\n')
                counts["malformed"] += 1
                continue
            u = rng.randrange(users)
            share = random_share(rng, names[u], pool_diffs[u], ts, rejected=0.015)
            counts["accepted" if share.accepted else "rejected"] += 1
            if i % 5 == 0:  # ckpool's flat form
                epoch = ts - EPOCH
                line = {"type": "share_submitted",
                        "createdate": f"{int(epoch.total_seconds())},{epoch.microseconds * 1000}",
                        "username": share.user, "workername": share.worker, "diff": share.diff,
                        "sdiff": share.sdiff, "result": share.accepted, "hash": share.hash}
            else:
                line = {"ts": ts.isoformat().replace("+00:00", "Z"), "event_type": "share_submitted",
                        "payload": share.payload()}
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=None, help="rows per COPY (default: the command's)")
    parser.add_argument("--single-transaction", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("set DATABASE_URL to a scratch database with the schema applied", file=sys.stderr)
        return 2

    with psycopg.connect(url) as conn:
        # A closed week in the past that this run fills; the aggregates are checked against it.
        conn.execute("SET TimeZone = 'UTC'")
        week, week_start = conn.execute("SELECT w, lottery_week_start_ts(w) FROM"
                                        " (SELECT lottery_week_at(now()) - 7 * (2 + (random() * 50)::int) AS w) AS p"
                                        ).fetchone()
        before = conn.execute("SELECT coalesce(sum(share_count), 0) FROM share_weekly_best WHERE week_start = %s",
                              (week,)).fetchone()[0]

    tmp = Path(tempfile.mkdtemp(prefix="lottery-bench-"))
    path = tmp / "events.jsonl"
    t0 = time.perf_counter()
    counts = write_log(path, args.lines, args.users, args.seed, week_start)
    print(f"generated {args.lines:,} lines ({path.stat().st_size / 1e6:.0f} MB) for the week of {week} "
          f"in {time.perf_counter() - t0:.1f} s: {path}")

    cmd = [sys.executable, "-m", "db.cli", "ingest", str(path), "--no-progress"]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if args.single_transaction:
        cmd.append("--single-transaction")
    t0 = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode:
        print(f"ingest failed with exit status {result.returncode}", file=sys.stderr)
        return 1

    expected = (f"ingested {args.lines} lines: {counts['accepted']} accepted shares, "
                f"{counts['rejected']} rejected shares, {counts['other']} other events, "
                f"{counts['malformed']} malformed")
    ok = expected in result.stdout
    with psycopg.connect(url) as conn:
        after = conn.execute("SELECT coalesce(sum(share_count), 0) FROM share_weekly_best WHERE week_start = %s",
                             (week,)).fetchone()[0]
    ok = ok and after - before == counts["accepted"]
    print(f"wall time {elapsed:.1f} s (process start included): {args.lines / elapsed:,.0f} lines/s; "
          f"batch {f'{args.batch_size:,}' if args.batch_size else 'the command default'}"
          f"{', one transaction' if args.single_transaction else ', commit per batch'}; "
          f"share_weekly_best +{after - before:,} shares (expected +{counts['accepted']:,}): "
          f"{'OK' if ok else 'MISMATCH'}")
    if args.keep:
        print(f"kept {path}")
    else:
        path.unlink()
        tmp.rmdir()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
