"""db/functions/75_leaderboards.sql: leaderboard pages and around-me in the draw's exact
order (live until drawn, final after), the caller's lottery history and personal bests,
each checked against an independent computation over the raw events."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest

from tests.helpers import add_shares, insert_events, share, utc

WEEK = "2026-11-16"
DURING = "2026-11-20 12:00+00"
AFTER = "2026-11-23 00:01+00"


def board(db, user, limit, offset, week=WEEK, now=DURING):
    return db.execute("SELECT get_leaderboard(%s, %s, %s, %s, %s)", (user, week, limit, offset, now)).fetchone()[0]


def around(db, user, n, week=WEEK, now=DURING):
    return db.execute("SELECT get_leaderboard_around(%s, %s, %s, %s)", (user, week, n, now)).fetchone()[0]


def names(rows):
    return [(row["rank"], row["displayName"]) for row in rows]


@pytest.fixture
def tied_week(db):
    """A week of 90 miners whose bests tie often, on difficulty and on time too (the user id
    decides), spread over many rank buckets and groups, one of them with a best of 0 (a
    share without a hash while require_share_hash is on). Every miner's display name is
    their id, so that rows name them. Returns the ids in the draw's order."""
    rng = random.Random(15)
    db.execute("UPDATE lottery_settings SET require_share_hash = true")
    events = []
    for i in range(400):
        user = f"m{rng.randrange(90):02d}"
        diff = rng.choice([10.0, 20.0, 20.0, 1e3, 1e3, 1e6, 1e6, 1e6, 3.5e9, 8e12])
        events.append(share(user, diff, f"2026-11-{rng.randrange(16, 23)} {rng.randrange(3):02d}:00"))
    events.append(share("m99", 5e6, "2026-11-18 00:00", hash=""))  # counts as a share, never as a best
    insert_events(db, events)
    db.execute("INSERT INTO users (id, display_name) SELECT user_id, user_id FROM share_weekly_best"
               " WHERE week_start = %s", (WEEK,))
    order = [u for (u,) in db.execute("SELECT user_id FROM ranked_week(%s)", (WEEK,))]
    assert order[-1] == "m99" and len(order) > 80
    assert db.execute("SELECT count(DISTINCT rank_bucket >> 7) FROM share_weekly_best").fetchone()[0] >= 5
    return order


def test_pages_and_around_me_follow_the_draws_order_live_then_final(db, tied_week):
    n = len(tied_week)
    expected = list(enumerate(tied_week, start=1))
    for now, final in ((DURING, False), (AFTER, True)):
        if final:
            db.execute("SELECT run_lottery_draw(%s, %s)", (WEEK, AFTER))
            assert [u for (u,) in db.execute("SELECT user_id FROM lottery_results ORDER BY rank")] == tied_week
        for limit in (1, 7, 100):
            rows = []
            for offset in range(0, n + limit, limit):
                page = board(db, "m00", limit, offset, now=now)
                assert page["final"] is final and page["participants"] == n and page["offset"] == offset
                rows += page["rows"]
            assert names(rows) == expected, (limit, final)
        for rank, user in expected:
            got = around(db, user, 2, now=now)
            assert got["myRank"] == rank and got["final"] is final
            assert names(got["rows"]) == expected[max(0, rank - 3):rank + 2], user
            assert [r["isMe"] for r in got["rows"]].count(True) == 1


def test_around_me_at_the_edges_and_without_shares(db, tied_week):
    n = len(tied_week)
    first = around(db, tied_week[0], 5)
    assert [r["rank"] for r in first["rows"]] == list(range(1, 7)) and first["rows"][0]["isMe"]
    assert first["rows"][0]["userId"] == tied_week[0] and "userId" not in first["rows"][1]
    last = around(db, tied_week[-1], 5)
    assert [r["rank"] for r in last["rows"]] == list(range(n - 5, n + 1)) and last["rows"][-1]["isMe"]
    alone = around(db, tied_week[3], 0)
    assert names(alone["rows"]) == [(4, tied_week[3])] and alone["around"] == 0
    # Without shares: no row of one's own, the top of the board instead, as many rows.
    nobody = around(db, "nobody", 3)
    assert nobody["myRank"] == 0 and nobody["participants"] == n
    assert names(nobody["rows"]) == list(enumerate(tied_week[:7], start=1))
    assert not any(r["isMe"] for r in nobody["rows"])


def test_a_page_past_the_end_and_a_week_without_miners_are_empty(db, tied_week):
    assert board(db, "m00", 10, len(tied_week))["rows"] == []
    empty = board(db, "m00", 10, 0, week="2026-11-09")
    assert empty["rows"] == [] and empty["participants"] == 0 and empty["final"] is False
    nobody = around(db, "m00", 5, week="2026-11-09")
    assert nobody["rows"] == [] and nobody["myRank"] == 0


def test_the_open_week_is_the_default_and_the_head_says_when_the_next_draw_is(db):
    add_shares(db, ("a", 5.0, "2026-11-24 00:00"))
    got = db.execute("SELECT get_leaderboard('a', NULL, 25, 0, '2026-11-25 00:00+00')").fetchone()[0]
    assert got["weekStart"] == "2026-11-23T00:00:00Z" and got["weekEnd"] == "2026-11-29T23:59:59Z"
    assert got["nextDrawAt"] == "2026-11-30T00:01:00Z" and got["participants"] == 1 and got["offset"] == 0
    assert got["rows"] == [{"rank": 1, "displayName": "a", "bestDifficulty": 5, "bestShareAt": "2026-11-24T00:00:00.000000Z",
                            "isMe": True, "userId": "a"}]


@pytest.mark.parametrize("sql", [
    "SELECT get_leaderboard('a', NULL, 0)", "SELECT get_leaderboard('a', NULL, 101)",
    "SELECT get_leaderboard('a', NULL, 10, -1)", "SELECT get_leaderboard_around('a', NULL, -1)",
    "SELECT get_leaderboard_around('a', NULL, 51)", "SELECT get_leaderboard_around('a', NULL, NULL)",
    "SELECT get_lottery_history('a', 101)",
])
def test_page_bounds_are_refused(db, sql):
    with pytest.raises(psycopg.Error) as err:
        db.execute(sql)
    assert err.value.sqlstate == "LTP01" and err.value.diag.message_hint


# --- history and personal bests, against the raw events -----------------------------------

WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]  # the last is open
NOW = "2026-12-02 12:00+00"
DRAWN = WEEKS[:3]  # 2026-11-23 has closed but is not drawn yet


def monday(ts):
    return (ts - timedelta(days=ts.weekday())).date().isoformat()


def oracle(events):
    """Per (week, user): (best, first time reached, hash, shares), computed from the raw events."""
    weeks = defaultdict(dict)
    for ts, _, payload in events:
        mine = weeks[monday(ts)].setdefault(payload["user"], [0.0, None, None, 0])
        if payload["sdiff"] > mine[0] or (payload["sdiff"] == mine[0] and ts < mine[1]):
            mine[:3] = payload["sdiff"], ts, payload["hash"]
        mine[3] += 1
    return weeks


def ranks(week_bests):
    order = sorted(week_bests, key=lambda u: (-week_bests[u][0], week_bests[u][1], u))
    return {u: i for i, u in enumerate(order, start=1)}


def percentile(rank, n):
    return float((Decimal(100) * (n - rank + 1) / n).quantize(Decimal("0.1"), ROUND_HALF_UP))


def tier(rank):
    return "Top 10" if rank <= 10 else "Top 50" if rank <= 50 else "Top 100" if rank <= 100 else "Participated"


def xp(rank):
    return 100 if rank <= 10 else 50 if rank <= 50 else 25 if rank <= 100 else 10


@pytest.fixture
def weeks_of_events(db):
    rng = random.Random(5)
    events = []
    for w, week in enumerate(WEEKS):
        start = utc(week)
        for i in range(300):
            user = f"u{rng.randrange(25 if w % 2 else 70):02d}"
            ts = start + timedelta(hours=rng.randrange(7 * 24 if w < 4 else 2 * 24), minutes=rng.randrange(2) * 30)
            events.append(share(user, float(rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 55, 89]) * 10 ** rng.randrange(6)), ts))
    insert_events(db, events)
    db.execute("SELECT record_game_session('u03', 'slots', '{}', %s, '2026-11-12 00:00+00')", (WEEKS[1],))
    db.execute("SELECT record_game_session('u03', 'hammer', '{}', %s, '2026-11-12 00:01+00')", (WEEKS[1],))
    db.execute("SELECT record_game_session('u03', 'horse_race', '{}', NULL, '2026-12-01 00:00+00')")
    for week in DRAWN:
        db.execute("SELECT run_lottery_draw(%s, %s)", (week, f"{utc(week) + timedelta(days=7)}"))
    return oracle(events)


def test_history_matches_the_raw_events(db, weeks_of_events):
    games = {("u03", WEEKS[1]): "hammer", ("u03", WEEKS[4]): "horse_race"}
    users = sorted({u for bests in weeks_of_events.values() for u in bests}) + ["stranger"]
    for user in users:
        expected = []
        for week in reversed(WEEKS):
            bests = weeks_of_events[week]
            if user not in bests:
                continue
            best, _, best_hash, count = bests[user]
            rank, n, final = ranks(bests)[user], len(bests), week in DRAWN
            expected.append({
                "weekStart": f"{week}T00:00:00Z",
                "weekEnd": f"{(utc(week) + timedelta(days=6)).date()}T23:59:59Z",
                "final": final, "rank": rank, "participants": n, "percentile": percentile(rank, n),
                "bestDifficulty": best, "bestHash": best_hash, "totalShares": count,
                "xpAwarded": xp(rank) if final else 0, "tier": tier(rank), "gamePlayed": games.get((user, week))})
        got = db.execute("SELECT get_lottery_history(%s, 100, 0, %s)", (user, NOW)).fetchone()[0]["weeks"]
        assert got == expected, user
        paged = [w for offset in range(0, 5, 2)
                 for w in db.execute("SELECT get_lottery_history(%s, 2, %s, %s)", (user, offset, NOW)).fetchone()[0]["weeks"]]
        assert paged == expected, user


def test_personal_bests_match_the_raw_events(db, weeks_of_events):
    for user in sorted({u for bests in weeks_of_events.values() for u in bests}) + ["stranger"]:
        def best_of(week):
            if user not in weeks_of_events[week]:
                return None
            best, at, best_hash, _ = weeks_of_events[week][user]
            return {"weekStart": f"{week}T00:00:00Z", "bestDifficulty": best, "bestHash": best_hash,
                    "bestShareAt": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}

        mined = [w for w in WEEKS if user in weeks_of_events[w]]
        # All time: the highest best, the earliest reached on a tie.
        all_time = min(mined, key=lambda w: (-weeks_of_events[w][user][0], weeks_of_events[w][user][1]), default=None)
        ranked = [(ranks(weeks_of_events[w])[user], w) for w in DRAWN if w in mined]
        best_rank = min(ranked, default=None)
        got = db.execute("SELECT get_personal_bests(%s, %s)", (user, NOW)).fetchone()[0]
        assert got == {
            "thisWeek": best_of(WEEKS[4]), "lastWeek": best_of(WEEKS[3]),
            "allTime": best_of(all_time) if all_time else None,
            "bestRank": best_rank and {"rank": best_rank[0], "weekStart": f"{best_rank[1]}T00:00:00Z",
                                       "participants": len(weeks_of_events[best_rank[1]]),
                                       "percentile": percentile(best_rank[0], len(weeks_of_events[best_rank[1]]))},
        }, user


def test_best_rank_ever_is_read_from_the_rank_index(db, weeks_of_events):
    db.execute("SET LOCAL enable_seqscan = off")  # tiny tables: the plan the index allows, not a seq scan's
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT r.rank FROM lottery_results r JOIN lottery_draws d ON d.id = r.draw_id"
        " WHERE r.user_id = 'u01' ORDER BY r.rank, d.week_start LIMIT 1"))
    assert "lottery_results_user_rank_idx" in plan, plan
