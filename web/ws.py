"""WebSocket /ws?token=<JWT>: `lottery_drawn` to every client, a user's own
notifications to that user only, `ping` heartbeats, `resync` after the relay
reconnected (events may have been missed while it was away).

One dedicated autocommit connection per process LISTENs on lottery_events
(psycopg's notifies() holds that connection, so it is never a pool's) and
fans out through a bounded asyncio queue per client: a client too slow to
drain its queue is dropped, it never holds back the relay or the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict

import psycopg
from starlette.websockets import WebSocket

from web.config import Settings
from web.errors import ApiError, error_response

log = logging.getLogger("web.ws")

CHANNEL = "lottery_events"
PING = json.dumps({"event": "ping"})
RESYNC = json.dumps({"event": "resync"})


class Close:
    """Queue item telling a client's sender to close the socket."""

    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


OVERFLOW = Close(1013, "too slow: message queue overflowed")
SHUTDOWN = Close(1001, "server shutting down")


class Client:
    __slots__ = ("user_id", "queue", "closed")

    def __init__(self, user_id: str, queue_size: int):
        self.user_id = user_id
        self.queue: asyncio.Queue[str | Close] = asyncio.Queue(maxsize=queue_size)
        self.closed = False


class Hub:
    """Connected clients by user. Used from the event loop only: no locks."""

    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self.by_user: dict[str, set[Client]] = defaultdict(set)
        self.dropped = 0

    def register(self, user_id: str) -> Client:
        client = Client(user_id, self.queue_size)
        self.by_user[user_id].add(client)
        return client

    def unregister(self, client: Client) -> None:
        clients = self.by_user.get(client.user_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.by_user[client.user_id]

    def clients(self) -> list[Client]:
        return [c for group in self.by_user.values() for c in group]

    def broadcast(self, message: str) -> None:
        for client in self.clients():
            self._offer(client, message)

    def send_to(self, user_id: str, message: str) -> None:
        for client in list(self.by_user.get(user_id, ())):
            self._offer(client, message)

    def close_all(self, close: Close = SHUTDOWN) -> None:
        for client in self.clients():
            self._close(client, close)

    def _offer(self, client: Client, message: str) -> None:
        if client.closed:
            return
        try:
            client.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("dropping WebSocket client of user %r: queue full", client.user_id)
            self._close(client, OVERFLOW)

    def _close(self, client: Client, close: Close) -> None:
        client.closed = True
        while not client.queue.empty():  # make room for the close order
            client.queue.get_nowait()
        client.queue.put_nowait(close)
        self.unregister(client)


class Relay:
    """LISTEN lottery_events on its own connection; reconnects with backoff forever."""

    def __init__(self, url: str, hub: Hub, settings: Settings):
        self.url, self.hub, self.settings = url, hub, settings
        self.state = "starting"
        self.reconnects = 0

    async def run(self) -> None:
        delay, connected_before = 0.2, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=self.settings.connect_timeout,
                        application_name="lottery-web-listen") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.state, delay = "listening", 0.2
                    if connected_before:
                        self.reconnects += 1
                        self.hub.broadcast(RESYNC)
                    connected_before = True
                    log.info("relay listening on %s", CHANNEL)
                    while True:
                        async for note in conn.notifies(timeout=self.settings.relay_probe_seconds):
                            self.dispatch(note.payload)
                        # Quiet for a while: a dead peer only shows when we talk to it.
                        await asyncio.wait_for(conn.execute("SELECT 1"), timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the relay must outlive any database trouble
                log.warning("relay lost its connection (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, delay)
            self.state = "reconnecting"
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.relay_max_backoff)

    def dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            event = message["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s payload", CHANNEL)
            return
        if event == "lottery_drawn":
            self.hub.broadcast(json.dumps({"event": event, "data": message.get("data")}))
        elif event == "notification" and isinstance(message.get("userId"), str):
            self.hub.send_to(message["userId"], json.dumps({"event": event, "data": message.get("data")}))
        # Anything else may be private to someone: never broadcast it.


async def _send_loop(websocket: WebSocket, client: Client, heartbeat: float, expires_at: float) -> None:
    while True:
        left = expires_at - time.time()
        if left <= 0:
            await websocket.close(code=1008, reason="token expired")
            return
        try:
            item = await asyncio.wait_for(client.queue.get(), timeout=min(heartbeat, left))
        except asyncio.TimeoutError:
            item = PING
        if isinstance(item, Close):
            await websocket.close(code=item.code, reason=item.reason)
            return
        await websocket.send_text(item)


async def _receive_loop(websocket: WebSocket) -> None:
    # Keep reading: it is how a client that left is noticed, and how uvicorn's
    # shutdown reaches this handler. Messages from clients are ignored.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def websocket_endpoint(websocket: WebSocket) -> None:
    state = websocket.app.state
    try:
        user = state.verifier.verify(websocket.query_params.get("token"))
    except ApiError as exc:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(error_response(exc.status, exc.code, exc.message, exc.hint))
        else:
            await websocket.close(code=1008, reason=exc.message[:120])  # a close reason is <= 123 bytes
        return
    await websocket.accept()
    client = state.hub.register(user.id)
    tasks = {asyncio.create_task(_send_loop(websocket, client, state.settings.ws_heartbeat_seconds,
                                            user.expires_at)),
             asyncio.create_task(_receive_loop(websocket))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        state.hub.unregister(client)
        for task in tasks:
            task.cancel()
        # A send to a client that is gone fails: that is just the end of it.
        await asyncio.gather(*tasks, return_exceptions=True)
