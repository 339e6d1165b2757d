"""/openapi.json, built from the app's Route list: each handler carries its own
operation (the `operation` decorator) and this module holds the response
schemas, written after what the SQL functions return.

Every JSON answer is serialised one way, Starlette's JSONResponse's (compact, UTF-8):
a handler returns the SQL function's JSON as an Answer, and its operation renders
it with the members of each object in the order its schema lists them (json and
jsonb each have an order of their own: the query's, or by length)."""

from __future__ import annotations

import functools
import json
from typing import Any, Iterable, NamedTuple

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core.rules import DAYS, GAME_TYPES
from web.auth import Access, guard


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict, required: Iterable[str] | None = None, strict: bool = True) -> dict:
    schema = {"type": "object", "properties": properties,
              "required": list(properties if required is None else required)}
    if strict:
        schema["additionalProperties"] = False
    return schema


INSTANT = {"type": "string", "format": "date-time", "example": "2026-02-16T00:00:00Z"}
COUNT = {"type": "integer", "minimum": 0}
DIFFICULTY = {"type": "number", "minimum": 0}
GAME_TYPE = {"type": "string", "enum": list(GAME_TYPES)}
NULLABLE_GAME_TYPE = {"type": ["string", "null"], "enum": [*GAME_TYPES, None]}

WEEKLY_GAME_DATA = {
    "weekStart": INSTANT,
    "weekEnd": {**INSTANT, "example": "2026-02-22T23:59:59Z"},
    "bestDifficulty": DIFFICULTY,
    "bestHash": {"type": "string", "pattern": "^([0-9a-f]{64})?$",
                 "description": "hash of the share that set bestDifficulty; empty without shares"},
    "networkDifficulty": DIFFICULTY,
    "progressRatio": {"type": "number", "minimum": 0, "maximum": 1},
    "dailyBestDiffs": {"type": "array", "items": DIFFICULTY, "minItems": 7, "maxItems": 7,
                       "description": "best difficulty of each day, Monday first; 0 for a day without shares"},
    "totalShares": COUNT,
    "weeklyRank": {**COUNT, "description": "final once drawn, else live; 0 without shares"},
    "percentile": {"type": "number", "minimum": 0, "maximum": 100},
    "blockFound": {"type": "boolean"},
}

GAME_VIEWS = {
    "HammerView": _object({"logBest": {"type": "number"}, "logNetwork": {"type": "number"},
                           "progressRatio": {"type": "number", "minimum": 0, "maximum": 1}}),
    "HorseRaceView": _object({
        "horses": {"type": "array", "minItems": 7, "maxItems": 7, "items": _object({
            "day": {"type": "string", "enum": DAYS}, "bestDifficulty": DIFFICULTY,
            "place": {"type": "integer", "minimum": 1, "maximum": 7}})},
        "winner": {"type": "string", "enum": DAYS}}),
    "SlotsView": _object({"reels": {"type": "array", "minItems": 3, "maxItems": 3,
                                    "items": {"type": "string", "pattern": "^[0-9a-f]$"}}}),
    "ScratchCardView": _object({
        "bestDifficulty": DIFFICULTY, "weeklyRank": COUNT,
        "percentile": {"type": "number", "minimum": 0, "maximum": 100},
        "tier": {"type": "string", "enum": ["Top 10", "Top 50", "Top 100", "Participated", "Did not mine"]},
        "xp": COUNT}),
}

RANK = {"type": "integer", "minimum": 1}
PERCENTILE = {"type": "number", "minimum": 0, "maximum": 100}
HASH = {"type": "string", "pattern": "^([0-9a-f]{64})?$", "description": "empty without a usable hash"}
TIER = {"type": "string", "enum": ["Top 10", "Top 50", "Top 100", "Participated", "Did not mine"]}
PUBLIC_NAME = {"type": "string", "description": "the caller's own display name, else their id; another miner's "
                                                "display name, else a shortened id (bc1qxy…0wlh), or \"Anonymous miner\""}

LOTTERY_RESULT = _object({
    "rank": RANK,
    "displayName": PUBLIC_NAME,
    "bestDifficulty": DIFFICULTY,
    "xpAwarded": COUNT,
    "gamePlayed": NULLABLE_GAME_TYPE,
    "userId": {"type": "string", "description": "only on the caller's own result"},
    "pseudonym": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                  "description": "the caller's own result of a format-2 draw: the name of its published line"},
    "pseudonymSalt": {"type": "string", "pattern": "^[0-9a-f]{32}$",
                      "description": "pseudonym = hex sha256(bytes of pseudonymSalt || UTF-8 userId)"},
}, required=["rank", "displayName", "bestDifficulty", "xpAwarded", "gamePlayed"])

LEADERBOARD_ROW = _object({
    "rank": RANK,
    "displayName": PUBLIC_NAME,
    "bestDifficulty": DIFFICULTY,
    "bestShareAt": {**INSTANT, "description": "when the miner first reached bestDifficulty that week"},
    "isMe": {"type": "boolean"},
    "userId": {"type": "string", "description": "only on the caller's own row"},
}, required=["rank", "displayName", "bestDifficulty", "bestShareAt", "isMe"])

LEADERBOARD_HEAD = {
    "weekStart": INSTANT,
    "weekEnd": INSTANT,
    "final": {"type": "boolean", "description": "true: the draw's ranks; false: live, in the draw's order"},
    "participants": COUNT,
    "nextDrawAt": INSTANT,
    "offset": {**COUNT, "description": "the ranks above the first row"},
}

PERSONAL_BEST = _object({"weekStart": INSTANT, "bestDifficulty": DIFFICULTY, "bestHash": HASH,
                         "bestShareAt": INSTANT})

SCHEMAS: dict[str, dict] = {
    "WeeklyGameData": _object(WEEKLY_GAME_DATA),
    "GameData": _object({**WEEKLY_GAME_DATA, "game": {"oneOf": [_ref(name) for name in GAME_VIEWS]}}),
    **GAME_VIEWS,
    "GameSession": _object({
        "id": {"type": "string", "format": "uuid"},
        "gameType": GAME_TYPE,
        "weekStart": INSTANT,
        "playedAt": {**INSTANT, "description": "first play"},
        "lastPlayedAt": INSTANT,
        "playCount": {"type": "integer", "minimum": 1},
        "resultData": {"type": "object"},
    }),
    "GameHistory": {"type": "array", "items": _ref("GameSession"), "maxItems": 100},
    "PlayRequest": _object({
        "gameType": GAME_TYPE,
        "resultData": {"type": "object", "default": {},
                       "description": "a JSON object of at most 4096 bytes, nested at most 8 levels"},
        "weekStart": {"type": "string", "example": "2026-11-16",
                      "description": "a day of a past or the open week (default: the open week)"},
    }, required=["gameType"], strict=False),
    "LotteryResult": LOTTERY_RESULT,
    "LotteryDraw": _object({
        "id": {"type": "string", "format": "uuid"},
        "weekStart": INSTANT,
        "weekEnd": INSTANT,
        "totalParticipants": COUNT,
        "totalShares": COUNT,
        "drawnAt": {"type": ["string", "null"], "format": "date-time"},
        "status": {"type": "string", "enum": ["pending", "in_progress", "completed", "failed"]},
        "resultsDigest": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$",
                          "description": "SHA-256 of the canonical ranked list (see /ranking)"},
        "forgedShares": {**COUNT, "description": "shares excluded: sdiff above what their hash proves"},
        "rankingFormat": {"type": "integer", "enum": [1, 2],
                          "description": "1: ranking lines name user ids (older draws); 2: pseudonyms"},
        "myResult": {"oneOf": [_ref("LotteryResult"), {"type": "null"}],
                     "description": "the caller's result; null when they did not take part"},
        "top10": {"type": "array", "items": _ref("LotteryResult"), "maxItems": 10},
        "nextDrawAt": INSTANT,
    }),
    "DrawRanking": _object({
        "weekStart": INSTANT,
        "resultsDigest": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
        "digest": {"type": "string", "description": "how resultsDigest is computed from the lines"},
        "totalParticipants": COUNT,
        "forgedShares": COUNT,
        "rankingFormat": {"type": "integer", "enum": [1, 2]},
        "line": {"type": "string", "description": "what each line holds in this draw's format"},
        "offset": COUNT,
        "lines": {"type": "array", "maxItems": 1000, "items": {
            "type": "string", "description": "JSON array [rank, userId (format 1) or pseudonym (format 2), "
                                             "bestDifficulty, bestHash, bestShareAt]"}},
    }),
    "LeaderboardRow": LEADERBOARD_ROW,
    "Leaderboard": _object({**LEADERBOARD_HEAD,
                            "rows": {"type": "array", "items": _ref("LeaderboardRow"), "maxItems": 100}}),
    "LeaderboardAround": _object({**LEADERBOARD_HEAD,
                                  "myRank": {**COUNT, "description": "the caller's rank that week; 0 without shares"},
                                  "around": {"type": "integer", "minimum": 0, "maximum": 50},
                                  "rows": {"type": "array", "items": _ref("LeaderboardRow"), "maxItems": 101}}),
    "LotteryHistory": _object({"weeks": {"type": "array", "maxItems": 100, "items": _object({
        "weekStart": INSTANT,
        "weekEnd": INSTANT,
        "final": {"type": "boolean", "description": "false: a week not drawn yet, its live rank and no XP yet"},
        "rank": RANK,
        "participants": COUNT,
        "percentile": PERCENTILE,
        "bestDifficulty": DIFFICULTY,
        "bestHash": HASH,
        "totalShares": COUNT,
        "xpAwarded": COUNT,
        "tier": TIER,
        "gamePlayed": NULLABLE_GAME_TYPE,
    })}}),
    "PersonalBest": PERSONAL_BEST,
    "PersonalBests": _object({
        "thisWeek": {"oneOf": [_ref("PersonalBest"), {"type": "null"}], "description": "the open week's best share"},
        "lastWeek": {"oneOf": [_ref("PersonalBest"), {"type": "null"}]},
        "allTime": {"oneOf": [_ref("PersonalBest"), {"type": "null"}]},
        "bestRank": {"oneOf": [_object({"rank": RANK, "weekStart": INSTANT, "participants": COUNT,
                                        "percentile": PERCENTILE}), {"type": "null"}],
                     "description": "the best final rank ever, in the earliest week it was reached"},
    }),
    "Privacy": _object({
        "public": {"type": "boolean"},
        "shownAs": {"type": "string", "description": "what other miners see on public lists"},
        "updatedAt": {"type": ["string", "null"], "format": "date-time"},
    }),
    "PrivacyRequest": _object({"public": {"type": "boolean"}}, strict=False),
    "LotteryStats": _object({
        "totalWeeksParticipated": COUNT,
        "bestRank": COUNT,
        "averageRank": {"type": "number", "minimum": 0},
        "totalXpFromLottery": COUNT,
        "mostPlayedGame": NULLABLE_GAME_TYPE,
        "weeksInTop10": COUNT,
        "weeksInTop50": COUNT,
        "weeksInTop100": COUNT,
        "currentStreak": COUNT,
    }),
    "Error": _object({"code": {"type": "string", "description": "the error's name, e.g. invalid_week"},
                      "message": {"type": "string"},
                      "detail": {"type": "string", "description": "the message again, where FastAPI clients read it"},
                      "hint": {"type": "string"}}, required=["code", "message", "detail"]),
    "Health": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "relay": {"type": "string"}}, "required": ["status"]},
}

ERROR_TEXT = {
    400: "invalid input (code names the problem, see core/sqlstates.tsv)",
    401: "missing, invalid or expired bearer token",
    403: "the token lacks the admin claim",
    404: "no such draw",
    409: "the week has not closed yet",
    413: "request body too large",
    429: "too many requests; Retry-After says when to try again",
    503: "database unavailable; retry later",
}


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _fits(value, schema: dict) -> bool:
    """Whether `value` can be of `schema` (to choose among a oneOf's options)."""
    if value is None:
        return "null" in (schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")])
    if isinstance(value, dict):
        return schema.get("type") == "object" and set(value) <= set(schema.get("properties", {}))
    return schema.get("type") != "object"


def in_schema_order(value, schema: dict):
    """`value` with the members of each object in the order `schema` lists them (members it
    does not list after those, as they came; free-form objects, such as resultData, as they came)."""
    schema = _resolve(schema)
    if "oneOf" in schema:
        schema = next((option for option in map(_resolve, schema["oneOf"]) if _fits(value, option)), {})
    if isinstance(value, dict) and "properties" in schema:
        listed = schema["properties"]
        ordered = {name: in_schema_order(value[name], listed[name]) for name in listed if name in value}
        ordered.update((name, member) for name, member in value.items() if name not in listed)
        return ordered
    if isinstance(value, list) and "items" in schema:
        return [in_schema_order(item, schema["items"]) for item in value]
    return value


class Answer(NamedTuple):
    """What a handler returns: the JSON text its SQL function built, and the status."""
    text: str
    status: int = 200


def query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def path(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


WEEK = query("week", {"type": "string", "example": "2026-11-16"},
             "any day (YYYY-MM-DD) or ISO 8601 timestamp in the week; default: the open week")


def operation(summary: str, *, ok: dict[int, str | None], params: Iterable[dict] = (),
              body: str | None = None, errors: Iterable[int] = (), access: Access = Access.USER,
              tag: str | None = None):
    """Declare a handler's operation: `ok` maps the statuses it answers itself to a
    schema name, `errors` lists the statuses answered with an Error, `access` is what
    the route needs. Returns the endpoint that enforces `access` (web.auth.guard) with
    the OpenAPI operation attached, so the document and the enforcement cannot disagree.
    Authenticated operations also document 401 and 503 (403 for ADMIN), those with
    parameters or a body 400."""
    params = list(params)

    def attach(handler):
        statuses = set(errors)
        if access is not Access.PUBLIC:
            statuses |= {401, 503} | ({403} if access is Access.ADMIN else set())
        if params or body:
            statuses.add(400)
        responses: dict[str, Any] = {}
        for status, schema in ok.items():
            responses[str(status)] = {"description": {200: "OK", 201: "Created"}.get(status, "Unavailable")}
            if schema:
                responses[str(status)]["content"] = {"application/json": {"schema": _ref(schema)}}
        for status in sorted(statuses):
            responses[str(status)] = {"description": ERROR_TEXT[status],
                                      "content": {"application/json": {"schema": _ref("Error")}}}
        op: dict[str, Any] = {"summary": summary, "operationId": handler.__name__,
                              "description": (handler.__doc__ or "").strip(),
                              "parameters": params, "responses": responses,
                              "security": [] if access is Access.PUBLIC else [{"bearerAuth": []}]}
        if tag:
            op["tags"] = [tag]
        if body:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": _ref(body)}}}
        schemas = {status: _ref(schema) for status, schema in ok.items() if schema}

        @functools.wraps(handler)
        async def rendered(request, *args) -> Response:
            answer = await handler(request, *args)
            if not isinstance(answer, Answer):
                return answer
            return JSONResponse(in_schema_order(json.loads(answer.text), schemas[answer.status]),
                                status_code=answer.status)

        endpoint = guard(rendered, access)
        endpoint.openapi, endpoint.access = op, access
        return endpoint
    return attach


def build_document(routes: Iterable[BaseRoute], title: str, version: str) -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        op = getattr(getattr(route, "endpoint", None), "openapi", None)
        if not isinstance(route, Route) or op is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(route.path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Weekly lottery and games of the solo-mining platform. "
                                "Errors are JSON {code, message, detail, hint?}. "
                                "WebSocket /ws?token=<JWT> pushes lottery_drawn and the user's notifications as "
                                "{event, data}, or, after {action: subscribe, channel: gamification}, "
                                "as the platform's {channel, data: {type, ...}}."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
