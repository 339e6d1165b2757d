"""/openapi.json is generated from the routes and states the real contract."""

from __future__ import annotations

import json
import typing

import pytest
from starlette.routing import Route

from tests.api.support import auth
from tests.api.test_api_games import ts_fields
from web.app import ROUTES, State, create_app
from web.auth import Access

pytestmark = pytest.mark.anyio

TS_TO_SCHEMA = {"string": {"string"}, "number": {"number", "integer"}, "boolean": {"boolean"}}


async def test_document_lists_every_endpoint_with_bearer_auth(readonly_client):
    doc = (await readonly_client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    operations = {(method.upper(), path): op for path, item in doc["paths"].items() for method, op in item.items()}
    assert set(operations) == {
        ("GET", "/api/games/weekly-data"), ("GET", "/api/games/weekly-data/{game_type}"),
        ("GET", "/api/games/history"), ("POST", "/api/games/play"), ("GET", "/api/lottery/current"),
        ("GET", "/api/lottery/week/{week_start}"), ("GET", "/api/lottery/week/{week_start}/ranking"),
        ("GET", "/api/lottery/stats"), ("GET", "/api/lottery/leaderboard"), ("GET", "/api/lottery/leaderboard/me"),
        ("GET", "/api/lottery/history"), ("GET", "/api/lottery/personal-bests"), ("GET", "/api/lottery/privacy"),
        ("POST", "/api/lottery/privacy"),
        ("POST", "/api/admin/lottery/draw"), ("GET", "/healthz"), ("GET", "/livez")}
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                                                  "bearerFormat": "JWT"}
    for (_, path), op in operations.items():
        if path in ("/healthz", "/livez"):
            assert op["security"] == []
            continue
        assert op["security"] == [{"bearerAuth": []}], path
        assert "401" in op["responses"] and "503" in op["responses"], path
        assert op["description"], path  # from the handler's docstring
    assert operations[("POST", "/api/games/play")]["responses"]["201"]["content"]["application/json"]["schema"] \
        == {"$ref": "#/components/schemas/GameSession"}


async def test_weekly_game_data_schema_is_the_typescript_interface(readonly_client):
    schema = (await readonly_client.get("/openapi.json")).json()["components"]["schemas"]["WeeklyGameData"]
    fields = ts_fields()
    assert list(schema["properties"]) == list(fields)
    assert sorted(schema["required"]) == sorted(fields) and schema["additionalProperties"] is False
    for name, ts_type in fields.items():
        prop = schema["properties"][name]
        if ts_type == "number[]":
            assert prop["type"] == "array" and prop["items"]["type"] == "number"
            assert prop["minItems"] == prop["maxItems"] == 7
        else:
            assert prop["type"] in TS_TO_SCHEMA[ts_type], name


async def test_cors_from_configuration(fresh_db_url):
    from tests.api.conftest import asgi_client
    from tests.api.support import make_settings
    settings = make_settings(fresh_db_url, cors_origins=("https://app.example",))
    async with asgi_client(settings) as client:
        preflight = await client.options("/api/games/play", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        denied = await client.get("/api/lottery/stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in denied.headers and denied.status_code == 401
        error = await client.get("/api/lottery/stats", headers={"Origin": "https://app.example"})
        assert error.status_code == 401 and error.headers["access-control-allow-origin"] == "https://app.example"


def declared_routes() -> list[tuple[str, str, Access, dict]]:
    return [(method, route.path, route.endpoint.access, route.endpoint.openapi)
            for route in ROUTES if isinstance(route, Route) and hasattr(route.endpoint, "access")
            for method in sorted(route.methods - {"HEAD"})]


def concrete(path: str) -> str:
    return path.replace("{game_type}", "hammer").replace("{week_start}", "2026-01-05")


async def test_each_routes_declared_access_is_both_documented_and_enforced(readonly_client):
    """One declaration per route: its OpenAPI security and what the server checks agree."""
    routes = declared_routes()
    assert {access for _, _, access, _ in routes} == set(Access)
    assert len(routes) == len([r for r in ROUTES if isinstance(r, Route) and r.include_in_schema])
    for method, path, access, op in routes:
        anonymous = await readonly_client.request(method, concrete(path))
        as_user = await readonly_client.request(method, concrete(path), headers=auth("alice"))
        if access is Access.PUBLIC:
            assert op["security"] == [] and anonymous.status_code != 401, path
            continue
        assert op["security"] == [{"bearerAuth": []}] and anonymous.status_code == 401, path
        if access is Access.ADMIN:
            assert "403" in op["responses"] and as_user.status_code == 403, path
        else:
            assert "403" not in op["responses"] and as_user.status_code not in (401, 403), path


async def test_error_bodies_carry_detail_as_documented(readonly_client):
    schema = (await readonly_client.get("/openapi.json")).json()["components"]["schemas"]["Error"]
    assert schema["required"] == ["code", "message", "detail"] and "detail" in schema["properties"]
    bad_week = await readonly_client.get("/api/games/weekly-data?week=someday", headers=auth("alice"))
    no_route = await readonly_client.get("/api/nothing")
    for response, status in ((bad_week, 400), (no_route, 404)):
        body = response.json()
        assert response.status_code == status and body["detail"] == body["message"] and body["message"]
    assert bad_week.json()["code"] == "invalid_week" and bad_week.json()["message"] == "invalid week 'someday'"
    assert bad_week.json()["hint"]


async def test_the_lifespan_yields_the_typed_state(settings):
    app = create_app(settings)
    types = typing.get_type_hints(State)
    async with app.router.lifespan_context(app) as state:
        assert set(state) == set(types)
        for name, kind in types.items():
            assert isinstance(state[name], kind), name


def _schema(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def assert_in_listed_order(doc: dict, value, schema: dict, where: str) -> int:
    """Every object of `value` has its members in the order its schema lists them; the
    number of objects checked."""
    schema = _schema(doc, schema)
    if "oneOf" in schema:
        options = [_schema(doc, o) for o in schema["oneOf"]]
        if value is None:
            return 0
        schema = next(o for o in options if o.get("type") == "object" and set(value) <= set(o["properties"]))
    checked = 0
    if isinstance(value, dict) and "properties" in schema:
        assert list(value) == [k for k in schema["properties"] if k in value], where
        checked = 1 + sum(assert_in_listed_order(doc, value[k], schema["properties"][k], f"{where}.{k}")
                          for k in value)
    elif isinstance(value, list) and "items" in schema:
        checked = sum(assert_in_listed_order(doc, item, schema["items"], f"{where}[]") for item in value)
    return checked


async def test_every_json_answer_is_serialised_one_way_in_the_documents_order(client, shares):
    """Compact as Starlette's JSONResponse writes it (no space before or after a colon), and
    the members of each object in the order /openapi.json lists them, whether the SQL
    built json (the query's order, " : ") or jsonb (keys by length)."""
    shares.add("alice", 500.0, weeks_ago=1)
    shares.add("bob", 900.0, weeks_ago=1, second=5)
    shares.add("alice", 50.0)
    shares.draw(weeks_ago=1)
    week = shares.week(1)
    doc = (await client.get("/openapi.json")).json()
    played = await client.post("/api/games/play", headers=auth("alice"),
                               json={"gameType": "slots", "resultData": {"zeta": 1, "a": [1, {"y": 2, "x": 3}]}})
    calls = [("/api/games/weekly-data", "get"), ("/api/games/weekly-data/{game_type}", "get"),
             ("/api/games/history", "get"), ("/api/lottery/current", "get"),
             ("/api/lottery/week/{week_start}", "get"), ("/api/lottery/week/{week_start}/ranking", "get"),
             ("/api/lottery/stats", "get"), ("/api/lottery/leaderboard", "get"),
             ("/api/lottery/leaderboard/me", "get"), ("/api/lottery/history", "get"),
             ("/api/lottery/personal-bests", "get"), ("/api/lottery/privacy", "get"), ("/healthz", "get")]
    responses = [("/api/games/play", "post", played)]
    for template, method in calls:
        for game in ("hammer", "horse_race", "slots", "scratch_card") if "{game_type}" in template else (None,):
            url = template.replace("{game_type}", game or "").replace("{week_start}", str(week))
            responses.append((template, method, await client.request(method, url, headers=auth("alice"))))
    responses.append(("/api/lottery/week/{week_start}", "get",
                      await client.get("/api/lottery/week/2009-01-05", headers=auth("alice"))))   # an Error
    checked = 0
    for template, method, response in responses:
        body = response.content.decode()
        value = response.json()
        assert body == json.dumps(value, ensure_ascii=False, separators=(",", ":")), (template, body[:200])
        declared = doc["paths"][template][method]["responses"][str(response.status_code)]
        checked += assert_in_listed_order(doc, value, declared["content"]["application/json"]["schema"], template)
    assert checked > 40
    # A free-form member (resultData) comes back as it was given.
    history = (await client.get("/api/games/history", headers=auth("alice"))).json()
    assert history[0]["resultData"] == {"zeta": 1, "a": [1, {"y": 2, "x": 3}]}
