"""Logs: one line per record, plain (logfmt) or JSON by LOG_FORMAT, through
structlog's formatter for the standard library's logging, so that uvicorn's,
psycopg's and this app's records all come out the same way.

Every field is escaped: a control character a client put in a path or a query
(NUL, CR, ESC) is written as an escape, so a record is one printable line in
either format (escape_controls; the JSON renderer escapes them itself).

Tokens never reach a log: every handler set up here, and uvicorn's own
loggers, pass records through RedactTokens (a `token=` query parameter and a
`Bearer` credential are replaced by `[redacted]`); the access lines of
web.access never carry the raw query string anyway.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import time

import structlog

HANDLER_NAME = "lottery"

_SECRETS = re.compile(
    r"(?P<key>(?:(?<=[?&;\s\"'])|^)(?:access_)?token=)[^&\s\"';]*"
    r"|(?P<scheme>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every token= value and Bearer credential replaced."""
    return _SECRETS.sub(lambda m: (m.group("key") or m.group("scheme")) + "[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message (its arguments merged in) without tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: leave it to the formatter
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class DropConnectionChatter(logging.Filter):
    """uvicorn's and websockets' per-connection INFO lines: web.access writes one
    line per request and WebSocket session instead (with the token left out)."""

    PREFIXES = ('%s - "WebSocket ', "connection open", "connection closed", "connection rejected")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and isinstance(record.msg, str)
                    and record.msg.startswith(self.PREFIXES))


class RateLimited:
    """A warning any client can cause at will: at most one line per `seconds`; the next
    line says how many were left out (`left_out`)."""

    def __init__(self, seconds: float):
        self.seconds, self._next, self._left_out = seconds, 0.0, 0

    def warning(self, logger: logging.Logger, event: str, **fields) -> None:
        now = time.monotonic()
        if now < self._next:
            self._left_out += 1
            return
        self._next = now + self.seconds
        if self._left_out:
            fields["left_out"], self._left_out = self._left_out, 0
        logger.warning(event, extra=fields)


# Control characters (C0, DEL, C1), line and paragraph separators, bidi overrides: a URL
# path or a header may carry any of them (GET /play/%00, %1B[31m, %0D%0A).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """`text` with each control character written as an escape (\\n, \\r, \\t, \\x1b, \\u2028):
    a log line stays one printable line whatever a client sent."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group()) or m.group().encode("unicode_escape").decode("ascii"), text)


def _escape_fields(logger, name: str, event: dict) -> dict:
    """Every text field of the plain format escaped (the JSON renderer escapes them itself)."""
    return {key: escape_controls(value) if isinstance(value, str) else value for key, value in event.items()}


def _drop_color_message(logger, name: str, event: dict) -> dict:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event


def formatter(fmt: str = "plain") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: timestamp, level, logger, message, then the record's extra fields."""
    pre_chain = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        render = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        render = [structlog.processors.format_exc_info, _escape_fields,
                  structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "logger", "event"],
                                                      bool_as_flag=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render])


def dict_config(fmt: str = "plain", level: str = "info") -> dict:
    """logging.config.dictConfig for a whole server process (`python -m web.server`):
    everything to stderr through one handler; uvicorn's access log off (web.access has it)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactTokens}, "chatter": {"()": DropConnectionChatter}},
        "formatters": {"structured": {"()": formatter, "fmt": fmt}},
        "handlers": {HANDLER_NAME: {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                    "formatter": "structured", "filters": ["redact", "chatter"]}},
        "root": {"handlers": [HANDLER_NAME], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "psycopg": {"level": "WARNING"},
            # Each failed connection attempt during an outage; web.db logs the outage once instead.
            "psycopg.pool": {"level": "ERROR"},
        },
    }


def install(settings) -> None:
    """Called at app startup, whatever started the app. Under plain `uvicorn
    web.app:app` (no handler on the root logger) this app's loggers get the
    structured handler; uvicorn's own loggers get the token filter either way."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    web = logging.getLogger("web")
    web.setLevel(settings.log_level.upper())
    if logging.getLogger().handlers or any(h.get_name() == HANDLER_NAME for h in web.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter(settings.log_format))
    handler.addFilter(RedactTokens())
    web.addHandler(handler)
    web.propagate = False


def log_draw(logger: logging.Logger, draw: dict, seconds: float, by: str) -> None:
    """The line every draw gets in this app's log (the database's log has its own)."""
    logger.info("lottery draw", extra={
        "week": (draw.get("weekStart") or "")[:10], "participants": draw.get("totalParticipants"),
        "shares": draw.get("totalShares"), "digest": draw.get("resultsDigest"),
        "duration_seconds": round(seconds, 3), "drawn_at": draw.get("drawnAt"), "requested_by": by})
