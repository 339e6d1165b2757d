"""The leaderboard, history, personal-best and privacy endpoints over HTTP, the privacy of
every public list, and the manual's recipe for verifying a draw (docs/verifying.md), run as it is written."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api.support import auth, token

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ADDRESSES = {name: f"bc1q{name}xy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh" for name in ("alice", "bob", "carol", "dave")}
ALICE, BOB, CAROL, DAVE = ADDRESSES.values()


def drawn_and_open_weeks(shares):
    """Last week drawn: alice 1st, bob 2nd, carol 3rd. The open week so far: bob leads, alice second."""
    for i, user in enumerate((ALICE, BOB, CAROL)):
        shares.add(user, 9000.0 - 1000 * i, weeks_ago=1, second=i)
    shares.draw(weeks_ago=1)
    shares.add(BOB, 800.0)
    shares.add(ALICE, 700.0, second=1)
    shares.add(DAVE, 100.0, second=2)


async def get(client, url, user, **params):
    response = await client.get(url, params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def test_leaderboards_live_and_final_show_others_by_short_id_and_the_caller_by_id(client, shares):
    drawn_and_open_weeks(shares)
    live = await get(client, "/api/lottery/leaderboard", ALICE)
    assert live["final"] is False and live["participants"] == 3 and "myRank" not in live
    assert [(r["rank"], r["displayName"], r["isMe"]) for r in live["rows"]] == [
        (1, "bc1qbo…0wlh", False), (2, ALICE, True), (3, "bc1qda…0wlh", False)]
    assert live["rows"][1]["userId"] == ALICE and "userId" not in live["rows"][0]
    final = await get(client, "/api/lottery/leaderboard", ALICE, week=str(shares.week(1)), limit=2, offset=1)
    assert final["final"] is True and final["offset"] == 1
    assert [(r["rank"], r["displayName"]) for r in final["rows"]] == [(2, "bc1qbo…0wlh"), (3, "bc1qca…0wlh")]
    near = await get(client, "/api/lottery/leaderboard/me", CAROL, around=1, week=str(shares.week(1)))
    assert [r["rank"] for r in near["rows"]] == [2, 3] and near["rows"][1]["isMe"] and near["around"] == 1


async def test_a_caller_without_shares_gets_the_top_of_the_board_and_no_row(client, shares):
    drawn_and_open_weeks(shares)
    got = await get(client, "/api/lottery/leaderboard/me", "stranger", around=1)
    assert got["myRank"] == 0 and [r["rank"] for r in got["rows"]] == [1, 2, 3]
    assert not any(r["isMe"] for r in got["rows"])


async def test_opting_out_hides_a_miner_on_every_public_list_but_their_own(client, shares):
    drawn_and_open_weeks(shares)
    assert await get(client, "/api/lottery/privacy", BOB) == {"public": True, "shownAs": "bc1qbo…0wlh",
                                                              "updatedAt": None}
    response = await client.post("/api/lottery/privacy", json={"public": False}, headers=auth(BOB))
    assert response.status_code == 200
    assert response.json()["public"] is False and response.json()["shownAs"] == "Anonymous miner"
    assert (await get(client, "/api/lottery/privacy", BOB))["public"] is False
    for viewer in (ALICE, CAROL):
        board = await get(client, "/api/lottery/leaderboard", viewer)
        current = await get(client, "/api/lottery/current", viewer)
        near = await get(client, "/api/lottery/leaderboard/me", viewer)
        for rows, rank in ((board["rows"], 1), (current["top10"], 2), (near["rows"], 1)):
            assert next(r for r in rows if r["rank"] == rank)["displayName"] == "Anonymous miner"
        for body in (board, current, near):
            assert BOB not in str(body) and "bc1qbo" not in str(body)
    own = await get(client, "/api/lottery/leaderboard", BOB)
    assert own["rows"][0]["displayName"] == BOB and own["rows"][0]["userId"] == BOB


@pytest.mark.parametrize("body", [{}, {"public": None}, {"public": "no"}, {"public": 0}, {"public": [False]}])
async def test_a_privacy_body_needs_a_boolean(client, body):
    response = await client.post("/api/lottery/privacy", json=body, headers=auth(ALICE))
    assert response.status_code == 400 and response.json()["code"] == "invalid_privacy"
    assert response.json()["hint"]


async def test_the_published_ranking_of_a_new_draw_holds_no_other_users_id(client, shares):
    drawn_and_open_weeks(shares)
    for viewer in ADDRESSES.values():
        page = await get(client, f"/api/lottery/week/{shares.week(1)}/ranking", viewer)
        current = await get(client, "/api/lottery/current", viewer)
        for user in ADDRESSES.values():
            if user != viewer:
                assert user not in str(page) and user not in str(current), (viewer, user)
        assert page["rankingFormat"] == 2 and len(page["lines"]) == 3


async def test_history_and_personal_bests(client, shares):
    drawn_and_open_weeks(shares)
    history = (await get(client, "/api/lottery/history", ALICE))["weeks"]
    assert [(w["weekStart"][:10], w["final"], w["rank"], w["xpAwarded"], w["tier"]) for w in history] == [
        (str(shares.week(0)), False, 2, 0, "Top 10"), (str(shares.week(1)), True, 1, 100, "Top 10")]
    assert history[1]["participants"] == 3 and history[1]["percentile"] == 100 and history[1]["totalShares"] == 1
    assert (await get(client, "/api/lottery/history", ALICE, limit=1, offset=1))["weeks"] == history[1:]
    bests = await get(client, "/api/lottery/personal-bests", ALICE)
    assert bests["thisWeek"]["bestDifficulty"] == 700 and bests["lastWeek"]["bestDifficulty"] == 9000
    assert bests["allTime"] == bests["lastWeek"]
    assert bests["bestRank"] == {"rank": 1, "weekStart": f"{shares.week(1)}T00:00:00Z", "participants": 3,
                                 "percentile": 100}
    assert await get(client, "/api/lottery/personal-bests", "stranger") == {
        "thisWeek": None, "lastWeek": None, "allTime": None, "bestRank": None}


@pytest.mark.parametrize("url", ["/api/lottery/leaderboard?limit=0", "/api/lottery/leaderboard?limit=101",
                                 "/api/lottery/leaderboard?offset=-1", "/api/lottery/leaderboard?limit=x",
                                 "/api/lottery/leaderboard/me?around=51", "/api/lottery/leaderboard/me?around=-1",
                                 "/api/lottery/leaderboard/me?around=five", "/api/lottery/history?limit=101",
                                 "/api/lottery/leaderboard?week=someday", "/api/lottery/leaderboard/me?week=2999-01-01"])
async def test_bad_parameters_are_400(readonly_client, url):
    response = await readonly_client.get(url, headers=auth(ALICE))
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("invalid_pagination", "invalid_week") and response.json()["hint"]


def readme_recipe() -> str:
    """The Python block of the manual's "Verifying a draw" page (docs/verifying.md)."""
    section = (ROOT / "docs" / "verifying.md").read_text()
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_the_readmes_recipe_verifies_the_digest_and_the_callers_own_line(live_server, shares, monkeypatch, capsys):
    drawn_and_open_weeks(shares)
    monkeypatch.setenv("B", f"http://{live_server}")
    monkeypatch.setenv("WEEK", str(shares.week(1)))
    monkeypatch.setenv("TOKEN", token(CAROL))
    exec(compile(readme_recipe(), "docs/verifying.md", "exec"), {})
    out = capsys.readouterr().out
    assert "verified: 3 lines" in out and "my line verified: rank 3" in out
    # A result changed after the draw: the recipe no longer agrees.
    shares.scalar("UPDATE lottery_results SET best_difficulty = 9500 WHERE rank = 2 RETURNING rank")
    with pytest.raises(AssertionError):
        exec(compile(readme_recipe(), "docs/verifying.md", "exec"), {})
    assert httpx.get(f"http://{live_server}/healthz").status_code == 200
