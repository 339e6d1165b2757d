"""Spec 5.8.2 cases 6-9 over HTTP, game history, and the WeeklyGameData contract."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.api.support import auth

pytestmark = pytest.mark.anyio

# The seed's TypeScript interface (spec 5.4.1), verbatim: the frontend's contract.
WEEKLY_GAME_DATA_TS = """
interface WeeklyGameData {
  weekStart: string;            // ISO 8601, e.g. "2026-02-16T00:00:00Z"
  weekEnd: string;              // ISO 8601, e.g. "2026-02-22T23:59:59Z"
  bestDifficulty: number;       // User's best diff this week
  bestHash: string;             // The actual hash that achieved best diff
  networkDifficulty: number;    // Current network difficulty
  progressRatio: number;        // bestDifficulty / networkDifficulty (0..1, log scale)
  dailyBestDiffs: number[];     // [Mon, Tue, Wed, Thu, Fri, Sat, Sun] — 7 entries
  totalShares: number;          // Total shares submitted this week
  weeklyRank: number;           // User's rank in the lottery
  percentile: number;           // Percentile (0-100, higher = better)
  blockFound: boolean;          // Did this user find a block this week?
}
"""
SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "phase-05-games-lottery.md"


def ts_fields() -> dict[str, str]:
    return dict(re.findall(r"^\s+(\w+): ([\w\[\]]+);", WEEKLY_GAME_DATA_TS, re.M))


def is_ts_type(value, ts_type: str) -> bool:
    number = (isinstance(value, (int, float)) and not isinstance(value, bool))
    if ts_type == "number":
        return number
    if ts_type == "number[]":
        return isinstance(value, list) and all(is_ts_type(v, "number") for v in value)
    if ts_type == "string":
        return isinstance(value, str)
    if ts_type == "boolean":
        return isinstance(value, bool)
    raise AssertionError(f"unknown TypeScript type {ts_type}")


def assert_weekly_game_data(data: dict) -> None:
    fields = ts_fields()
    assert len(fields) == 11
    assert list(data) == list(fields), (list(data), list(fields))  # the interface's members, in its order
    for key, ts_type in fields.items():
        assert is_ts_type(data[key], ts_type), (key, data[key], ts_type)
    assert len(data["dailyBestDiffs"]) == 7
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00Z", data["weekStart"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T23:59:59Z", data["weekEnd"])
    assert 0 <= data["progressRatio"] <= 1 and 0 <= data["percentile"] <= 100


def test_embedded_interface_is_the_seeds():
    if SEED.exists():  # the shared/ folder sits beside the repository in CI and on dev machines
        assert WEEKLY_GAME_DATA_TS.strip() in SEED.read_text()
    assert set(ts_fields()) == {"weekStart", "weekEnd", "bestDifficulty", "bestHash", "networkDifficulty",
                                "progressRatio", "dailyBestDiffs", "totalShares", "weeklyRank",
                                "percentile", "blockFound"}


async def test_weekly_data_shape_and_values(client, shares):  # 5.8.2 #6
    # Last week: every day of it is past, whatever today is (a share more than a
    # day ahead of the clock never counts). Not drawn: the rank is live.
    best = shares.add("alice", 5000.0, weeks_ago=1, day=2)
    shares.add("alice", 20.0, weeks_ago=1, day=0)
    shares.add("bob", 90000.0, weeks_ago=1, day=1)
    monday = shares.week(1)
    response = await client.get("/api/games/weekly-data", params={"week": monday.isoformat()}, headers=auth("alice"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    data = response.json()
    assert_weekly_game_data(data)
    assert data["weekStart"] == f"{monday.isoformat()}T00:00:00Z"
    assert data["bestDifficulty"] == 5000 and data["bestHash"] == best
    assert data["dailyBestDiffs"] == [20, 0, 5000, 0, 0, 0, 0]
    assert data["totalShares"] == 2 and data["weeklyRank"] == 2 and data["percentile"] == 50
    assert data["networkDifficulty"] == 86388558925171 and data["blockFound"] is False


async def test_weekly_data_of_a_named_week(client, shares):
    shares.add("alice", 42.0, weeks_ago=2, day=6)
    monday = shares.week(2)
    sunday = monday + timedelta(days=6)
    for week in (monday.isoformat(), sunday.isoformat(), f"{sunday}T23:59:59Z", f"{monday}T12:00:00"):
        data = (await client.get("/api/games/weekly-data", params={"week": week}, headers=auth("alice"))).json()
        assert data["weekStart"] == f"{monday}T00:00:00Z" and data["dailyBestDiffs"][6] == 42, week


async def test_hammer_has_progress_ratio(client, shares):  # 5.8.2 #7
    shares.add("alice", 1e6)
    response = await client.get("/api/games/weekly-data/hammer", headers=auth("alice"))
    assert response.status_code == 200
    data = response.json()
    assert list(data)[-1] == "game"
    assert_weekly_game_data({k: v for k, v in data.items() if k != "game"})
    assert set(data["game"]) == {"logBest", "logNetwork", "progressRatio"}
    assert data["game"]["progressRatio"] == data["progressRatio"]
    assert 0 < data["progressRatio"] < 1
    assert abs(data["game"]["logBest"] - 6) < 1e-9


async def test_every_game_view(client, shares):
    shares.add("alice", 300.0, weeks_ago=1, day=3, hash_hex="0000000000a1b2c3" + "0" * 48)
    week = {"week": shares.week(1).isoformat()}
    views = {game: (await client.get(f"/api/games/weekly-data/{game}", params=week,
                                     headers=auth("alice"))).json()["game"]
             for game in ("horse_race", "slots", "scratch_card")}
    assert views["horse_race"]["winner"] == "thu" and len(views["horse_race"]["horses"]) == 7
    assert views["slots"] == {"reels": ["a", "b", "c"]}
    assert views["scratch_card"] == {"bestDifficulty": 300, "weeklyRank": 1, "percentile": 100,
                                     "tier": "Top 10", "xp": 100}


async def test_no_shares_is_all_zeros(client):  # 5.8.2 #8
    response = await client.get("/api/games/weekly-data", headers=auth("nobody"))
    assert response.status_code == 200
    data = response.json()
    assert_weekly_game_data(data)
    assert data["bestDifficulty"] == 0 and data["bestHash"] == "" and data["progressRatio"] == 0
    assert data["dailyBestDiffs"] == [0] * 7
    assert data["totalShares"] == 0 and data["weeklyRank"] == 0 and data["percentile"] == 0
    assert data["blockFound"] is False


async def test_play_records_a_session_and_the_drawn_result(client, shares):  # 5.8.2 #9
    shares.add("alice", 77.0, weeks_ago=1)
    shares.draw(weeks_ago=1)
    past = shares.week(1).isoformat()
    body = {"gameType": "slots", "resultData": {"reels": ["a", "b", "c"]}, "weekStart": past}
    first = await client.post("/api/games/play", json=body, headers=auth("alice"))
    assert first.status_code == 201, first.text
    session = first.json()
    assert session["gameType"] == "slots" and session["playCount"] == 1
    assert session["weekStart"] == f"{past}T00:00:00Z" and session["resultData"] == {"reels": ["a", "b", "c"]}
    assert shares.scalar("SELECT game_played FROM lottery_results WHERE user_id = 'alice'") == "slots"

    again = await client.post("/api/games/play", json={**body, "gameType": "hammer"}, headers=auth("alice"))
    assert again.status_code == 201
    assert shares.scalar("SELECT game_played FROM lottery_results WHERE user_id = 'alice'") == "hammer"
    repeat = await client.post("/api/games/play", json={**body, "gameType": "hammer"}, headers=auth("alice"))
    assert repeat.status_code == 200 and repeat.json()["playCount"] == 2
    assert repeat.json()["id"] == again.json()["id"]


async def test_play_defaults_to_the_open_week(client, shares):
    response = await client.post("/api/games/play", json={"gameType": "hammer"}, headers=auth("alice"))
    assert response.status_code == 201
    assert response.json()["weekStart"] == f"{shares.week()}T00:00:00Z"
    assert response.json()["resultData"] == {}


async def test_history_is_paginated_newest_first_and_filtered(client):
    for game in ("hammer", "slots", "horse_race"):
        assert (await client.post("/api/games/play", json={"gameType": game}, headers=auth("alice"))).status_code == 201
    history = (await client.get("/api/games/history", headers=auth("alice"))).json()
    assert [s["gameType"] for s in history] == ["horse_race", "slots", "hammer"]
    page = (await client.get("/api/games/history", params={"limit": 1, "offset": 1}, headers=auth("alice"))).json()
    assert [s["gameType"] for s in page] == ["slots"]
    only = (await client.get("/api/games/history", params={"game_type": "hammer"}, headers=auth("alice"))).json()
    assert [s["gameType"] for s in only] == ["hammer"]


async def test_a_user_never_sees_another_users_history(client):
    await client.post("/api/games/play", json={"gameType": "hammer", "resultData": {"secret": 1}},
                headers=auth("alice"))
    assert (await client.get("/api/games/history", headers=auth("mallory"))).json() == []
    assert len((await client.get("/api/games/history", headers=auth("alice"))).json()) == 1


async def test_reads_use_the_read_database(fresh_db_url, readonly_db_url):
    """DATABASE_READ_URL serves the GET endpoints; writes stay on DATABASE_URL."""
    from tests.api.conftest import asgi_client
    from tests.api.support import make_settings
    async with asgi_client(make_settings(fresh_db_url, database_read_url=readonly_db_url)) as client:
        played = await client.post("/api/games/play", json={"gameType": "slots"}, headers=auth("reader"))
        assert played.status_code == 201
        assert (await client.get("/api/games/history", headers=auth("reader"))).json() == []
    async with asgi_client(make_settings(fresh_db_url)) as client:
        assert len((await client.get("/api/games/history", headers=auth("reader"))).json()) == 1


async def test_play_rate_limit_is_429_with_retry_after(client):
    body = {"gameType": "slots", "resultData": {}}
    statuses = [(await client.post("/api/games/play", json=body, headers=auth("spammer"))).status_code
                for _ in range(30)]
    assert statuses == [201] + [200] * 29
    refused = await client.post("/api/games/play", json=body, headers=auth("spammer"))
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    other = await client.post("/api/games/play", json=body, headers=auth("patient"))
    assert other.status_code == 201
