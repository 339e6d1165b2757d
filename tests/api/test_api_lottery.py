"""Spec 5.8.2 cases 10-12 over HTTP, draw-not-found, and the admin draw."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from tests.api.support import auth

pytestmark = pytest.mark.anyio


def two_drawn_weeks(shares):
    """Week -2: alice alone. Week -1: 12 users, u00 best; alice 5th."""
    shares.add("alice", 10.0, weeks_ago=2)
    shares.draw(weeks_ago=2)
    for i in range(12):
        shares.add(f"u{i:02d}", 1000.0 - i * 10, weeks_ago=1, second=i)
    shares.add("alice", 965.0, weeks_ago=1, day=3)
    shares.conn.execute("INSERT INTO users (id, display_name) VALUES ('u00', 'Satoshi')")
    shares.draw(weeks_ago=1)


async def test_current_draw_has_my_result_and_top10(client, shares):  # 5.8.2 #10
    two_drawn_weeks(shares)
    response = await client.get("/api/lottery/current", headers=auth("alice"))
    assert response.status_code == 200
    draw = response.json()
    last = shares.week(1)
    assert draw["weekStart"] == f"{last}T00:00:00Z" and draw["status"] == "completed"
    assert draw["totalParticipants"] == 13 and draw["totalShares"] == 13
    mine = {k: draw["myResult"][k] for k in ("rank", "userId", "displayName", "bestDifficulty", "xpAwarded",
                                             "gamePlayed")}
    assert mine == {"rank": 5, "userId": "alice", "displayName": "alice", "bestDifficulty": 965,
                    "xpAwarded": 100, "gamePlayed": None}
    assert [r["rank"] for r in draw["top10"]] == list(range(1, 11))
    assert draw["top10"][0]["displayName"] == "Satoshi"
    assert draw["nextDrawAt"].endswith("T00:01:00Z")


async def test_my_result_is_only_ever_mine(client, shares):
    two_drawn_weeks(shares)
    mine = (await client.get("/api/lottery/current", headers=auth("u11"))).json()["myResult"]
    assert mine["userId"] == "u11" and mine["rank"] == 13
    assert (await client.get("/api/lottery/current", headers=auth("stranger"))).json()["myResult"] is None


async def test_draw_of_a_named_week(client, shares):  # 5.8.2 #11
    two_drawn_weeks(shares)
    older = shares.week(2)
    wednesday = older + timedelta(days=2)
    for name in (older.isoformat(), f"{older}T23:00:00Z", wednesday.isoformat(), f"{wednesday}T10:00:00+02:00"):
        response = await client.get(f"/api/lottery/week/{name}", headers=auth("alice"))
        assert response.status_code == 200, name
        draw = response.json()
        assert draw["weekStart"] == f"{older}T00:00:00Z" and draw["totalParticipants"] == 1
        assert draw["myResult"]["rank"] == 1 and draw["myResult"]["xpAwarded"] == 100


async def test_missing_draws_are_404_json(client, shares):
    current = await client.get("/api/lottery/current", headers=auth("alice"))
    assert current.status_code == 404 and current.json()["code"] == "draw_not_found"
    assert current.json()["hint"]
    week = await client.get("/api/lottery/week/2020-01-01", headers=auth("alice"))
    assert week.status_code == 404 and week.json()["code"] == "draw_not_found"


async def test_stats_all_time(client, shares):  # 5.8.2 #12
    two_drawn_weeks(shares)
    await client.post("/api/games/play", json={"gameType": "slots"}, headers=auth("alice"))
    response = await client.get("/api/lottery/stats", headers=auth("alice"))
    assert response.status_code == 200
    assert response.json() == {"totalWeeksParticipated": 2, "bestRank": 1, "averageRank": 3,
                               "totalXpFromLottery": 200, "mostPlayedGame": "slots", "weeksInTop10": 2,
                               "weeksInTop50": 2, "weeksInTop100": 2, "currentStreak": 2}
    none = (await client.get("/api/lottery/stats", headers=auth("stranger"))).json()
    assert none["totalWeeksParticipated"] == 0 and none["mostPlayedGame"] is None


async def test_admin_draws_a_missed_week(client, shares):
    shares.add("alice", 5.0, weeks_ago=3)
    week = shares.week(3).isoformat()
    denied = await client.post("/api/admin/lottery/draw", params={"week": week}, headers=auth("alice"))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    response = await client.post("/api/admin/lottery/draw", params={"week": week}, headers=auth("ops", admin=True))
    assert response.status_code == 200
    draw = response.json()
    assert draw["weekStart"] == f"{week}T00:00:00Z" and draw["totalParticipants"] == 1
    # The admin sees the others as everyone does: no one's id.
    assert draw["myResult"] is None and draw["top10"][0]["displayName"] == "a…e"
    assert "userId" not in draw["top10"][0]
    again = await client.post("/api/admin/lottery/draw", params={"week": week}, headers=auth("ops", admin=True))
    assert again.json()["id"] == draw["id"]
    assert shares.scalar("SELECT count(*) FROM xp_transactions WHERE user_id = 'alice'") == 1


async def test_admin_cannot_draw_an_open_week(client, shares):
    response = await client.post("/api/admin/lottery/draw", params={"week": shares.week().isoformat()},
                                 headers=auth("ops", admin=True))
    assert response.status_code == 409 and response.json()["code"] == "week_not_closed"


async def test_ranking_pages_recompute_the_stored_digest(client, shares):
    two_drawn_weeks(shares)
    week = shares.week(1)
    lines, offset = [], 0
    while True:
        response = await client.get(f"/api/lottery/week/{week}/ranking?limit=5&offset={offset}", headers=auth("bob"))
        assert response.status_code == 200
        page = response.json()
        if not page["lines"]:
            break
        lines, offset = lines + page["lines"], offset + len(page["lines"])
    assert len(lines) == page["totalParticipants"] == 13
    assert hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest() == page["resultsDigest"]
    current = (await client.get("/api/lottery/current", headers=auth("bob"))).json()
    assert current["resultsDigest"] == page["resultsDigest"] and current["forgedShares"] == 0
    assert (await client.get(f"/api/lottery/week/{week}/ranking?limit=1001", headers=auth("bob"))).status_code == 400
    assert (await client.get("/api/lottery/week/2020-01-06/ranking", headers=auth("bob"))).status_code == 404
