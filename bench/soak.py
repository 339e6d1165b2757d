"""Soak test: minutes of mixed load on a real uvicorn, with a draw in the middle; pass/fail.

    python -m bench.soak [--seconds 300] [--rate 150] [--concurrency 16] [--users 5000]
                         [--ws-clients 50] [--ingest-batch 500] [--ingest-interval 0.5]

Everything runs on loopback, in scratch places, and is bounded in time:

1. the benchmarks' scratch PostgreSQL cluster (bench/common.py) with the database applied,
   no pg_cron job; a closed past week seeded with --users users' shares (bench/shares.py),
   NOT drawn yet, and some open-week shares;
2. the app as its own process: `uvicorn web.app:app --no-access-log` on 127.0.0.1 and a free
   port, as the production login would run it (SET ROLE lottery_web), until /healthz is 200;
3. for --seconds: --concurrency HTTP/1.1 keep-alive connections paced to --rate requests/s
   over weekly-data (open and past week), the four game views, history, plays (spread over
   every user, so the 30 plays/min limit is not the point; 429 are counted apart, not as
   errors) and lottery/current; --ws-clients WebSocket clients connected throughout; a
   thread ingesting --ingest-batch shares every --ingest-interval s into the open week as
   the collector does (role lottery_ingest; COPY and multi-row INSERT in turn);
   at the midpoint the admin draw of the seeded week over HTTP;
4. the web process's RSS (VmRSS) every 5 s.

Steps 3 and 4 are bench/soak_load.py; this module seeds, runs and judges.

PASS needs: no 5xx, no transport error, no unexpected 4xx (only 429 on plays and 404 on
lottery/current before the draw are expected); the draw answered 200 with the seeded totals;
every WebSocket client stayed connected and got lottery_drawn (the top-10 users among them,
as ranked_week() orders the seeded week, also their lottery_result notification, and no
other client one); zero lost shares
(share_weekly_best of the open week gained exactly the accepted shares inserted,
mining_events exactly the rows); the web RSS after warm-up (--warmup, default the first
60 s or 20% of the run, whichever is shorter) within 10% of its first value
((max - min) / first); no ERROR in the web log.

Prints one summary table (Markdown) and `soak: PASS` or `soak: FAIL (reasons)`; exit 0/1.
uvicorn and the cluster are stopped whatever happens, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import psycopg

from bench.common import (MIB, cluster_cpu_seconds, cpu_seconds, log, log_tail, machine_cpu, own_cpu_seconds,
                          percentile, print_markdown_table, scratch_cluster, start_web, stop_web, wait_healthy,
                          web_log_errors)
from bench.shares import POOL_DIFFICULTIES, random_share, random_ts
from bench.soak_load import DRAW_LABEL, MIX, Load, Seed, copy_rows
from core.tokens import TokenSettings, issue_token
from db.cluster import free_port


# --- seeding ---------------------------------------------------------------------------------

def seed_database(url: str, users: int, shares_per_user: int, rng: random.Random) -> Seed:
    """A closed week, not drawn, of `users` users x `shares_per_user` shares, and five
    shares each for half of them in the open week, loaded as role lottery_ingest."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")  # the weeks come back as UTC midnights
        now, open_week, past_week = conn.execute(
            "SELECT now(), lottery_week_start_ts(lottery_week_at(now())),"
            " lottery_week_start_ts(lottery_week_at(now()) - 7)").fetchone()
    names = [f"bc1qsoak{i:05d}" for i in range(users)]
    pool_diff = {u: rng.choice(POOL_DIFFICULTIES) for u in names}

    past = [random_share(rng, u, pool_diff[u], random_ts(rng, past_week, past_week + dt.timedelta(days=7)))
            for u in names for _ in range(shares_per_user)]
    past.sort(key=lambda share: share.ts)
    accepted = [share for share in past if share.accepted]
    open_rows = [random_share(rng, u, pool_diff[u], random_ts(rng, open_week, now)).row()
                 for u in names[: users // 2] for _ in range(5)]

    log(f"seeding {len(past):,} shares in the week of {past_week:%Y-%m-%d} (closed, not drawn) "
        f"and {len(open_rows):,} in the open week of {open_week:%Y-%m-%d}")
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE lottery_ingest")
        copy_rows(conn, [share.row() for share in past])
        copy_rows(conn, open_rows)
        conn.commit()
        conn.execute("RESET ROLE")
        # The draw's top 10 is whoever the one ranking function puts there.
        top10 = [u for (u,) in conn.execute("SELECT user_id FROM ranked_week(%s) WHERE rank <= 10 ORDER BY rank",
                                            (past_week.date(),))]
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return Seed(past_week, open_week, names, pool_diff, len({share.user for share in accepted}), len(accepted),
                top10, len(open_rows))


def open_week_totals(url: str, open_week: dt.datetime) -> tuple[int, int]:
    """(sum of share_count in share_weekly_best, rows in mining_events) for the open week."""
    with psycopg.connect(url) as conn:
        aggregated = conn.execute("SELECT coalesce(sum(share_count), 0) FROM share_weekly_best "
                                  "WHERE week_start = %s", (open_week.date(),)).fetchone()[0]
        events = conn.execute("SELECT count(*) FROM mining_events WHERE ts >= %s AND ts < %s",
                              (open_week, open_week + dt.timedelta(days=7))).fetchone()[0]
    return int(aggregated), int(events)


# --- the report ------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds * 1000:,.0f} ms"


def report(load: Load, baseline: tuple[int, int], after: tuple[int, int], cpu: list[float],
           web_errors: list[str], warmup: float) -> tuple[list[tuple[str, str, str]], list[str]]:
    args, seed = load.args, load.seed
    rows: list[tuple[str, str, str]] = []
    fails: list[str] = []
    secs = load.load_seconds or args.seconds

    def check(ok: bool, reason: str) -> str:
        if not ok:
            fails.append(reason)
        return "ok" if ok else "**FAIL**"

    rows.append(("setup", f"{secs:.0f} s of load on 127.0.0.1; {len(seed.users):,} users "
                 f"({seed.participants:,} in the closed week, {args.shares_per_user} shares each); "
                 f"{args.concurrency} HTTP connections paced to {args.rate:g} req/s; "
                 f"{args.ws_clients} WebSocket clients; ingest {args.ingest_batch} shares every "
                 f"{args.ingest_interval:g} s", ""))

    n = load.total_requests()
    c5, c4, c429 = load.count_class("5xx"), load.count_class("4xx"), load.count_class("429")
    unexpected = load.count_class("unexpected")
    errors = load.count_class("error")
    late = (f"; {load.dropped_slots:,} not sent: the load fell > 1 s behind its schedule"
            if load.dropped_slots else "")
    rows.append(("HTTP requests", f"{n:,} = {n / secs:,.1f} req/s achieved (target {args.rate:g}){late}", ""))
    rows.append(("by status", f"2xx {load.count_class('2xx'):,}; 4xx {c4:,} ({load.expected_404:,} "
                 f"404 on lottery/current before the draw, {unexpected:,} unexpected); 429 {c429:,}; "
                 f"5xx {c5:,}; transport errors {errors:,}",
                 check(c5 == 0 and unexpected == 0 and errors == 0,
                       f"{c5} 5xx, {unexpected} unexpected 4xx, {errors} transport errors")))
    for label, _ in MIX:
        lat = load.latencies.get(label, [])
        counts = load.requests.get(label, Counter())
        total = sum(v for k, v in counts.items() if k != "unexpected")
        extra = (f", 429 {counts['429']:,}" if label == "POST /api/games/play" else
                 f", 404 before the draw {load.expected_404:,}" if label == "GET /api/lottery/current" else "")
        rows.append((f"`{label}`", f"{total:,} ({counts['2xx']:,} 2xx{extra}); p50 {ms(percentile(lat, 50))}, "
                     f"p99 {ms(percentile(lat, 99))}, max {ms(max(lat, default=float('nan')))}", ""))

    draw = load.draw
    if "status" in draw:
        try:
            body = json.loads(draw["body"])
        except ValueError:
            body = {}
        ok = (draw["status"] == 200 and body.get("totalParticipants") == seed.participants
              and body.get("totalShares") == seed.past_shares and body.get("status") == "completed")
        rows.append((f"`{DRAW_LABEL}` at {draw['at']:.0f} s",
                     f"{draw['status']} in {ms(draw['seconds'])}: {body.get('totalParticipants', '?'):,} "
                     f"participants, {body.get('totalShares', '?'):,} shares "
                     f"(seeded {seed.participants:,} / {seed.past_shares:,})",
                     check(ok, f"admin draw answered {draw['status']} "
                               f"{draw['body'][:200] if draw['status'] != 200 else 'with other totals'}")))
    else:
        rows.append((f"`{DRAW_LABEL}`", draw.get("error", "not sent"), check(False, "admin draw not answered")))

    ws = load.ws
    got = [s for s in ws if s.drawn_at is not None]
    right = [s for s in got if s.drawn_data and s.drawn_data.get("totalParticipants") == seed.participants]
    closes = [c for s in ws for c in s.closes]
    sent = draw.get("sent_at")
    spread = (f" {ms(min(s.drawn_at for s in got) - sent)} .. {ms(max(s.drawn_at for s in got) - sent)}"
              f" after the draw request was sent" if got and sent else "")
    top_set = set(seed.top10)
    top_clients = [s for s in ws if s.user in top_set]
    results = "notification:lottery_result"
    notified_ok = all(s.events[results] == 1 for s in top_clients) and \
        all(s.events[results] == 0 for s in ws if s.user not in top_set)
    pings = sum(s.events["ping"] for s in ws)
    # The ingest's new personal bests notify their users too; they are counted, not judged.
    personal = sum(s.events["notification:personal_best"] for s in ws)
    rows.append(("WebSocket clients",
                 f"{len(ws)} connected throughout ({len(closes)} drops); {len(got)}/{len(ws)} got lottery_drawn"
                 f"{spread}; {sum(s.events[results] for s in top_clients)}/{len(top_clients)} "
                 f"top-10 notifications; {personal:,} personal-best notices; {pings:,} pings",
                 check(len(right) == len(ws) and not closes and notified_ok,
                       f"WebSocket: {len(right)}/{len(ws)} got the right lottery_drawn, {len(closes)} drops, "
                       f"notifications {'ok' if notified_ok else 'wrong'}")))

    ing = load.ingest
    gained_agg, gained_events = after[0] - baseline[0], after[1] - baseline[1]
    rows.append(("share ingest (COPY / INSERT in turn)",
                 f"{ing.batches:,} batches, {ing.rows:,} rows ({ing.rows / secs:,.0f}/s), {ing.accepted:,} accepted; "
                 f"batch p50 {ms(percentile(ing.latencies, 50))}, p99 {ms(percentile(ing.latencies, 99))}"
                 + (f"; {ing.late} late" if ing.late else "") + (f"; errors: {ing.errors}" if ing.errors else ""),
                 check(not ing.errors and ing.batches > 0, f"ingest errors {ing.errors[:2]}")))
    lost = ing.accepted - gained_agg
    rows.append(("shares aggregated (open week)",
                 f"share_weekly_best +{gained_agg:,} of {ing.accepted:,} accepted: lost {lost:,}; "
                 f"mining_events +{gained_events:,} of {ing.rows:,} rows",
                 check(lost == 0 and gained_events == ing.rows,
                       f"lost shares: {lost} (events {gained_events} vs {ing.rows})")))

    after_warmup = [(t, v) for t, v in load.rss if t >= warmup]
    if len(after_warmup) >= 3:
        values = [v for _, v in after_warmup]
        first, lo, hi, last = values[0], min(values), max(values), values[-1]
        growth = (hi - lo) / first
        rows.append((f"web RSS after warm-up ({warmup:.0f} s, {len(values)} samples)",
                     f"first {first / MIB:.1f}, min {lo / MIB:.1f}, max {hi / MIB:.1f}, last {last / MIB:.1f} MiB: "
                     f"(max - min) / first = {growth:.1%} (at start {load.rss[0][1] / MIB:.1f} MiB)",
                     check(growth <= args.rss_tolerance,
                           f"web RSS grew {growth:.1%} after warm-up (limit {args.rss_tolerance:.0%})")))
    else:
        rows.append(("web RSS after warm-up", f"only {len(after_warmup)} samples",
                     check(False, "too few RSS samples after warm-up")))
    web_cpu, pg_cpu, own_cpu, machine = cpu
    others = max(0.0, machine * (os.cpu_count() or 1) - web_cpu - pg_cpu - own_cpu)
    rows.append(("CPU, in cores", f"web process {web_cpu:.2f}; PostgreSQL {pg_cpu:.2f}; this load generator "
                 f"(HTTP, WebSocket, ingest) {own_cpu:.2f}; anything else on the machine {others:.2f}; "
                 f"machine {machine:.0%} busy ({os.cpu_count()} cores)", ""))
    rows.append(("web log", f"{len(web_errors)} ERROR/Traceback lines",
                 check(not web_errors, f"{len(web_errors)} errors in the web log")))
    return rows, fails


# --- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="load duration (default 300)")
    parser.add_argument("--rate", type=float, default=150, help="target HTTP requests/s (default 150)")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP connections (default 16)")
    parser.add_argument("--users", type=int, default=5000, help="seeded users (default 5000)")
    parser.add_argument("--shares-per-user", type=int, default=20, help="closed-week shares per user (default 20)")
    parser.add_argument("--ws-clients", type=int, default=50, help="WebSocket clients (default 50)")
    parser.add_argument("--ingest-batch", type=int, default=500, help="shares per ingest batch (default 500)")
    parser.add_argument("--ingest-interval", type=float, default=0.5, help="seconds between batches (default 0.5)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before RSS must stay flat (default: min(60, 20%% of --seconds))")
    parser.add_argument("--rss-tolerance", type=float, default=0.10, help="(max - min) / first (default 0.10)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    args = parser.parse_args(argv)
    if args.seconds < 10 or args.rate <= 0 or args.concurrency < 1 or args.users < 20 or args.ws_clients < 1:
        parser.error("need --seconds >= 10, --rate > 0, --concurrency >= 1, --users >= 20, --ws-clients >= 1")
    args.ws_clients = min(args.ws_clients, args.users)
    warmup = args.warmup if args.warmup is not None else min(60.0, 0.2 * args.seconds)

    def terminate(signum, frame):
        # As a Ctrl-C: whichever SIGINT handler is current (asyncio.run's cancels the load cleanly).
        os.kill(os.getpid(), signal.SIGINT)

    signal.signal(signal.SIGTERM, terminate)
    # A shell's background job starts with SIGINT ignored, and asyncio.run then leaves it so.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    secret = secrets.token_hex(32)
    settings = TokenSettings(algorithm="HS256", secret=secret)
    workdir = Path(tempfile.mkdtemp(prefix="lottery-soak-"))
    web_log = workdir / "uvicorn.log"
    web: subprocess.Popen | None = None
    stop_ingest = threading.Event()
    keep_log = True
    try:
        with scratch_cluster() as (url, _):
            try:
                seed = seed_database(url, args.users, args.shares_per_user, rng)
                baseline = open_week_totals(url, seed.open_week)
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                log(f"starting uvicorn web.app:app on {base} (log {web_log})")
                web = start_web(url, secret, port, web_log, "--lifespan", "on")
                wait_healthy(web, base)
                ttl = int(args.seconds) + 900
                tokens = {u: issue_token(u, ttl_seconds=ttl, settings=settings) for u in seed.users}
                load = Load(seed=seed, args=args, base=base, tokens=tokens, db_url=url,
                            admin_token=issue_token("soak-admin", admin=True, ttl_seconds=ttl, settings=settings),
                            web_pid=web.pid, rng=rng)
                log(f"{args.seconds:.0f} s of load: {args.rate:g} req/s target, {args.concurrency} connections, "
                    f"{args.ws_clients} WebSocket clients, {args.ingest_batch} shares / {args.ingest_interval:g} s; "
                    f"the draw at {args.seconds / 2:.0f} s")
                with psycopg.connect(url) as conn:
                    datadir = Path(conn.execute("SHOW data_directory").fetchone()[0])
                cpu0 = (cpu_seconds(web.pid), cluster_cpu_seconds(datadir), own_cpu_seconds())
                machine0 = machine_cpu()
                asyncio.run(load.run(stop_ingest))
                secs = load.load_seconds or args.seconds
                cpu1 = (cpu_seconds(web.pid), cluster_cpu_seconds(datadir), own_cpu_seconds())
                machine1 = machine_cpu()
                cpu = [(b - a) / secs for a, b in zip(cpu0, cpu1)]
                cpu.append((machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1]))
                after = open_week_totals(url, seed.open_week)
            finally:
                # Before the cluster stops (scratch_cluster's exit), on every path, Ctrl-C included.
                stop_ingest.set()
                stop_web(web)
        web_errors = web_log_errors(web_log)
        log("web RSS samples (MiB): " + " ".join(f"{t:.0f}s={v / MIB:.1f}" for t, v in load.rss))
        rows, fails = report(load, baseline, after, cpu, web_errors, warmup)
        for line in load.bad_bodies + load.transport_errors + [c for s in load.ws for c in s.closes][:10] \
                + web_errors[:20]:
            log(f"! {line}")
        print()
        print_markdown_table(rows, ("measure", "figure", "check"))
        print()
        if fails:
            print(f"soak: FAIL ({'; '.join(fails)})")
            log(f"web log kept: {web_log}")
            return 1
        keep_log = False
        print("soak: PASS")
        return 0
    except KeyboardInterrupt:
        keep_log = False
        log("interrupted: uvicorn and the cluster are stopped")
        print("soak: FAIL (interrupted)")
        return 130
    except Exception as exc:
        print(f"soak: FAIL ({type(exc).__name__}: {exc})")
        if web_log.exists():
            log(f"web log kept: {web_log}; its tail:\n{log_tail(web_log)}")
        return 1
    finally:
        if not keep_log or not web_log.exists():
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
