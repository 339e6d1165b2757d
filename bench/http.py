"""HTTP benchmark: the app under wrk, against a constant-JSON endpoint of the same server.

    python -m bench.http --database-url URL --user miner42 [--seconds 10] [--jwt-secret S]
                         [--reference-path /livez] [--rate 1000]

Given an already populated database and a user with data there, starts
`uvicorn web.app:app` (one worker, no access log, log level warning) on a free
loopback port and measures with wrk (Debian package `wrk`):

* saturation, `wrk -t2 -c32 --latency`: the constant-JSON reference path (no
  database: the framework's ceiling on this machine), /healthz (one `SELECT 1`
  through the pool: the ceiling of any endpoint that reads the database) and
  /api/games/weekly-data, each with the web process's CPU per request;
* /api/games/weekly-data paced at --rate requests/s: achieved rate, p50, p99, non-2xx,
  and how many cores the whole machine kept busy meanwhile (others' jobs included);
* the web process's peak RSS over the whole run (VmHWM).

wrk, uvicorn and PostgreSQL share the machine's cores; the reference runs under
the same conditions, so the ratio is the meaningful figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import (MIB, Progress, cpu_seconds, log, log_tail, machine_cpu, print_table, rss_bytes,
                          start_web, status_bytes, stop_web, wait_healthy, web_log_errors)
from core.tokens import TokenSettings, issue_token
from db.cluster import free_port

WEEKLY = "/api/games/weekly-data"
ROUND_TRIP = "/healthz"               # one SELECT 1 through the pool
THREADS, CONNECTIONS = 2, 32          # saturation
PACED_CONNECTIONS = 10                # paced: enough that a slow request does not starve the schedule
WARMUP_SECONDS = 2                    # fills the connection pool before anything is measured

# wrk prints times as 812.00us, 1.23ms, 2.01s, 1.50m, 1.00h.
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}

# Sends the token on every request; with a rate, paces through delay(), which wrk calls
# before each request and whose answer (whole ms) it waits before sending. Each call
# reserves the thread's next slot on a fixed schedule (threads / rate apart), so the
# achieved rate does not drop by the response time as a plain fixed delay of
# connections / rate would (the fallback when LuaJIT's ffi is missing).
LUA = """\
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
local interval = {interval_ms}
local fixed = {fixed_ms}
if interval > 0 then
  local ok, ffi = pcall(require, "ffi")
  local now_ms = nil
  if ok then
    ffi.cdef[[
      typedef struct {{ long sec; long nsec; }} bench_timespec;
      int clock_gettime(int clk, bench_timespec *tp);
    ]]
    local ts = ffi.new("bench_timespec")
    now_ms = function()
      ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
      return tonumber(ts.sec) * 1000 + tonumber(ts.nsec) / 1e6
    end
  end
  local next_at = nil
  function delay()
    if now_ms == nil then
      return fixed
    end
    local now = now_ms()
    -- At the start, or more than 1 s behind (the box saturated): restart the
    -- schedule from now rather than firing the backlog in a burst.
    if next_at == nil or next_at < now - 1000 then
      next_at = now
    end
    local wait = next_at - now
    next_at = next_at + interval
    if wait < 0 then
      return 0
    end
    return math.floor(wait)
  end
end
"""


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def figure(self) -> str:
        return f"{self.requests_per_s:,.0f} req/s, p50 {fmt_ms(self.p50_ms)}, p99 {fmt_ms(self.p99_ms)}"

    def problems(self) -> str:
        """wrk counts statuses >= 400 as "Non-2xx or 3xx"; no endpoint here redirects."""
        text = f"{self.non_2xx:,} non-2xx"
        return text + (f", {self.socket_errors:,} socket errors" if self.socket_errors else "")


def fmt_ms(value: float) -> str:
    if value < 10:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unexpected wrk time {text!r}")
    return float(match[1]) * UNIT_MS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str) -> re.Match:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise RuntimeError(f"wrk output without {pattern!r}:\n{output}")
        return match

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)  # printed only when > 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests_per_s=float(find(r"^Requests/sec:\s*([0-9.]+)")[1]),
        p50_ms=to_ms(find(r"^\s*50(?:\.0+)?%\s+(\S+)")[1]),
        p99_ms=to_ms(find(r"^\s*99(?:\.0+)?%\s+(\S+)")[1]),
        requests=int(find(r"^\s*(\d+) requests in ")[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(v) for v in errors.groups()) if errors else 0,
    )


def run_wrk(url: str, script: Path, seconds: int, threads: int, connections: int) -> WrkResult:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def write_script(path: Path, token: str, rate: float = 0.0, threads: int = 1, connections: int = 1) -> Path:
    interval = threads / rate * 1000 if rate else 0
    fixed = round(connections / rate * 1000) if rate else 0
    path.write_text(LUA.format(token=token, interval_ms=repr(float(interval)), fixed_ms=fixed))
    return path


def uvicorn_stack() -> str:
    """What uvicorn's --loop auto / --http auto pick in this interpreter: the figures
    of both endpoints depend on it (uvloop + httptools roughly double /livez)."""
    def have(name: str) -> bool:
        return importlib.util.find_spec(name) is not None
    loop = "uvloop" if have("uvloop") and sys.platform != "win32" else "asyncio"
    return f"{loop} + {'httptools' if have('httptools') else 'h11'}"


def cpu_per_request(before: float, after: float, result: WrkResult) -> str:
    """The web process's own CPU per request (cpu_seconds before and after):
    it holds steady when others load the shared cores, unlike requests/s."""
    if not result.requests:
        return ""
    return f"web process {(after - before) * 1000 / result.requests:.2f} ms CPU/request; "


def measure_http(database_url: str, user_id: str, seconds: int = 10, jwt_secret: str | None = None,
                 reference_path: str = "/livez", rate: float = 1000.0) -> list[tuple[str, str, str]]:
    """(measure, figure, reference) rows, as bench/run.py prints them; progress on stderr."""
    secret = jwt_secret or secrets.token_hex(32)
    token = issue_token(user_id, ttl_seconds=max(3600, 4 * seconds + 600),
                        settings=TokenSettings(algorithm="HS256", secret=secret))
    rows: list[tuple[str, str, str]] = Progress()
    workdir = Path(tempfile.mkdtemp(prefix="lottery-http-bench-"))
    web_log = workdir / "uvicorn.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = None
    ok = False
    try:
        stack = uvicorn_stack()
        log(f"starting uvicorn web.app:app on {base} (1 worker, {stack}, log {web_log})")
        web = start_web(database_url, secret, port, web_log, "--workers", "1", "--log-level", "warning")
        wait_healthy(web, base)
        rss_start = rss_bytes(web.pid)

        headers = {"Authorization": f"Bearer {token}"}
        probe = httpx.get(base + WEEKLY, headers=headers, timeout=10)
        if probe.status_code != 200:
            raise RuntimeError(f"GET {WEEKLY} as {user_id!r} answered {probe.status_code}: {probe.text[:300]}")
        shares = probe.json().get("totalShares")
        log(f"{WEEKLY} as {user_id!r}: 200, totalShares {shares}")
        reference = httpx.get(base + reference_path, headers=headers, timeout=10)
        has_reference = reference.status_code == 200
        if not has_reference:
            log(f"! reference {reference_path} answered {reference.status_code}: not measured")

        plain = write_script(workdir / "plain.lua", token)
        for path in ([reference_path] if has_reference else []) + [ROUND_TRIP, WEEKLY]:
            log(f"warm-up {WARMUP_SECONDS} s on {path}")
            run_wrk(base + path, plain, WARMUP_SECONDS, THREADS, CONNECTIONS)

        ref = None
        if has_reference:
            log(f"saturation: {reference_path}, wrk -t{THREADS} -c{CONNECTIONS} -d{seconds}s")
            cpu = cpu_seconds(web.pid)
            ref = run_wrk(base + reference_path, plain, seconds, THREADS, CONNECTIONS)
            rows.append((f"HTTP {reference_path} (constant JSON), saturation", ref.figure(),
                         f"same server ({stack}), no database; {cpu_per_request(cpu, cpu_seconds(web.pid), ref)}"
                         f"{ref.problems()}"))

        def versus(result: WrkResult) -> str:
            if ref is None:
                return f"no reference ({reference_path} answered {reference.status_code})"
            return f"constant JSON {ref.requests_per_s:,.0f} req/s: {result.requests_per_s / ref.requests_per_s:.2f}x"

        log(f"saturation: {ROUND_TRIP}, wrk -t{THREADS} -c{CONNECTIONS} -d{seconds}s")
        cpu = cpu_seconds(web.pid)
        trip = run_wrk(base + ROUND_TRIP, plain, seconds, THREADS, CONNECTIONS)
        rows.append((f"HTTP {ROUND_TRIP} (one SELECT 1), saturation", trip.figure(),
                     f"{versus(trip)}; {cpu_per_request(cpu, cpu_seconds(web.pid), trip)}{trip.problems()}"))
        log(f"saturation: {WEEKLY}, wrk -t{THREADS} -c{CONNECTIONS} -d{seconds}s")
        cpu = cpu_seconds(web.pid)
        sat = run_wrk(base + WEEKLY, plain, seconds, THREADS, CONNECTIONS)
        rows.append((f"HTTP {WEEKLY}, saturation", sat.figure(),
                     f"{versus(sat)}; SELECT 1 {trip.requests_per_s:,.0f} req/s: "
                     f"{sat.requests_per_s / trip.requests_per_s:.2f}x; "
                     f"{cpu_per_request(cpu, cpu_seconds(web.pid), sat)}{sat.problems()}"))

        # One wrk thread: 1,000 req/s is light work for it, and it keeps one schedule.
        paced_script = write_script(workdir / "paced.lua", token, rate, 1, PACED_CONNECTIONS)
        log(f"paced: {WEEKLY} at {rate:,.0f} req/s, wrk -t1 -c{PACED_CONNECTIONS} -d{seconds}s")
        busy, _ = machine_cpu()
        paced = run_wrk(base + WEEKLY, paced_script, seconds, 1, PACED_CONNECTIONS)
        # The tail follows how busy the shared cores were, whoever kept them busy.
        load = (f", machine busy {(machine_cpu()[0] - busy) / os.sysconf('SC_CLK_TCK') / seconds:.1f}"
                f" of {os.cpu_count()} cores")
        rows.append((f"HTTP {WEEKLY} paced at {rate:,.0f} req/s",
                     f"p50 {fmt_ms(paced.p50_ms)}, p99 {fmt_ms(paced.p99_ms)}",
                     f"{paced.requests_per_s:,.0f} req/s achieved{load}, {paced.problems()}"))

        # VmHWM: the kernel's own high-water mark of the resident set, so no sampling gap.
        peak = status_bytes(web.pid, "VmHWM")
        rows.append(("web process peak RSS (VmHWM)", f"{peak / MIB:,.0f} MiB" if peak else "unknown",
                     f"{rss_start / MIB:,.0f} MiB after /healthz" if rss_start else ""))
        ok = True
        return rows
    finally:
        stop_web(web)
        if web_log_errors(web_log) or not ok:
            tail = log_tail(web_log)
            log(f"web log kept: {web_log}" + ("; its tail:\n" + tail if tail else ""))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="postgresql:// URL of a populated database (default: $DATABASE_URL)")
    parser.add_argument("--user", required=True, help="a user id with shares in the open week")
    parser.add_argument("--seconds", type=int, default=10, help="each measured wrk run (default 10)")
    parser.add_argument("--jwt-secret", default=None, help="HS256 secret for the app (default: a random one)")
    parser.add_argument("--reference-path", default="/livez", help="constant-JSON path (default /livez)")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced run's requests/s (default 1000)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    if args.seconds < 1 or args.rate <= 0:
        parser.error("need --seconds >= 1 and --rate > 0")
    rows = measure_http(args.database_url, args.user, args.seconds, args.jwt_secret,
                        reference_path=args.reference_path, rate=args.rate)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
