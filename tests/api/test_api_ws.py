"""WebSocket /ws on a real uvicorn: lottery_drawn reaches every client, a
notification only its user, and the relay survives a database restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.api.support import Shares, make_settings, serve, token, wait_for
from web.app import create_app
from web.ws import OVERFLOW, Close, Hub


def ws(address: str, user: str | None, **kwargs):
    query = f"?token={token(user, **kwargs)}" if user else ""
    return connect(f"ws://{address}/ws{query}", proxy=None, open_timeout=5)


def relay_listening(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/healthz", timeout=3).json().get("relay") == "listening"
    except (httpx.HTTPError, ValueError):
        return False


def collect(sock, seconds: float, until: str | None = None) -> list[dict]:
    """Messages received within `seconds` (pings left out), stopping early at event `until`."""
    got, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(sock.recv(timeout=left))
        except TimeoutError:
            break
        if message["event"] != "ping":
            got.append(message)
            if message["event"] == until:
                break
    return got


def events(messages: list[dict]) -> list[str]:
    return [m["event"] for m in messages]


def test_draws_and_notifications_survive_a_database_restart(live_server, shares, fresh_db_url, pg_cluster):
    assert wait_for(lambda: relay_listening(live_server), 10)
    with ws(live_server, "alice") as alice, ws(live_server, "bob") as bob:
        # Junk on the channel is skipped, and an unknown event is never broadcast.
        shares.scalar("SELECT pg_notify('lottery_events', 'not json'), "
                      "pg_notify('lottery_events', '{\"event\": \"other\", \"userId\": \"alice\"}')")
        shares.add("alice", 10.0, weeks_ago=1)   # alice is a top-10 participant, bob is not
        shares.draw(weeks_ago=1)
        started = time.monotonic()
        to_alice = collect(alice, 2, until="lottery_drawn")
        to_bob = collect(bob, 2, until="lottery_drawn")
        assert time.monotonic() - started < 2
        assert events(to_alice) == ["notification", "lottery_drawn"], to_alice
        assert to_alice[0]["data"]["title"] == "Top 10 Weekly Lottery!"
        assert events(to_bob) == ["lottery_drawn"], to_bob   # never alice's notification
        drawn = to_bob[0]["data"]
        assert drawn["weekStart"] == f"{shares.week(1)}T00:00:00Z" and drawn["totalParticipants"] == 1

        try:
            pg_cluster.stop()
        finally:
            pg_cluster.start()
        # The relay reconnects by itself and tells clients to refetch what they may have missed.
        assert events(collect(alice, 15, until="resync"))[-1:] == ["resync"]
        assert events(collect(bob, 5, until="resync"))[-1:] == ["resync"]

        with psycopg.connect(fresh_db_url) as conn:
            again = Shares(conn)
            again.add("bob", 20.0, weeks_ago=2)
            again.draw(weeks_ago=2)
            week = again.week(2)
        to_alice, to_bob = collect(alice, 2, until="lottery_drawn"), collect(bob, 2, until="lottery_drawn")
        assert events(to_alice) == ["lottery_drawn"] and events(to_bob) == ["notification", "lottery_drawn"]
        assert to_bob[-1]["data"]["weekStart"] == f"{week}T00:00:00Z"


def test_bad_tokens_are_refused_at_the_handshake(live_server):
    for sock_kwargs in ({"user": None}, {"user": "alice", "ttl": -10}):
        with pytest.raises(InvalidStatus) as refused:
            ws(live_server, **sock_kwargs)
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["code"] == "unauthorized"


def test_heartbeat_token_expiry_and_shutdown(fresh_db_url):
    settings = make_settings(fresh_db_url, ws_heartbeat_seconds=0.3)
    with contextlib.ExitStack() as clients:
        with serve(create_app(settings)) as address:
            with ws(address, "alice", ttl=2) as short:
                assert json.loads(short.recv(timeout=2)) == {"event": "ping"}
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        short.recv(timeout=5)
                assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == "token expired"
            lingering = clients.enter_context(ws(address, "bob"))
            assert json.loads(lingering.recv(timeout=2)) == {"event": "ping"}
        # serve() has asserted that uvicorn stopped while this client was still connected.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                lingering.recv(timeout=5)
        assert closed.value.rcvd.code == 1012  # service restart


def test_a_slow_client_is_dropped_without_holding_back_others():
    async def scenario():
        hub = Hub(queue_size=3)
        slow, fast = hub.register("slow"), hub.register("fast")
        for i in range(3):
            hub.broadcast(f"m{i}")
            assert fast.queue.get_nowait() == f"m{i}"    # fast keeps draining
        hub.broadcast("m3")                               # slow's queue is full: dropped
        assert isinstance(slow.queue.get_nowait(), Close) and slow.queue.empty()
        assert slow.closed and hub.dropped == 1 and [c.user_id for c in hub.clients()] == ["fast"]
        assert fast.queue.get_nowait() == "m3"
        hub.send_to("slow", "late")                       # nothing more for a dropped client
        assert slow.queue.empty()
        hub.send_to("fast", "private")
        assert fast.queue.get_nowait() == "private"
    asyncio.run(scenario())
    assert OVERFLOW.code == 1013
