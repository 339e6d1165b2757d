"""Serve the app: `python -m web.server` (or `lottery-web`), uvicorn with this
project's connection limits, logs and metrics set up.

uvicorn has no deadline for a request's headers or body: a client may send
one byte a minute and hold its connection forever. GuardedHttpToolsProtocol
(uvicorn's httptools protocol plus deadlines and sizes) cuts such clients off:

* headers: the whole request head must arrive within HTTP_HEADER_TIMEOUT of
  the connection opening (or of the next request's first byte); else 408 and
  the connection is closed (closed silently when not a byte arrived);
* body: within HTTP_BODY_TIMEOUT of the headers; else 408 (if no response was
  sent yet) and closed;
* a request line over HTTP_MAX_URL_BYTES is 414, a head over
  HTTP_MAX_HEADER_BYTES 431, both answered at once and closed.

GuardedWebSockets (uvicorn's websockets protocol) finishes two refusals
properly: a handshake refused by the app (401) without uvicorn's "returned
without completing handshake" ERROR, and one refused by the websockets
library itself (a request line over its 8 KB limit, 414; a head too large,
431), counted in lottery_http_connections_cut_total and logged as refused. A
text message that is not UTF-8 closes its connection (1007) with a
rate-limited warning line, not uvicorn's ERROR and traceback. It hands the app
the abort of the connection (ABORT_KEY), for a client that does not read.

Several workers (`--workers N`): prometheus-client's multiprocess mode, in
PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory when unset), emptied here
before the workers start (with one worker, leave it unset).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import HeaderLineTooLong, RequestLineTooLong, TooManyHeaders

from web.config import Settings
from web.logs import RateLimited, dict_config

log = logging.getLogger("web.server")

TIMEOUT_KEY = "lottery.timeout"   # put in a request's scope when its body deadline cut it off (web.access reads it)
# Scope extensions of a WebSocket session: ABORT_KEY, set by GuardedWebSockets, aborts the
# connection at once (a client that does not read: web.ws); DROPPED_KEY, set by web.ws, says why.
ABORT_KEY, DROPPED_KEY = "lottery.abort", "lottery.dropped"


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_url_bytes: int = 8192
    max_header_bytes: int = 32768

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(settings.header_timeout, settings.body_timeout, settings.max_url_bytes, settings.max_header_bytes)


def _refusal(status: int, phrase: str, message: str) -> bytes:
    body = json.dumps({"code": phrase.lower().replace(" ", "_").replace("-", "_"), "message": message}).encode()
    return (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def _cut(reason: str):
    # Imported on first use, in a worker: the supervising process of `--workers N`
    # must not create metric files (nor import prometheus-client before main() set
    # PROMETHEUS_MULTIPROC_DIR).
    from web import metrics
    metrics.HTTP_CUT.labels(reason).inc()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and size limits."""

    def __init__(self, *args, limits: Limits | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.limits = limits or Limits()
        self._deadline = None          # the armed TimerHandle
        self._in_head = True           # reading a request head
        self._head_bytes = 0
        self._line_bytes = 0           # of the request line, until its end is seen
        self._line_done = False
        self._tail = b""               # the head's last 3 bytes, to find a \r\n\r\n split across reads

    # -- deadlines
    def _arm(self, seconds: float, expired) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, status: int, phrase: str, message: str, reason: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, phrase, message))
            self.transport.close()
        _cut(reason)
        log.info("connection cut", extra={"reason": reason, "status": status,
                                          "client": self.client[0] if self.client else None})

    def _head_expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(408, "Request Timeout", f"the request headers did not arrive within "
                     f"{self.limits.header_timeout:g} s", "header_timeout")

    def _body_expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None:
            cycle.scope.setdefault("extensions", {})[TIMEOUT_KEY] = "body"
        if cycle is not None and cycle.response_started:
            self.transport.close()  # answered already; the rest of the body is not worth waiting for
            _cut("body_timeout")
            return
        self._refuse(408, "Request Timeout", f"the request body did not arrive within "
                     f"{self.limits.body_timeout:g} s", "body_timeout")

    # -- uvicorn's protocol
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_expired)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head and not self._check_head(data):
            return
        super().data_received(data)

    def _check_head(self, data: bytes) -> bool:
        """Sizes checked before the parser sees the bytes: False when refused."""
        if not self._line_done:
            end = data.find(b"\n")
            self._line_bytes += end if end >= 0 else len(data)
            self._line_done = end >= 0
            if self._line_bytes > self.limits.max_url_bytes + 16:  # "GET " and " HTTP/1.1"
                self._refuse(414, "URI Too Long", f"the request target exceeds {self.limits.max_url_bytes} bytes",
                             "url_too_long")
                return False
        seen = self._tail + data
        end = seen.find(b"\r\n\r\n")
        self._head_bytes += (end + 4 - len(self._tail)) if end >= 0 else len(data)
        self._tail = seen[-3:]
        if self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large",
                         f"the request headers exceed {self.limits.max_header_bytes} bytes", "headers_too_large")
            return False
        return True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self.limits.header_timeout, self._head_expired)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head = False
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope and self._has_body():
            self._arm(self.limits.body_timeout, self._body_expired)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_head, self._head_bytes, self._line_bytes, self._line_done, self._tail = True, 0, 0, False, b""

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding":
                return True
        return False


class GuardedWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol; see the module's docstring."""

    def handle_connect(self, event) -> None:
        super().handle_connect(event)
        if self.handshake_complete:
            return  # refused by websockets (a bad handshake): no session
        self.scope["extensions"][ABORT_KEY] = self.transport.abort

    def handle_handshake_exception(self) -> None:
        # websockets refused the request itself (before the app saw it); uvicorn answers it.
        exc = self.conn.handshake_exc
        super().handle_handshake_exception()
        status, counted, reason = REFUSED_HANDSHAKES.get(type(exc), REFUSED_OTHERWISE)
        _cut(counted)
        log.info("websocket refused", extra={"status": status, "reason": reason,
                                             "client": self.client[0] if self.client else None})

    def send_receive_event_to_app(self) -> None:
        # A text message that is not UTF-8: closed 1007 (as uvicorn does), with one
        # rate-limited warning line instead of uvicorn's ERROR and traceback.
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError as exc:
                self.frames = []
                INVALID_UTF8.warning(log, "websocket message is not UTF-8: closed 1007",
                                     client=self.client[0] if self.client else None, position=exc.start)
                self.conn.send_close(1007, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()

    async def send(self, message) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            # The app's refusal (say 401) was the whole exchange: the handshake is over.
            self.handshake_complete = True


# websockets' own refusals: the status it answers, the reason counted (GuardedHttpToolsProtocol's
# names) and the one logged. Its limits: 8,192 bytes a line, 128 headers.
REFUSED_HANDSHAKES = {
    RequestLineTooLong: (414, "url_too_long", "the request line exceeds 8192 bytes"),
    HeaderLineTooLong: (431, "headers_too_large", "a header line exceeds 8192 bytes"),
    TooManyHeaders: (431, "headers_too_large", "more than 128 headers"),
}
REFUSED_OTHERWISE = (400, "websocket_handshake_refused", "not a valid HTTP request")
INVALID_UTF8 = RateLimited(seconds=10.0)


def uvicorn_options(settings: Settings) -> dict:
    """uvicorn.Config / uvicorn.run keyword arguments of this project."""
    return dict(
        http=functools.partial(GuardedHttpToolsProtocol, limits=Limits.from_settings(settings)),
        ws=GuardedWebSockets,
        access_log=False,                 # web.access writes one line per request, token redacted
        log_config=dict_config(settings.log_format, settings.log_level),
        timeout_graceful_shutdown=10)


def _fresh_multiprocess_dir() -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lottery-metrics-")
        return
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():  # figures of an earlier run must not be summed in
        if entry.is_file() and entry.suffix == ".db":
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lottery-web", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")),
                        help="worker processes (default 1; metrics are summed across them)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.workers > 1:
        _fresh_multiprocess_dir()  # read by the workers, which import web.metrics after this
    elif os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    uvicorn.run("web.app:app", host=args.host, port=args.port, workers=args.workers, **uvicorn_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
