"""Bad input is a 4xx with a JSON {code, message} body, never a 500."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from tests.api.support import auth

pytestmark = pytest.mark.anyio

HUGE = "9" * 10_000
DRIVER_WORDS = re.compile(r"PostgreSQL|psycopg|jsonb|\bjson\b|\bSQL\b|syntax|function|0x00|CONTEXT")
NEXT_WEEK = (date.today() + timedelta(days=7)).isoformat()
WEEK_AFTER_NEXT = (date.today() + timedelta(days=14)).isoformat()

BAD_GETS = [
    ("/api/games/weekly-data/chess", 400, "invalid_game_type"),
    ("/api/games/weekly-data/HAMMER", 400, "invalid_game_type"),
    ("/api/games/weekly-data/%00", 400, "invalid_input"),
    ("/api/games/weekly-data?week=2026-02-30", 400, "invalid_week"),
    ("/api/games/weekly-data?week=yesterday", 400, "invalid_week"),
    ("/api/games/weekly-data?week=", 400, "invalid_week"),
    ("/api/games/weekly-data?week=2026-13-01", 400, "invalid_week"),
    ("/api/games/weekly-data?week=2026-02-16T25:00:00Z", 400, "invalid_week"),
    ("/api/games/weekly-data?week=99999-01-01", 400, "invalid_week"),
    ("/api/games/weekly-data?week=%00", 400, "invalid_input"),
    (f"/api/games/weekly-data?week={HUGE}", 400, "invalid_week"),
    ("/api/games/weekly-data/hammer?week=yesterday", 400, "invalid_week"),
    ("/api/lottery/week/2026-02-30", 400, "invalid_week"),
    ("/api/lottery/week/yesterday", 400, "invalid_week"),
    (f"/api/lottery/week/{HUGE}", 400, "invalid_week"),
    ("/api/lottery/week/%F0%9F%8E%B0", 400, "invalid_week"),
    ("/api/games/history?limit=0", 400, "invalid_pagination"),
    ("/api/games/history?limit=101", 400, "invalid_pagination"),
    ("/api/games/history?limit=-1", 400, "invalid_pagination"),
    ("/api/games/history?limit=abc", 400, "invalid_pagination"),
    ("/api/games/history?limit=1.5", 400, "invalid_pagination"),
    ("/api/games/history?limit=", 400, "invalid_pagination"),
    ("/api/games/history?limit=99999999999", 400, "numeric_value_out_of_range"),
    (f"/api/games/history?limit={HUGE}", 400, "invalid_pagination"),
    ("/api/games/history?offset=-1", 400, "invalid_pagination"),
    ("/api/games/history?offset=x", 400, "invalid_pagination"),
    ("/api/games/history?game_type=chess", 400, "invalid_game_type"),
    ("/api/nope", 404, "not_found"),
]


def assert_json_error(response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["code"], str) and isinstance(body["message"], str) and body["detail"] == body["message"]
    assert set(body) <= {"code", "message", "detail", "hint"}
    # In this API's words: never the database's or the driver's text.
    assert not DRIVER_WORDS.search(f"{body['message']} {body.get('hint', '')}"), body
    if code:
        assert body["code"] == code


@pytest.mark.parametrize("url,status,code", BAD_GETS, ids=[u[:60] for u, _, _ in BAD_GETS])
async def test_bad_query_and_path_input(readonly_client, url, status, code):
    assert_json_error(await readonly_client.get(url, headers=auth("alice")), status, code)


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_PLAYS = [
    ("not json", b"{gameType: hammer", 400, "invalid_json"),
    ("array", b"[]", 400, "invalid_body"),
    ("string", b'"hammer"', 400, "invalid_body"),
    ("empty", b"", 400, "invalid_json"),
    ("not utf-8", b'{"gameType": "\xff"}', 400, "invalid_json"),
    ("json too deep", b"[" * 5000 + b"]" * 5000, 400, "invalid_json"),
    ("no game type", {"resultData": {}}, 400, "invalid_game_type"),
    ("game type not a string", {"gameType": 5}, 400, "invalid_body"),
    ("unknown game type", {"gameType": "chess"}, 400, "invalid_game_type"),
    ("lone surrogate game type", b'{"gameType": "\\ud800"}', 400, "invalid_body"),
    ("result data array", {"gameType": "slots", "resultData": [1, 2]}, 400, "invalid_result_data"),
    ("result data string", {"gameType": "slots", "resultData": "x"}, 400, "invalid_result_data"),
    ("result data number", {"gameType": "slots", "resultData": 5}, 400, "invalid_result_data"),
    ("result data null", {"gameType": "slots", "resultData": None}, 400, "invalid_result_data"),
    ("result data over 4 KiB", {"gameType": "slots", "resultData": {"x": "y" * 5000}}, 400, "invalid_result_data"),
    ("result data nested 9 deep", {"gameType": "slots", "resultData": nested(9)}, 400, "invalid_result_data"),
    ("result data NUL", b'{"gameType": "slots", "resultData": {"a": "\\u0000"}}', 400, "untranslatable_character"),
    ("result data lone surrogate", b'{"gameType": "slots", "resultData": {"a": "\\udc00"}}', 400, None),
    ("result data NaN", b'{"gameType": "slots", "resultData": {"a": NaN}}', 400, "invalid_body"),
    ("week not a string", {"gameType": "slots", "weekStart": 20260216}, 400, "invalid_body"),
    ("week yesterday", {"gameType": "slots", "weekStart": "yesterday"}, 400, "invalid_week"),
    ("week impossible", {"gameType": "slots", "weekStart": "2026-02-30"}, 400, "invalid_week"),
    ("week in the future", {"gameType": "slots", "weekStart": NEXT_WEEK}, 400, "game_week_in_future"),
    ("week after next", {"gameType": "slots", "weekStart": WEEK_AFTER_NEXT}, 400, "invalid_week"),
    ("week before bitcoin", {"gameType": "slots", "weekStart": "2009-01-02"}, 400, "invalid_week"),
    ("body over 16 KiB", {"gameType": "slots", "resultData": {"x": "y" * 20_000}}, 413, "payload_too_large"),
]


@pytest.mark.parametrize("body,status,code", [c[1:] for c in BAD_PLAYS], ids=[c[0] for c in BAD_PLAYS])
async def test_bad_play_bodies(readonly_client, body, status, code):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await readonly_client.post("/api/games/play", content=content, headers={
        **auth("alice"), "Content-Type": "application/json"})
    assert_json_error(response, status, code)


async def test_chunked_body_over_the_limit_is_413(readonly_client):
    async def chunks():
        for _ in range(40):
            yield b" " * 1024
    response = await readonly_client.post("/api/games/play", content=chunks(), headers=auth("alice"))
    assert_json_error(response, 413, "payload_too_large")


async def test_wrong_method_is_405_json(readonly_client):
    response = await readonly_client.delete("/api/games/play", headers=auth("alice"))
    assert_json_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("user", ["", "u" * 129])
async def test_bad_user_id_in_a_valid_token(readonly_client, user):
    # A token that names no valid user is a bad token: 401, not SQL's 400 (LTU01).
    assert_json_error(await readonly_client.get("/api/lottery/stats", headers=auth(user)), 401, "unauthorized")


async def test_nothing_was_written(readonly_client, readonly_db_url):
    import psycopg
    with psycopg.connect(readonly_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM game_sessions").fetchone()[0] == 0


async def test_a_week_parameter_lies_between_the_first_block_and_next_week(readonly_client, readonly_db_url):
    """CONTRACT 1 over HTTP: 2009-01-02 is refused, 2009-01-03 and 2009-01-04 name the week of
    2008-12-29 (which holds the first block), next week's last day is accepted, the day after refused."""
    import psycopg
    with psycopg.connect(readonly_db_url) as conn:
        last, after, monday = (str(d) for d in conn.execute(
            "SELECT w + 13, w + 14, w + 7 FROM lottery_week_at(now()) AS w").fetchone())
    bounds = {"2009-01-02": None, "2009-01-03": "2008-12-29", "2009-01-04": "2008-12-29",
              last: monday, after: None}
    for day, week in bounds.items():
        for url in (f"/api/games/weekly-data?week={day}", f"/api/games/weekly-data/slots?week={day}",
                    f"/api/lottery/leaderboard?week={day}"):
            response = await readonly_client.get(url, headers=auth("alice"))
            if week is None:
                assert_json_error(response, 400, "invalid_week")
                assert "from 2009-01-03 to the end of next week" in response.json()["hint"]
            else:
                assert response.status_code == 200, (url, response.text)
                assert response.json()["weekStart"] == f"{week}T00:00:00Z", url
