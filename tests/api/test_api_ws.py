"""WebSocket /ws on a real uvicorn: lottery_drawn reaches every client, a
notification only its user, in this project's framing or the platform's after a
subscribe; a burst reaches every client that reads; the relay survives a database restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.api.support import SECRET, Shares, make_settings, serve, token
from tests.helpers import wait_for
from web.app import create_app
from web.ws import OVERFLOW, Close, Frames, Hub


def ws(address: str, user: str | None, **kwargs):
    query = f"?token={token(user, **kwargs)}" if user else ""
    return connect(f"ws://{address}/ws{query}", proxy=None, open_timeout=5)


def ws_with(address: str, claims: dict):
    """A socket opened with a token of exactly these claims (plus exp)."""
    signed = jwt.encode({"exp": int(time.time()) + 600, **claims}, SECRET, algorithm="HS256")
    return connect(f"ws://{address}/ws?token={signed}", proxy=None, open_timeout=5)


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


def test_a_new_personal_best_reaches_its_miner_and_no_one_else(live_server, shares):
    assert wait_for(lambda: relay_listening(live_server), 10)
    shares.add("alice", 100.0, weeks_ago=1)   # a first share beats nothing: no notice
    with ws(live_server, "alice") as alice, ws(live_server, "bob") as bob:
        shares.add("alice", 50.0)             # below the best of all time: no notice either
        shares.add("alice", 5000.0, second=1)
        to_alice, to_bob = collect(alice, 3, until="notification"), collect(bob, 1)
    assert events(to_alice) == ["notification"] and to_bob == []
    notice = to_alice[0]["data"]
    assert (notice["subtype"], notice["title"]) == ("personal_best", "New personal best!")
    assert "5000" in notice["body"] and f"{shares.week(0)}" in notice["body"]
    assert shares.scalar("SELECT count(*) FROM notifications WHERE user_id = 'alice' AND subtype = 'personal_best'") == 1


def test_bad_tokens_are_refused_at_the_handshake(live_server):
    for sock_kwargs in ({"user": None}, {"user": "alice", "ttl": -10}):
        with pytest.raises(InvalidStatus) as refused:
            ws(live_server, **sock_kwargs)
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["code"] == "unauthorized"


@pytest.mark.parametrize("claims", [{"sub": ""}, {"sub": "x" * 129}, {"sub": "alice", "type": "refresh"},
                                    {"address": "alice"}],
                         ids=["empty_user", "user_over_128", "refresh_token", "no_user_claim"])
def test_tokens_without_a_valid_user_are_refused_at_the_handshake(live_server, claims):
    with pytest.raises(InvalidStatus) as refused:
        ws_with(live_server, claims)
    assert refused.value.response.status_code == 401
    body = json.loads(refused.value.response.body)
    assert body["code"] == "unauthorized" and body["detail"] == body["message"]
    with ws_with(live_server, {"sub": "x" * 128, "type": "access"}) as longest:
        longest.send(json.dumps({"action": "ping"}))
        assert longest.recv(timeout=5) == '{"type":"pong"}'   # serialised as every HTTP answer is


def platform_frames(sock, seconds: float, until=lambda frame: False) -> list[dict]:
    """Frames received within `seconds`, heartbeats left out, stopping after one that satisfies `until`."""
    got, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = json.loads(sock.recv(timeout=left))
        except TimeoutError:
            break
        if frame.get("type") != "ping" and frame.get("event") != "ping":
            got.append(frame)
            if until(frame):
                break
    return got


def is_draw(frame: dict) -> bool:
    return frame.get("event") == "lottery_drawn" or frame.get("data", {}).get("type") == "lottery_drawn"


def request(sock, message: dict) -> dict:
    sock.send(json.dumps(message))
    return json.loads(sock.recv(timeout=5))


def test_the_platforms_subscribe_protocol_beside_our_framing(live_server, shares):
    assert wait_for(lambda: relay_listening(live_server), 10)
    with ws(live_server, "alice") as alice, ws(live_server, "bob") as bob, ws(live_server, "carol") as carol:
        assert request(alice, {"action": "subscribe", "channel": "gamification"}) == \
            {"type": "subscribed", "channel": "gamification"}
        assert request(alice, {"action": "ping"}) == {"type": "pong"}
        assert request(alice, {"action": "subscribe", "channel": "mining"}) == \
            {"type": "error", "message": "Invalid channel: mining"}
        assert request(alice, {"action": "dance"}) == {"type": "error", "message": "Unknown action: dance"}
        # carol speaks the platform's protocol but chose no draws: only her own notifications.
        assert request(carol, {"action": "subscribe", "channel": "notifications"}) == \
            {"type": "subscribed", "channel": "notifications"}
        bob.send("not json")           # anything but an action is ignored, as before
        bob.send(json.dumps({"event": "hello"}))
        shares.add("alice", 10.0, weeks_ago=1)
        shares.add("carol", 5.0, weeks_ago=1)
        shares.draw(weeks_ago=1)
        week = f"{shares.week(1)}T00:00:00Z"

        to_alice = platform_frames(alice, 3, until=is_draw)
        assert [f["channel"] for f in to_alice] == ["notifications", "gamification"], to_alice
        assert to_alice[0]["data"]["type"] == "notification"
        assert to_alice[0]["data"]["payload"]["title"] == "Top 10 Weekly Lottery!"
        drawn = to_alice[1]["data"]
        assert drawn["type"] == "lottery_drawn" and drawn["weekStart"] == week and drawn["totalParticipants"] == 2
        to_bob = platform_frames(bob, 3, until=is_draw)    # never subscribed: today's frames, nothing of alice's
        assert [f["event"] for f in to_bob] == ["lottery_drawn"] and to_bob[0]["data"]["weekStart"] == week
        to_carol = platform_frames(carol, 1.5)
        assert [(f["channel"], f["data"]["type"]) for f in to_carol] == [("notifications", "notification")]

        assert request(alice, {"action": "unsubscribe", "channel": "gamification"}) == \
            {"type": "unsubscribed", "channel": "gamification"}
        shares.add("bob", 20.0, weeks_ago=2)
        shares.draw(weeks_ago=2)
        assert [f["event"] for f in platform_frames(bob, 3, until=is_draw)] == ["notification", "lottery_drawn"]
        assert platform_frames(alice, 1.5) == []           # unsubscribed from draws


def test_a_burst_of_notifications_reaches_every_reading_client(live_server, shares):
    """2,000 notifications in one transaction, eight times a client's queue: each of
    five reading clients (three in our framing, two in the platform's) gets exactly
    its own, in order, and none is dropped."""
    assert wait_for(lambda: relay_listening(live_server), 10)
    users = [f"burst{i}" for i in range(5)]
    with contextlib.ExitStack() as stack:
        socks = {user: stack.enter_context(ws(live_server, user)) for user in users}
        for user in users[3:]:
            assert request(socks[user], {"action": "subscribe", "channel": "gamification"})["type"] == "subscribed"
        # A sixth user who is not connected gets a share of the burst too.
        shares.scalar("INSERT INTO notifications (user_id, category, title, body) "
                      "SELECT 'burst' || (i %% 6), 'lottery', 'n' || i, '' FROM generate_series(1, 2000) AS i "
                      "RETURNING 1")
        expected = {user: [f"n{i}" for i in range(1, 2001) if f"burst{i % 6}" == user] for user in users}

        def read(user: str) -> list[str]:
            titles = []
            while len(titles) < len(expected[user]):
                frame = json.loads(socks[user].recv(timeout=10))
                if frame.get("event") == "notification":
                    titles.append(frame["data"]["title"])
                elif frame.get("channel") == "notifications":
                    titles.append(frame["data"]["payload"]["title"])
            return titles

        with ThreadPoolExecutor(len(users)) as pool:
            received = dict(zip(users, pool.map(read, users)))
        assert received == expected
        for sock in socks.values():   # still connected: never dropped as too slow
            assert request(sock, {"action": "ping"}) == {"type": "pong"}


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


def test_a_client_that_does_not_read_is_dropped_after_the_stall():
    async def scenario():
        hub = Hub(queue_size=3, stall_seconds=0.3)
        slow, fast = hub.register("slow"), hub.register("fast")
        for i in range(3):
            await hub.broadcast(Frames(f"m{i}", f"p{i}"))
            assert fast.queue.get_nowait() == f"m{i}"    # fast keeps draining
        started = time.monotonic()
        await hub.broadcast(Frames("m3", "p3"))           # slow's queue is full and stays full: dropped
        assert 0.3 <= time.monotonic() - started < 1      # the others wait that long at most
        assert isinstance(slow.queue.get_nowait(), Close) and slow.queue.empty()
        assert slow.closed and hub.dropped == 1 and [c.user_id for c in hub.clients()] == ["fast"]
        assert fast.queue.get_nowait() == "m3"
        await hub.send_to("slow", Frames("late", "late"))  # nothing more for a dropped client
        assert slow.queue.empty()
        await hub.send_to("fast", Frames("private", "private"))
        assert fast.queue.get_nowait() == "private"
    asyncio.run(scenario())
    assert OVERFLOW.code == 1013


def test_a_burst_waits_for_a_client_that_reads():
    """Fifty messages into a queue of three: a reader slower than the burst but
    reading gets every one, in order; its queue never holds more than three."""
    async def scenario():
        hub = Hub(queue_size=3, stall_seconds=1.0)
        reader = hub.register("reader")
        got = []

        async def read():
            while len(got) < 50:
                got.append(await reader.queue.get())
                await asyncio.sleep(0.002)
        reading = asyncio.create_task(read())
        for i in range(50):
            await hub.send_to("reader", Frames(f"m{i}", f"p{i}"))
            assert reader.queue.qsize() <= 3
        await reading
        assert got == [f"m{i}" for i in range(50)] and hub.dropped == 0 and not reader.closed
    asyncio.run(scenario())


def test_a_client_that_leaves_releases_a_waiting_burst():
    async def scenario():
        hub = Hub(queue_size=1, stall_seconds=30)
        gone = hub.register("gone")
        await hub.send_to("gone", Frames("m0", "p0"))
        waiting = asyncio.create_task(hub.send_to("gone", Frames("m1", "p1")))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        hub.unregister(gone)                              # what the endpoint does when the socket closes
        await asyncio.wait_for(waiting, 1)                # not the 30 s stall
        assert hub.dropped == 0
    asyncio.run(scenario())
