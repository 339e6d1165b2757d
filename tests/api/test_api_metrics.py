"""GET /metrics in the Prometheus text format (prometheus-client's own parser reads
it back): every family after requests, a WebSocket session and a draw; the
example alert rules and dashboard name only metrics that exist; METRICS_LISTEN;
several workers summed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from db.cluster import free_port
from tests.api.support import SECRET, auth, make_settings, serve, token
from tests.helpers import wait_for
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "lottery-alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "lottery-dashboard.json"

FAMILIES = {
    # HTTP
    "lottery_http_requests": "counter", "lottery_http_request_duration_seconds": "histogram",
    "lottery_http_connections_cut": "counter",
    # pool
    "lottery_db_pool_size": "gauge", "lottery_db_pool_in_use": "gauge", "lottery_db_pool_waiting": "gauge",
    "lottery_db_pool_max_size": "gauge", "lottery_db_pool_acquire_seconds": "histogram",
    "lottery_db_unavailable_answers": "counter", "lottery_db_up": "gauge",
    # WebSocket
    "lottery_ws_clients": "gauge", "lottery_ws_sessions": "counter", "lottery_ws_messages_sent": "counter",
    "lottery_ws_clients_dropped": "counter", "lottery_ws_relay_reconnects": "counter",
    "lottery_ws_relay_listening": "gauge",
    # database figures
    "lottery_operations_up": "gauge", "lottery_operations_age_seconds": "gauge",
    "lottery_open_week_participants": "gauge", "lottery_week_participants": "gauge",
    "lottery_week_shares": "gauge", "lottery_week_unverified_shares": "gauge", "lottery_week_forged_shares": "gauge", "lottery_week_raw_events": "gauge",
    "lottery_last_draw_week_start_timestamp_seconds": "gauge",
    "lottery_last_draw_completed_timestamp_seconds": "gauge", "lottery_last_draw_duration_seconds": "gauge",
    "lottery_last_draw_participants": "gauge", "lottery_draws_due": "gauge", "lottery_draw_overdue_seconds": "gauge",
    "lottery_cron_job_running": "gauge", "lottery_cron_job_last_run_failed": "gauge",
    "lottery_cron_job_last_run_start_timestamp_seconds": "gauge",
    "lottery_cron_job_last_success_timestamp_seconds": "gauge", "lottery_cron_job_runs": "gauge",
    "lottery_cron_job_failures": "gauge", "lottery_partitions_covered_until_timestamp_seconds": "gauge",
    "lottery_finding": "gauge", "lottery_health_status": "gauge",
}


@pytest.fixture
def settings(fresh_db_url):
    """The database figures read on every scrape here (the cache has a test of its own)."""
    return make_settings(fresh_db_url, metrics_cache_seconds=0)


def scrape(base: str) -> dict:
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict, name: str, sample: str | None = None, **labels) -> float:
    family = families[name]
    matching = [s.value for s in family.samples
                if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items())]
    assert matching, (name, labels, family.samples)
    return sum(matching)


def test_every_family_after_requests_a_websocket_session_and_a_draw(live_server, shares, fresh_db_url):
    base = f"http://{live_server}"
    shares.add("alice", 500.0, weeks_ago=1)
    shares.add("bob", 90.0, weeks_ago=1)
    shares.add("carol", 7.0)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("CALL run_scheduled_job('lottery-partitions')")
    week = shares.week(1).isoformat()
    before = scrape(base)  # the process's counters include other tests' requests: compare with these
    with connect(f"ws://{live_server}/ws?token={token('alice')}", proxy=None, open_timeout=5) as sock:
        assert wait_for(lambda: httpx.get(f"{base}/healthz").json()["relay"] == "listening", 10)
        assert httpx.get(f"{base}/api/lottery/week/{week}", headers=auth("alice")).status_code == 404
        drawn = httpx.post(f"{base}/api/admin/lottery/draw", params={"week": week},
                           headers=auth("admin", admin=True), timeout=30)
        assert drawn.status_code == 200
        # alice is in the top 10: her notification and the draw, in either order
        assert {json.loads(sock.recv(timeout=10))["event"] for _ in range(2)} == {"lottery_drawn", "notification"}
        assert httpx.get(f"{base}/api/lottery/week/{week}", headers=auth("alice")).status_code == 200
        during = scrape(base)
    families = scrape(base)

    for name, kind in FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, (name, families[name].type)
    def grew(name: str, sample: str | None = None, **labels) -> float:
        return value(families, name, sample, **labels) - (value(before, name, sample, **labels)
                                                          if _has(before, name, sample, **labels) else 0)

    # Route templates, never raw paths.
    assert grew("lottery_http_requests", method="GET", route="/api/lottery/week/{week_start}", status="404") == 1
    assert grew("lottery_http_requests", method="GET", route="/api/lottery/week/{week_start}", status="200") == 1
    assert grew("lottery_http_requests", method="POST", route="/api/admin/lottery/draw", status="200") == 1
    assert not any(week in s.labels.get("route", "") for s in families["lottery_http_requests"].samples)
    assert value(families, "lottery_http_request_duration_seconds", "lottery_http_request_duration_seconds_count",
                 route="/healthz") >= 1
    assert value(families, "lottery_db_pool_size", pool="write") >= 1
    assert value(families, "lottery_db_pool_max_size", pool="write") == 10
    assert grew("lottery_db_pool_acquire_seconds", "lottery_db_pool_acquire_seconds_count", pool="write") >= 4
    assert value(families, "lottery_db_up", pool="write") == 1
    assert value(during, "lottery_ws_clients") >= 1
    assert grew("lottery_ws_messages_sent") == 2
    assert grew("lottery_ws_sessions", outcome="accepted") == 1
    assert value(families, "lottery_ws_relay_listening") == 1
    # Database figures, from lottery_operations().
    assert value(families, "lottery_operations_up") == 1
    assert value(families, "lottery_week_participants", week=week) == 2
    assert value(families, "lottery_week_shares", week=week) == 2
    assert value(families, "lottery_week_shares", week=shares.week(0).isoformat()) == 1
    assert value(families, "lottery_week_forged_shares", week=week) == 0
    assert value(families, "lottery_open_week_participants") == 1
    assert value(families, "lottery_last_draw_participants") == 2
    assert value(families, "lottery_last_draw_duration_seconds") > 0
    assert value(families, "lottery_last_draw_week_start_timestamp_seconds") == \
        shares.scalar("SELECT extract(epoch FROM lottery_week_start_ts(%s))", (week,))
    assert abs(value(families, "lottery_last_draw_completed_timestamp_seconds") - time.time()) < 120
    assert value(families, "lottery_draws_due") == 0 and value(families, "lottery_draw_overdue_seconds") == 0
    assert value(families, "lottery_cron_job_runs", job="lottery-partitions") == 1
    assert value(families, "lottery_cron_job_last_run_failed", job="lottery-partitions") == 0
    assert value(families, "lottery_health_status") == 0


def _has(families: dict, name: str, sample: str | None = None, **labels) -> bool:
    return any((sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items())
               for s in families[name].samples) if name in families else False


def test_a_missed_draw_shows_as_a_finding(live_server, shares):
    shares.add("alice", 5.0, weeks_ago=2)  # a closed week, two weeks back, never drawn
    families = scrape(f"http://{live_server}")
    assert value(families, "lottery_health_status") == 2
    assert value(families, "lottery_finding", code="draw_overdue", severity="critical",
                 subject=shares.week(2).isoformat()) == 1
    assert value(families, "lottery_draws_due") == 1
    assert value(families, "lottery_draw_overdue_seconds") > 7 * 86400


def test_database_figures_are_cached(fresh_db_url, shares):
    with serve(create_app(make_settings(fresh_db_url, metrics_cache_seconds=60))) as address:
        base = f"http://{address}"
        before = value(scrape(base), "lottery_open_week_participants")
        shares.add("newcomer", 3.0)
        assert value(scrape(base), "lottery_open_week_participants") == before  # within METRICS_CACHE_SECONDS
    with serve(create_app(make_settings(fresh_db_url, metrics_cache_seconds=0))) as address:
        assert value(scrape(f"http://{address}"), "lottery_open_week_participants") == before + 1


def names_in(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\blottery_[a-z0-9_]+", expr)}


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def exposed_names(families: dict) -> set[str]:
    names = set()
    for family in families.values():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [])
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_alert_rules_and_dashboard_name_only_metrics_that_exist(live_server):
    exposed = exposed_names(scrape(f"http://{live_server}"))
    for source, expressions in (("rules", rule_expressions()), ("dashboard", dashboard_expressions())):
        named = names_in(expressions)
        assert len(named) > 10, source
        assert named <= exposed, (source, sorted(named - exposed))
    rules = yaml.safe_load(RULES.read_text())["groups"]
    assert all(rule["labels"]["severity"] in ("warning", "critical") for g in rules for rule in g["rules"])


def test_metrics_off_or_on_a_port_of_its_own(fresh_db_url):
    with serve(create_app(make_settings(fresh_db_url, metrics_listen=None))) as address:
        assert httpx.get(f"http://{address}/metrics").status_code == 404
    port = free_port()
    with serve(create_app(make_settings(fresh_db_url, metrics_listen=f"127.0.0.1:{port}"))) as address:
        assert httpx.get(f"http://{address}/metrics").status_code == 404
        families = scrape(f"http://127.0.0.1:{port}")
        assert value(families, "lottery_operations_up") == 1 and "lottery_db_pool_size" in families


def test_several_workers_report_their_sum(fresh_db_url, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "JWT_SECRET": SECRET,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    log = tmp_path / "server.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the server's logging
        server = subprocess.Popen([sys.executable, "-m", "web.server", "--port", str(port), "--workers", "2"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_for(lambda: _answers(base) or server.poll() is not None, 60) or server.poll() is not None:
            server.kill()
            server.wait(10)
            pytest.fail("the server did not start: " + log.read_text()[-3000:])
        before = value(scrape(base), "lottery_http_requests", route="/livez", status="200")
        for _ in range(40):
            # A new connection each time, so that both workers get some.
            with httpx.Client(base_url=base) as http:
                assert http.get("/livez").status_code == 200
        time.sleep(1.5)  # each worker samples its pool gauges every second
        families = scrape(base)
        assert value(families, "lottery_http_requests", route="/livez", status="200") == before + 40
        assert value(families, "lottery_db_pool_max_size") == 20  # livesum: 10 per worker
        workers = {p.name.split("_")[-1] for p in (tmp_path / "metrics").glob("counter_*.db")}
        assert len(workers) == 2, workers
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert "Traceback" not in log.read_text()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/livez", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
