"""While the database is down every endpoint answers 503 JSON; once it is back
the same process answers 200 again (real uvicorn, no restart of the app)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.support import auth, make_settings, serve
from tests.helpers import wait_for
from web.app import create_app


@pytest.fixture
def settings(fresh_db_url):
    # A short pool wait: each request during the outage costs that much.
    return make_settings(fresh_db_url, pool_timeout=0.5)

CALLS = [
    ("GET", "/api/games/weekly-data", None),
    ("GET", "/api/games/weekly-data/slots", None),
    ("GET", "/api/games/history", None),
    ("POST", "/api/games/play", {"gameType": "hammer"}),
    ("GET", "/api/lottery/stats", None),
    ("GET", "/api/lottery/week/2026-01-05", None),
]


def answers(http: httpx.Client) -> list[int]:
    return [http.request(method, path, json=body, headers=auth("alice")).status_code
            for method, path, body in CALLS]


HEALTHY = [200, 200, 200, 201, 200, 404]


def assert_unavailable(http: httpx.Client) -> None:
    for method, path, body in CALLS:
        started = time.monotonic()
        response = http.request(method, path, json=body, headers=auth("alice"))
        assert response.status_code == 503, (path, response.text)
        assert response.json()["code"] == "database_unavailable" and response.headers["retry-after"]
        assert time.monotonic() - started < 3  # the pool's wait, not a hang
    health = http.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert http.get("/livez").json() == {"status": "ok"}  # the process itself is fine


def recovered(http: httpx.Client) -> bool:
    got = answers(http)
    return http.get("/healthz").status_code == 200 and got in (HEALTHY, HEALTHY[:3] + [200] + HEALTHY[4:])


def test_outage_then_recovery_without_restart(live_server, pg_cluster):
    with httpx.Client(base_url=f"http://{live_server}", timeout=15) as http:
        assert answers(http) == HEALTHY
        try:
            pg_cluster.stop()
            assert_unavailable(http)
        finally:
            pg_cluster.start()
        assert wait_for(lambda: recovered(http), 20, interval=0.5)


def test_first_requests_after_a_restart_succeed(live_server, pg_cluster):
    """The pool drops the connections a restart left stale when it hands them out:
    no request fails on one, writes included (they are never retried)."""
    with httpx.Client(base_url=f"http://{live_server}", timeout=15) as http:
        assert answers(http) == HEALTHY
        try:
            pg_cluster.stop()
        finally:
            pg_cluster.start()
        assert answers(http) == HEALTHY[:3] + [200] + HEALTHY[4:]  # the play is a repeat now
        assert http.get("/healthz").status_code == 200


def test_app_starts_while_the_database_is_down(settings, pg_cluster):
    try:
        pg_cluster.stop()
        with serve(create_app(settings)) as address, \
                httpx.Client(base_url=f"http://{address}", timeout=15) as http:
            assert_unavailable(http)
            pg_cluster.start()
            assert wait_for(lambda: recovered(http), 20, interval=0.5)
    finally:
        pg_cluster.start()
