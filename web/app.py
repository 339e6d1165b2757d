"""The ASGI app (web.app:app): each handler parses its input, calls ONE SQL
function from db/functions/ and returns the JSON that function built.
No ranking, week or XP logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import re
import time
from pathlib import Path
from typing import TypedDict

import psycopg
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from web import __version__, logs
from web.access import RequestObserver
from web.auth import Access, User, Verifier
from web.config import Settings
from web.db import Database
from web.errors import EXCEPTION_HANDLERS, RETRY_AFTER_SECONDS, ApiError, error_response
from web.metrics import Metrics, metrics_endpoint
from web.openapi import GAME_TYPE, WEEK, Answer, build_document, operation, path, query
from web.ws import Hub, Relay, websocket_endpoint

log = logging.getLogger("web")

# --- helpers: parsing only; every rule about the data is the SQL's -----------

def _json(row: tuple, status: int = 200) -> Answer:
    """The SQL function's JSON text; its operation renders it (web.openapi: one serialisation,
    members in the schema's order)."""
    return Answer(row[0], status)


def _read(request: Request):
    return request.state.db.read


def _write(request: Request):
    return request.state.db.write


_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")


def _int_param(request: Request, name: str, default: int, hint: str = "limit is 1..100, offset >= 0.") -> int:
    """An integer query parameter; its range is checked by SQL (LTP01)."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if not _INTEGER.fullmatch(value.strip()):
        raise ApiError(400, "invalid_pagination", f"{name} must be an integer", hint=hint)
    return int(value)


async def _json_object(request: Request) -> dict:
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    return body


def _text_field(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_body", f"{name} must be a string")
    try:
        value.encode("utf-8")  # a lone \ud800 escape cannot go to the database
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_body", f"{name} is not valid Unicode") from None
    return value


def _json_text(body: dict, name: str, default) -> str | None:
    """A body member re-serialised for a ::jsonb parameter (NULL stays NULL)."""
    value = body.get(name, default)
    if value is None:
        return None
    try:
        return json.dumps(value, allow_nan=False)  # ASCII-escaped: lone surrogates reach SQL as \u escapes
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_body", f"{name} is not valid JSON data") from None


# --- endpoints (seed 5.7) ---------------------------------------------------

@operation("The caller's weekly game data", ok={200: "WeeklyGameData"}, params=[WEEK], tag="games")
async def weekly_data(request: Request, user: User) -> Answer:
    """WeeklyGameData of the caller for the open week, or the week named by ?week=."""
    return _json(await Database.fetch(
        _read(request), "SELECT get_weekly_game_data(%s, parse_week(%s))::text",
        (user.id, request.query_params.get("week"))))


@operation("The caller's weekly game data with one game's view", ok={200: "GameData"}, tag="games",
           params=[path("game_type", GAME_TYPE, "the game"), WEEK])
async def game_data(request: Request, user: User) -> Answer:
    """WeeklyGameData plus `game`, the view of that game (hammer, horse_race, slots, scratch_card)."""
    return _json(await Database.fetch(
        _read(request), "SELECT get_game_data(%s, %s, parse_week(%s))::text",
        (user.id, request.path_params["game_type"], request.query_params.get("week"))))


@operation("The caller's game sessions, most recently played first", ok={200: "GameHistory"}, tag="games",
           params=[query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "page size"),
                   query("offset", {"type": "integer", "minimum": 0, "default": 0}, "sessions to skip"),
                   query("game_type", GAME_TYPE, "only this game")])
async def game_history(request: Request, user: User) -> Answer:
    """Only ever the caller's own sessions."""
    limit, offset = _int_param(request, "limit", 20), _int_param(request, "offset", 0)
    return _json(await Database.fetch(
        _read(request), "SELECT get_game_history(%s, %s::integer, %s::integer, %s)::text",
        (user.id, limit, offset, request.query_params.get("game_type"))))


@operation("Record a game play", ok={201: "GameSession", 200: "GameSession"}, body="PlayRequest",
           errors=[413, 429], tag="games")
async def play(request: Request, user: User) -> Answer:
    """201 with the new session on the first play of that game for that week;
    200 with playCount incremented on a repeat. Playing a drawn week sets gamePlayed on the result."""
    body = await _json_object(request)
    created, session = await Database.fetch(
        _write(request), "SELECT created, session::text FROM record_game_session(%s, %s, %s::jsonb, parse_week(%s))",
        (user.id, _text_field(body, "gameType"), _json_text(body, "resultData", {}), _text_field(body, "weekStart")))
    return _json((session,), 201 if created else 200)


@operation("The latest completed draw", ok={200: "LotteryDraw"}, errors=[404], tag="lottery")
async def lottery_current(request: Request, user: User) -> Answer:
    """The draw with the caller's result (myResult), the top 10 and nextDrawAt."""
    return _json(await Database.fetch(_read(request), "SELECT get_current_lottery(%s)::text", (user.id,)))


@operation("The draw of one week", ok={200: "LotteryDraw"}, errors=[404], tag="lottery",
           params=[path("week_start", {"type": "string", "example": "2026-11-16"},
                        "any day (YYYY-MM-DD) or ISO 8601 timestamp in the week")])
async def lottery_week(request: Request, user: User) -> Answer:
    """Same shape as /api/lottery/current."""
    return _json(await Database.fetch(
        _read(request), "SELECT get_lottery_by_week(%s, parse_week(%s))::text",
        (user.id, request.path_params["week_start"])))


@operation("A drawn week's canonical ranked list, paged, with its digest", ok={200: "DrawRanking"},
           errors=[404], tag="lottery",
           params=[path("week_start", {"type": "string", "example": "2026-11-16"},
                        "any day (YYYY-MM-DD) or ISO 8601 timestamp in the week"),
                   query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "lines per page"),
                   query("offset", {"type": "integer", "minimum": 0, "default": 0}, "lines to skip")])
async def lottery_ranking(request: Request, user: User) -> Answer:
    """Anyone can fetch every page, hash the lines (each followed by a newline) with SHA-256 to get
    resultsDigest, and re-derive each best difficulty from its hash: truediffone / int(hash, 16), truediffone = 2^224 - 2^208 (ckpool)."""
    limit, offset = _int_param(request, "limit", 100), _int_param(request, "offset", 0)
    return _json(await Database.fetch(
        _read(request), "SELECT get_draw_ranking(parse_week(%s), %s::integer, %s::bigint)::text",
        (request.path_params["week_start"], limit, offset)))


@operation("The caller's all-time lottery statistics", ok={200: "LotteryStats"}, tag="lottery")
async def lottery_stats(request: Request, user: User) -> Answer:
    """Seed LotteryStatsResponse, camelCase."""
    return _json(await Database.fetch(_read(request), "SELECT get_lottery_stats(%s)::text", (user.id,)))


@operation("One page of a week's leaderboard", ok={200: "Leaderboard"}, tag="lottery",
           params=[WEEK,
                   query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}, "rows per page"),
                   query("offset", {"type": "integer", "minimum": 0, "default": 0}, "ranks to skip")])
async def leaderboard(request: Request, user: User) -> Answer:
    """Ranks offset + 1 .. offset + limit: live, in the draw's exact order, until the week is drawn
    (`final` false), the draw's ranks after. Other miners show by display name, a shortened id,
    or "Anonymous miner"; only the caller's own row (`isMe`) carries a `userId`."""
    limit, offset = _int_param(request, "limit", 25), _int_param(request, "offset", 0)
    return _json(await Database.fetch(
        _read(request), "SELECT get_leaderboard(%s, parse_week(%s), %s::integer, %s::bigint)::text",
        (user.id, request.query_params.get("week"), limit, offset)))


@operation("The caller's row of a week's leaderboard and the rows around it", ok={200: "LeaderboardAround"},
           tag="lottery",
           params=[WEEK,
                   query("around", {"type": "integer", "minimum": 0, "maximum": 50, "default": 5},
                         "rows above and below the caller's")])
async def leaderboard_me(request: Request, user: User) -> Answer:
    """`around` rows above and below the caller's, clipped at both ends; live until drawn, final after.
    A caller without shares that week has no row (`myRank` 0) and gets the top 2 * around + 1 rows."""
    around = _int_param(request, "around", 5, hint="around is 0..50.")
    return _json(await Database.fetch(
        _read(request), "SELECT get_leaderboard_around(%s, parse_week(%s), %s::integer)::text",
        (user.id, request.query_params.get("week"), around)))


@operation("The caller's lottery weeks, newest first", ok={200: "LotteryHistory"}, tag="lottery",
           params=[query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "weeks per page"),
                   query("offset", {"type": "integer", "minimum": 0, "default": 0}, "weeks to skip")])
async def lottery_history(request: Request, user: User) -> Answer:
    """Every drawn week the caller took part in, and first, until drawn, the open week and the week
    just closed when the caller has shares in them (`final` false: live rank, no XP yet)."""
    limit, offset = _int_param(request, "limit", 20), _int_param(request, "offset", 0)
    return _json(await Database.fetch(
        _read(request), "SELECT get_lottery_history(%s, %s::integer, %s::integer)::text", (user.id, limit, offset)))


@operation("The caller's personal bests", ok={200: "PersonalBests"}, tag="lottery")
async def personal_bests(request: Request, user: User) -> Answer:
    """The best share of the open week, of last week and of all time, and the best final rank ever."""
    return _json(await Database.fetch(_read(request), "SELECT get_personal_bests(%s)::text", (user.id,)))


@operation("How other miners see the caller on public lists", ok={200: "Privacy"}, tag="lottery")
async def privacy(request: Request, user: User) -> Answer:
    """`public` true (the default): others see the caller's display name, else a shortened id;
    false: "Anonymous miner". `shownAs` is what they see."""
    return _json(await Database.fetch(_read(request), "SELECT get_lottery_privacy(%s)::text", (user.id,)))


@operation("Choose how other miners see the caller on public lists", ok={200: "Privacy"}, body="PrivacyRequest",
           tag="lottery")
async def set_privacy(request: Request, user: User) -> Answer:
    """`{"public": false}` shows the caller as "Anonymous miner" to everyone else on every public list
    (top 10, leaderboards) from now on; `{"public": true}` by name again. The caller always sees their own id."""
    public = (await _json_object(request)).get("public")
    return _json(await Database.fetch(
        _write(request), "SELECT set_lottery_privacy(%s, %s)::text",
        (user.id, public if isinstance(public, bool) else None)))  # anything else: SQL's LTV01


@operation("Run the draw of a closed week now (admin)", ok={200: "LotteryDraw"}, errors=[409],
           access=Access.ADMIN, tag="admin",
           params=[query("week", {"type": "string", "example": "2026-11-16"},
                         "a day of the week to draw; default: the last closed week")])
async def admin_draw(request: Request, user: User) -> Answer:
    """Manual trigger for a missed draw; idempotent (a drawn week is returned as it is).
    Needs a token with `admin: true`."""
    started = time.perf_counter()
    async with Database.long_transaction(_write(request)) as conn:
        row = await Database.one(conn, "SELECT run_lottery_draw_json(parse_week(%s), %s)::text",
                                 (request.query_params.get("week"), user.id))
    logs.log_draw(log, json.loads(row[0]), time.perf_counter() - started, user.id)
    return _json(row)


@operation("Liveness of the database", ok={200: "Health", 503: "Health"}, access=Access.PUBLIC, tag="ops")
async def healthz(request: Request) -> Response:
    """200 when the database answers, else 503. `relay` is the WebSocket relay's state."""
    db, relay = request.state.db, request.state.relay
    try:
        for pool in {db.write, db.read}:
            await Database.fetch(pool, "SELECT 1")
    except psycopg.Error:
        return JSONResponse({"status": "unavailable", "relay": relay.state}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return JSONResponse({"status": "ok", "relay": relay.state})


@operation("Liveness of the process", ok={200: "Health"}, access=Access.PUBLIC, tag="ops")
async def livez(request: Request) -> Response:
    """Constant JSON without touching the database: the process answers. Also the
    framework-only reference of bench/http.py."""
    return JSONResponse({"status": "ok"})


async def openapi_json(request: Request) -> Response:
    return JSONResponse(request.state.openapi)


ROUTES = [
    Route("/api/games/weekly-data", weekly_data, methods=["GET"]),
    Route("/api/games/weekly-data/{game_type}", game_data, methods=["GET"]),
    Route("/api/games/history", game_history, methods=["GET"]),
    Route("/api/games/play", play, methods=["POST"]),
    Route("/api/lottery/current", lottery_current, methods=["GET"]),
    Route("/api/lottery/week/{week_start}", lottery_week, methods=["GET"]),
    Route("/api/lottery/week/{week_start}/ranking", lottery_ranking, methods=["GET"]),
    Route("/api/lottery/stats", lottery_stats, methods=["GET"]),
    Route("/api/lottery/leaderboard", leaderboard, methods=["GET"]),
    Route("/api/lottery/leaderboard/me", leaderboard_me, methods=["GET"]),
    Route("/api/lottery/history", lottery_history, methods=["GET"]),
    Route("/api/lottery/personal-bests", personal_bests, methods=["GET"]),
    Route("/api/lottery/privacy", privacy, methods=["GET"]),
    Route("/api/lottery/privacy", set_privacy, methods=["POST"]),
    Route("/api/admin/lottery/draw", admin_draw, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/livez", livez, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False),
    WebSocketRoute("/ws", websocket_endpoint),
    # The reference client (web/static/): plain files, no token needed to load them.
    Mount("/play", StaticFiles(directory=Path(__file__).with_name("static"), html=True), name="play"),
]
METRICS_ROUTE = Route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)


class BodyLimit:
    """413 JSON for bodies over the limit: by Content-Length up front, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = ApiError(413, "payload_too_large", f"the request body exceeds {self.max_bytes} bytes")
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return await error_response(413, too_large.code, too_large.message)(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise too_large  # inside the handler's body read: the exception handler answers
            return message

        await self.app(scope, limited, send)


_heap_frozen = False


def _freeze_heap() -> None:
    """Exempt what is alive at startup (modules, classes, the app: ~50,000 objects)
    from the cyclic GC. Otherwise every full collection walks them all, stalling the
    event loop 30-50 ms (~1 ms after this) every 10-20 s under load, which every
    request in flight then waits out. Once per process (tests start many apps)."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


class State(TypedDict):
    """What the lifespan hands every request and socket (request.state.<name>)."""
    settings: Settings
    verifier: Verifier
    db: Database
    hub: Hub
    relay: Relay
    metrics: Metrics
    openapi: dict


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    settings: Settings = app.state.settings
    settings.check()
    logs.install(settings)
    db = Database(settings)
    await db.open()
    hub = Hub(settings.ws_queue_size, settings.ws_stall_seconds)
    relay = Relay(settings.database_url, hub, settings)
    relay_task = asyncio.create_task(relay.run(), name="lottery-events-relay")
    metrics = Metrics(settings, db, hub, relay)
    await metrics.start()
    state = State(settings=settings, verifier=Verifier(settings), db=db, hub=hub, relay=relay, metrics=metrics,
                  openapi=build_document(app.routes, "Solo lottery API", __version__))
    _freeze_heap()
    try:
        yield state
    finally:
        await metrics.stop()
        hub.close_all()
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        await db.close()


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; nothing connects before the lifespan starts."""
    settings = settings or Settings.from_env()
    middleware = [Middleware(BodyLimit, max_bytes=settings.max_body_bytes)]
    if settings.cors_origins:
        # Bearer tokens, not cookies: no credentials needed cross-origin.
        middleware.insert(0, Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                        allow_methods=["GET", "POST"],
                                        allow_headers=["Authorization", "Content-Type"], max_age=600))
    middleware.insert(0, Middleware(RequestObserver))  # outermost: sees every answer, 413 and CORS included
    # /metrics on the API's own port unless METRICS_LISTEN gives it one of its own (or turns it off).
    routes = ROUTES + ([METRICS_ROUTE] if settings.metrics_listen == "app" else [])
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=lifespan)
    app.state.settings = settings
    return app


app = create_app()
