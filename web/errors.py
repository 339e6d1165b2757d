"""Errors as JSON {"code", "message", "detail", "hint"?}: `detail` repeats the message
where clients written against FastAPI read it. SQL errors carry their own SQLSTATE;
core/sqlstates.tsv is the one table of our codes and their HTTP status."""

from __future__ import annotations

import logging

import psycopg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from core import sqlstates
from web.db import DatabaseDown

log = logging.getLogger("web")


# Standard PostgreSQL codes that bad input or an outage can raise; the rest is a bug (500).
# A 4xx answers in this API's words: the server's text names its internals (types, functions).
STANDARD_SQLSTATES: dict[str, tuple[int, str, str | None]] = {
    "22P02": (400, "invalid_text_representation", "a value of the request cannot be read as what it should be"),
    "22P05": (400, "untranslatable_character", "the request holds a character that cannot be stored (U+0000)"),
    "22023": (400, "invalid_parameter_value", "a value of the request is out of its range"),
    "22003": (400, "numeric_value_out_of_range", "a number of the request is out of range"),  # limit=99999999999
    "22001": (400, "string_data_right_truncation", "a text of the request is too long"),
    "22007": (400, "invalid_datetime_format", "a date or time of the request cannot be read"),
    "22008": (400, "datetime_field_overflow", "a date or time of the request is out of range"),
    "54001": (400, "statement_too_complex", "the request's data is nested too deeply"),  # absurdly nested JSON
    "57014": (503, "query_canceled", None),                 # statement_timeout
    "40001": (503, "serialization_failure", None),
    "40P01": (503, "deadlock_detected", None),
    "53300": (503, "too_many_connections", None),
    "57P01": (503, "admin_shutdown", None),
    "57P02": (503, "crash_shutdown", None),
    "57P03": (503, "cannot_connect_now", None),
    "25006": (503, "read_only_sql_transaction", None),     # a write reached a standby (failover under way)
}
# What psycopg refuses to send (a text parameter holding NUL): answered in the same words.
INVALID_INPUT = (400, "invalid_input", "the request holds a character that cannot be stored (U+0000)")
UNAVAILABLE_CLASSES = ("08",)  # connection exceptions
# Retry-After of every 503: an outage is noticed at once and the first request
# after the database is back succeeds, so clients need not wait long.
RETRY_AFTER_SECONDS = 2


SQLSTATE_HTTP: dict[str, tuple[int, str]] = {
    **{code: (http, name) for code, (http, name, _) in STANDARD_SQLSTATES.items()},
    **{code: (s.http, s.name) for code, s in sqlstates.load().items()}}


class ApiError(Exception):
    """An error the web layer itself decides (auth, body parsing, size)."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.hint, self.headers = status, code, message, hint, headers


def error_response(status: int, code: str, message: str, hint: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"code": code, "message": message, "detail": message}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status, headers=headers)


def unavailable(message: str = "the database is unavailable") -> JSONResponse:
    return error_response(503, "database_unavailable", message, hint="Retry in a few seconds.",
                          headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.hint, exc.headers)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                          headers=exc.headers)


async def database_error(request: Request, exc: psycopg.Error) -> JSONResponse:
    """SQLSTATE -> HTTP by the table; errors without one are told apart by class."""
    if isinstance(exc, DatabaseDown):
        return unavailable()  # the gate logged the outage once; no line per request
    state = exc.sqlstate
    if state in SQLSTATE_HTTP:
        status, name = SQLSTATE_HTTP[state]
        if status == 503:
            log.warning("database unavailable: %s %s", state, exc)
            return unavailable()
        # A rate limit says in DETAIL how many seconds to wait.
        wait = exc.diag.message_detail if status == 429 else None
        headers = {"Retry-After": wait} if wait and wait.isdigit() else None
        if state in STANDARD_SQLSTATES:  # the server's text is not this API's
            return error_response(status, name, STANDARD_SQLSTATES[state][2])
        return error_response(status, name, exc.diag.message_primary or str(exc), exc.diag.message_hint, headers)
    if state and state.startswith(UNAVAILABLE_CLASSES):
        return unavailable()
    if state is None and isinstance(exc, psycopg.DataError):
        # Raised by psycopg before sending: a NUL byte in a text parameter.
        return error_response(*INVALID_INPUT)
    if state is None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        # Pool timeout, refused or lost connection: no server answered.
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return unavailable()
    log.error("unmapped database error %s", state, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    HTTPException: http_error,
    psycopg.Error: database_error,
    Exception: internal_error,
}
