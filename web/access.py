"""One log line and the metrics of every HTTP request and WebSocket session.

The line (logger web.access, INFO) carries the method, the path, the query
string with any token redacted, the route template, the status, the duration
and the client address. A client that goes away before its body is complete
is that one line with status 499 (408 when the server's body deadline cut it
off), not a traceback; a refused WebSocket handshake is its line with the
status and the reason.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web import metrics
from web.logs import redact
from web.server import DROPPED_KEY, TIMEOUT_KEY

log = logging.getLogger("web.access")

CLIENT_GONE = 499          # nginx's "client closed request"
BODY_TIMEOUT = 408


def _route(scope: Scope) -> str:
    """The route template ("/api/lottery/week/{week_start}"), never the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _query(scope: Scope) -> str:
    return redact(scope.get("query_string", b"").decode("latin-1"))


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


class RequestObserver:
    """Pure ASGI middleware, outermost of the app's own."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, note = 500, None

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except ClientDisconnect:
            # Nobody is left to answer: the request ends here, as one line below.
            timed_out = scope.get("extensions", {}).get(TIMEOUT_KEY) == "body"
            status = BODY_TIMEOUT if timed_out else CLIENT_GONE
            note = "body not received in time" if timed_out else "client disconnected before the request was read"
        finally:
            seconds = time.perf_counter() - started
            route, method = _route(scope), scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(seconds)
            fields = {"method": method, "path": scope["path"], "query": _query(scope), "route": route,
                      "status": status, "duration_ms": round(seconds * 1000, 2), "client": _client(scope)}
            if note:
                fields["note"] = note
            log.log(logging.WARNING if status >= 500 else logging.INFO, "request", extra=fields)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        session = {"accepted": False, "status": None, "code": None, "reason": None, "sent": 0, "by": None}

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "websocket.send":
                session["sent"] += 1
                metrics.WS_MESSAGES.inc()
            elif kind == "websocket.accept":
                session["accepted"] = True
                metrics.WS_CLIENTS.inc()
            elif kind == "websocket.close":
                session["code"], session["reason"], session["by"] = message.get("code", 1000), message.get("reason"), "server"
            elif kind == "websocket.http.response.start":
                session["status"] = message["status"]
            elif kind == "websocket.http.response.body" and session["reason"] is None:
                session["reason"] = _denial_reason(message.get("body", b""))
            await send(message)

        async def observed_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and session["code"] is None:
                session["code"], session["reason"], session["by"] = message.get("code"), message.get("reason"), "client"
            return message

        try:
            await self.app(scope, observed_receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            fields = {"path": scope["path"], "query": _query(scope), "route": _route(scope),
                      "client": _client(scope), "duration_ms": round(seconds * 1000, 2)}
            dropped = scope.get("extensions", {}).get(DROPPED_KEY)
            if dropped:  # aborted by web.ws: no close frame could be sent
                session["code"], session["reason"], session["by"] = 1006, dropped, "server"
            if session["accepted"]:
                metrics.WS_CLIENTS.dec()
                metrics.WS_SESSIONS.labels("accepted").inc()
                fields.update(status=101, messages_sent=session["sent"], close_code=session["code"],
                              closed_by=session["by"], reason=session["reason"] or None)
                log.info("websocket session", extra=fields)
            else:
                metrics.WS_SESSIONS.labels("refused").inc()
                status = session["status"] or 403
                fields.update(status=status, close_code=session["code"], reason=session["reason"] or None)
                log.info("websocket refused", extra=fields)


def _denial_reason(body: bytes) -> str | None:
    """The message of an error body ({"code", "message"}), as the handshake's refusal reason."""
    try:
        return str(json.loads(body).get("message"))
    except (ValueError, AttributeError):
        return None
