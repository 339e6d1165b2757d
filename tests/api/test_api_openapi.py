"""/openapi.json is generated from the routes and states the real contract."""

from __future__ import annotations

import pytest

from tests.api.test_api_games import ts_fields

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
        ("GET", "/api/lottery/stats"),
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
