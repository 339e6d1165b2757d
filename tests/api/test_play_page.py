"""The reference client at /play, in a real browser (Debian's headless Chromium):
it shows the API's own values for the four games and the lottery, verifies the
draw from its published ranking, follows a draw live over the WebSocket, keeps
the console clean, and reaches the API cross-origin only when CORS_ORIGINS lets it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from core.rules import GAME_TYPES
from tests.api import browser
from tests.api.support import auth, make_settings, serve, token
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "web" / "static"
SCREENSHOTS = ROOT / "build" / "screenshots"

pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))


@pytest.fixture(scope="module")
def chrome():
    with browser.chromium() as chromium:
        yield chromium


@pytest.fixture
def page(chrome):
    """The browser with an empty console; left on a blank page, so that a page
    whose server is gone stops reconnecting."""
    chrome.console()
    yield chrome
    chrome.driver.get("about:blank")


def lottery_demo(url: str, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "db.cli", "demo", "--miners", "30", "--shares", "20", "--seed", "17", *args],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def demo_user(fresh_db_url, shares) -> str:
    """`lottery demo` weeks: two closed weeks, the older one drawn, and the open week
    so far. Returns a miner of the drawn week's top 10 who is in the top 10 of the
    week still to draw (so its draw notifies them), mining the open week if any is."""
    lottery_demo(fresh_db_url, "--week", str(shares.week(2)))
    lottery_demo(fresh_db_url, "--week", str(shares.week(1)), "--also-open-week")
    shares.draw(weeks_ago=2)
    user = shares.scalar(
        """SELECT r.user_id
           FROM lottery_results r JOIN lottery_draws d ON d.id = r.draw_id
           JOIN ranked_week(%s) next ON next.user_id = r.user_id AND next.rank <= 10
           LEFT JOIN share_weekly_best o ON o.user_id = r.user_id AND o.week_start = %s
           WHERE d.week_start = lottery_week_start_ts(%s) AND r.rank <= 10
           ORDER BY o.user_id IS NULL, r.rank LIMIT 1""",
        (shares.week(1), shares.week(0), shares.week(2)))
    assert user, "the demo weeks have no miner in both top 10s"
    return user


# --- reading the page ------------------------------------------------------

def field(chrome, scope: str, name: str) -> tuple[str, str] | None:
    """(shown text, raw API value) of a [data-field] element inside `scope`."""
    found = chrome.js("""const el = document.querySelector(`${arguments[0]} [data-field="${arguments[1]}"]`);
                         return el && [el.textContent, el.dataset.value];""", scope, name)
    return tuple(found) if found else None


def number(chrome, scope: str, name: str) -> float:
    return float(field(chrome, scope, name)[1])


def loaded(chrome) -> bool:
    return chrome.js("""return document.querySelectorAll('[data-game] .play button:not([disabled])').length === 4
        && !!document.querySelector('#draw [data-field="weekStart"]')
        && document.getElementById('live-status').dataset.state === 'on';""")


def focus_by_keyboard(chrome, selector: str, presses: int = 30) -> None:
    """Tab through the page until `selector` has the focus: it is reachable by keyboard."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(presses):
        ActionChains(chrome.driver).send_keys(Keys.TAB).perform()
        if chrome.js("return document.activeElement.matches(arguments[0])", selector):
            return
    raise AssertionError(f"{selector} not reached in {presses} presses of Tab")


def verify(chrome) -> tuple[str, str]:
    """Press "Verify this draw"; (verdict, the checks' text) once it has one."""
    chrome.driver.find_element("id", "verify-button").click()
    verdict = chrome.wait(lambda: chrome.js(
        "return document.querySelector('#verify [data-verdict]')?.dataset.verdict"), what="a verdict")
    return verdict, chrome.js("return document.querySelector('#verify .checks').textContent")


def errors(console: list[dict]) -> list[str]:
    return [entry["message"] for entry in console if entry["level"] == "SEVERE"]


# --- the tests -------------------------------------------------------------

def test_play_shows_the_api_values_verifies_the_draw_and_follows_a_live_draw(page, settings, demo_user, shares,
                                                                            record_property):
    user = demo_user
    with serve(create_app(settings)) as address, httpx.Client(base_url=f"http://{address}",
                                                              headers=auth(user)) as api:
        games = {game: api.get(f"/api/games/weekly-data/{game}").json()["game"] for game in GAME_TYPES}
        week = api.get("/api/games/weekly-data").json()
        current = api.get("/api/lottery/current").json()

        page.viewport(1280)
        page.driver.get(f"http://{address}/play#token={token(user)}")
        page.wait(lambda: loaded(page), what="the games, the draw and the WebSocket")
        assert "token=" not in page.driver.current_url  # out of the address bar (and of its history)

        # The header: the open week as /api/games/weekly-data has it.
        head = "#week-summary"
        assert field(page, head, "weekStart")[1] == week["weekStart"]
        assert number(page, head, "bestDifficulty") == week["bestDifficulty"]
        assert number(page, head, "totalShares") == week["totalShares"]
        if week["weeklyRank"]:
            assert field(page, head, "weeklyRank") == (f"#{week['weeklyRank']}", str(week["weeklyRank"]))

        hammer = '[data-game="hammer"]'
        for name in ("logBest", "logNetwork", "progressRatio"):
            assert number(page, hammer, name) == games["hammer"][name]
        assert page.js(f"return document.querySelector('{hammer} [role=meter]').getAttribute('aria-valuenow')") \
            == f"{games['hammer']['progressRatio'] * 100:.1f}"

        horses = page.js("""return [...document.querySelectorAll('[data-game="horse_race"] .lane')]
            .map((lane) => [lane.dataset.day, Number(lane.dataset.place), Number(lane.dataset.difficulty),
                            lane.querySelector('.horse').textContent, lane.classList.contains('winner')]);""")
        ordinals = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", 6: "6th", 7: "7th"}
        assert horses == [[h["day"], h["place"], h["bestDifficulty"], ordinals[h["place"]],
                           h["day"] == games["horse_race"]["winner"]] for h in games["horse_race"]["horses"]]

        reels = page.js("return [...document.querySelectorAll('[data-game=\"slots\"] .reel')].map((r) => r.textContent)")
        assert reels == games["slots"]["reels"]

        # Scratch Card: nothing shows until it is scratched, by keyboard here.
        scratch = '[data-game="scratch_card"]'
        assert page.js(f"return document.querySelector('{scratch} .prize').hidden") is True
        focus_by_keyboard(page, f"{scratch} .play button")
        from selenium.webdriver.common.keys import Keys
        page.driver.switch_to.active_element.send_keys(Keys.ENTER)
        page.wait(lambda: page.js(f"return document.querySelector('{scratch} .play-status').dataset.playCount"),
                  what="the scratch to be recorded")
        card = games["scratch_card"]
        assert field(page, scratch, "tier") == (card["tier"], card["tier"])
        assert field(page, scratch, "weeklyRank")[1] == str(card["weeklyRank"])
        assert number(page, scratch, "percentile") == card["percentile"]
        assert number(page, scratch, "xp") == card["xp"]
        assert number(page, scratch, "bestDifficulty") == card["bestDifficulty"]
        played = api.get("/api/games/history", params={"game_type": "scratch_card"}).json()
        assert [(s["gameType"], s["playCount"], s["resultData"]) for s in played] == \
            [("scratch_card", 1, {"revealed": True, "tier": card["tier"]})]

        # The latest draw: its week, the caller's rank and the top 10 by display name.
        assert field(page, "#draw", "weekStart")[1] == current["weekStart"]
        assert number(page, "#draw", "myRank") == current["myResult"]["rank"]
        names = page.js("return [...document.querySelectorAll('#draw tbody .name')].map((td) => td.textContent)")
        assert names == [r["displayName"] + (" (you)" if r["rank"] == current["myResult"]["rank"] else "")
                         for r in current["top10"]]
        assert page.js("return document.querySelector('#draw .countdown time').getAttribute('datetime')") \
            == current["nextDrawAt"]

        # Leaderboard and history: shown when this API documents them, with the API's rows.
        documented = api.get("/openapi.json").json()["paths"]
        for card, path in (("leaderboard", "/api/lottery/leaderboard/me"), ("history", "/api/lottery/history")):
            assert path in documented
            assert not page.js(f"return document.getElementById('{card}').hidden"), card
        board = api.get("/api/lottery/leaderboard/me", params={"around": 5}).json()
        shown = page.js("""return [...document.querySelectorAll('#leaderboard tbody tr')].map((tr) =>
            [Number(tr.dataset.rank), tr.querySelector('.name').textContent, tr.classList.contains('me')]);""")
        assert shown == [[r["rank"], r["displayName"] + (" (you)" if r["isMe"] else ""), r["isMe"]]
                         for r in board["rows"]]
        assert board["rows"] and any(r["isMe"] for r in board["rows"]) == (week["weeklyRank"] > 0)
        assert f"{board['participants']:,} participants" in page.js("return document.querySelector('#leaderboard .body').textContent")
        weeks = api.get("/api/lottery/history", params={"limit": 10}).json()["weeks"]
        shown = page.js("""return [...document.querySelectorAll('#history tbody tr')].map((tr) =>
            [tr.dataset.week, tr.children[1].textContent]);""")
        assert shown == [[w["weekStart"], f"{w['rank']:,} / {w['participants']:,}"] for w in weeks]
        assert weeks[0]["final"] is False  # the week just closed, not drawn yet, comes first, live

        verdict, checks = verify(page)
        n = current["totalParticipants"]
        assert verdict == "match", checks
        assert f"{n} lines for {n} participants" in checks and f"{n} best difficulties proven" in checks
        assert f"your line, rank {current['myResult']['rank']}, names you by your pseudonym" in checks

        # A draw now: the page hears it over the WebSocket and shows the new draw.
        started = time.monotonic()
        drawn = httpx.post(f"http://{address}/api/admin/lottery/draw", params={"week": str(shares.week(1))},
                           headers=auth(user, admin=True))
        assert drawn.status_code == 200, drawn.text
        new_week = drawn.json()["weekStart"]
        page.wait(lambda: field(page, "#draw", "weekStart")[1] == new_week
                  and page.js("return document.querySelectorAll('#live-feed [data-event]').length") >= 2,
                  timeout=max(0.0, 3.0 - (time.monotonic() - started)), what="the live draw")
        record_property("live_draw_seconds", round(time.monotonic() - started, 3))  # in --junitxml reports
        feed = page.js("return [...document.querySelectorAll('#live-feed li')].map((li) => [li.dataset.event, li.textContent])")
        kinds = {kind: text for kind, text in feed}
        assert new_week[:10] in kinds["lottery_drawn"]
        assert "Top 10 Weekly Lottery!" in kinds["notification"]  # the caller is in its top 10

        verdict, checks = verify(page)
        assert verdict == "match", checks
        assert page.driver.find_element("id", "verify-button").text == f"Verify the draw of {new_week[:10]}"

        page.screenshot(SCREENSHOTS / "play-1280.png")
        page.viewport(375)
        page.wait(lambda: page.js("return document.documentElement.clientWidth") == 375, what="the 375 px viewport")
        assert page.js("return document.documentElement.scrollWidth") <= 375  # nothing wider than a phone
        page.screenshot(SCREENSHOTS / "play-375.png")
        console = page.console()

    assert errors(console) == []
    for width in (1280, 375):
        shot = SCREENSHOTS / f"play-{width}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_verify_reports_a_mismatch_when_the_stored_results_were_altered(page, settings, shares):
    for i, difficulty in enumerate((5e6, 4e6, 3e6)):
        shares.add(f"miner-{i}", difficulty, weeks_ago=1, second=i)
    shares.draw(weeks_ago=1)
    # A result changed after the draw: its digest and its hash no longer agree with it.
    shares.scalar("UPDATE lottery_results SET best_difficulty = best_difficulty * 10 WHERE rank = 3 RETURNING rank")
    with serve(create_app(settings)) as address:
        page.driver.get(f"http://{address}/play#token={token('miner-0')}")
        page.wait(lambda: page.js("return !document.getElementById('verify-button').disabled"), what="the draw")
        verdict, checks = verify(page)
        console = page.console()
    assert verdict == "mismatch"
    assert "differs from the published" in checks
    assert "claimed more than their hash proves: rank 3" in checks
    assert "out of order at rank 3" in checks
    assert errors(console) == []


@pytest.mark.parametrize("listed", ["this page's origin", "another origin", "none"])
def test_a_page_on_another_origin_reaches_the_api_only_when_its_origin_is_in_cors_origins(
        page, fresh_db_url, shares, listed):
    shares.add("alice", 5000.0)
    shares.add("alice", 7000.0, weeks_ago=1)
    shares.draw(weeks_ago=1)  # /api/lottery/current answers 404 until a first draw
    files = Starlette(routes=[Mount("/play", StaticFiles(directory=STATIC, html=True))])
    with serve(files) as page_address:
        page_origin = f"http://{page_address}"
        origins = {"this page's origin": (page_origin,), "another origin": ("http://127.0.0.1:9",), "none": ()}[listed]
        with serve(create_app(make_settings(fresh_db_url, cors_origins=origins))) as api_address:
            page.driver.get(f"{page_origin}/play/#api=http://{api_address}/&token={token('alice')}")
            if listed == "this page's origin":
                page.wait(lambda: loaded(page), what="the page over CORS")
                expected = httpx.get(f"http://{api_address}/api/games/weekly-data/hammer", headers=auth("alice")).json()
                assert number(page, '[data-game="hammer"]', "progressRatio") == expected["game"]["progressRatio"]
                assert errors(page.console()) == []
            else:
                message = page.wait(lambda: page.js(
                    "const e = document.getElementById('page-error'); return !e.hidden && e.textContent"),
                    what="the page to report the API out of reach")
                assert "cannot reach the API" in message and page_origin in message
                assert field(page, '[data-game="hammer"]', "progressRatio") is None
                refused = errors(page.console())
                assert refused and any("blocked by CORS policy" in m for m in refused), refused


def test_a_pasted_token_is_used_a_refused_one_is_asked_again_and_kept_for_its_api_only(page, settings, shares):
    from selenium.webdriver.common.by import By

    shares.add("alice", 5000.0)
    shares.add("alice", 7000.0, weeks_ago=1)
    shares.draw(weeks_ago=1)
    with serve(create_app(settings)) as address:
        def paste(text: str) -> None:
            page.wait(lambda: page.driver.find_element(By.ID, "token-panel").is_displayed(), what="the token form")
            box = page.driver.find_element(By.ID, "token-input")
            box.clear()
            box.send_keys(text)
            page.driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()

        page.driver.get(f"http://{address}/play")
        paste(token("alice", secret="not-the-key-" + "0" * 40))
        refused = page.wait(lambda: page.js(
            "const e = document.getElementById('token-error'); return !e.hidden && e.textContent"), what="the refusal")
        assert refused.startswith("The API refused this token")
        page.console()  # the refused requests' 401s

        paste(token("alice"))
        page.wait(lambda: loaded(page), what="the page with the pasted token")
        assert errors(page.console()) == []

        # The kept token stays with its API: a link naming another API gets the form, not the token.
        page.driver.get(f"http://{address}/play/#api=http://127.0.0.1:9/")
        page.wait(lambda: page.driver.find_element(By.ID, "token-panel").is_displayed(), what="the token form")
        assert page.js("return document.getElementById('content').hidden") is True
        assert errors(page.console()) == []


def test_verify_js_derives_each_difficulty_from_its_hash_as_ckpool_does(page, settings):
    from core.rules import difficulty_of_hash, hash_for_difficulty

    hashes = ["00000000ffff" + "0" * 52,  # difficulty 1
              *(hash_for_difficulty(d) for d in (1.5, 1000.25, 238732.9099448106, 8.6e13, 1.7e14, 3e20)),
              "000000000000000000019d02938188c01eb7c9fe7a6e9a82557028c7f8f2bfa8", "f" * 64]
    line = '[3, "bc1qexample", 1000.25, "' + hashes[2] + '", "2026-11-27T16:06:30.308436Z"]'
    salt, user = "a78258c48af84609b3b08038bd4f6f01", "bc1qünïcødé"
    with serve(create_app(settings)) as address:
        page.driver.get(f"http://{address}/play/")
        derived, nothing, parsed, named, pseudonym = page.driver.execute_async_script("""
            const [hashes, line, salt, user, done] = arguments;
            import('./js/verify.js').then(async (v) => done([
                hashes.map(v.difficultyFromHash),
                ['', '0'.repeat(64), 'xyz', '00'].map(v.difficultyFromHash),
                v.parseLine(line), v.parseLine(line, 2), await v.pseudonym(salt, user)]));""", hashes, line, salt, user)
    for hash_hex, value in zip(hashes, derived, strict=True):
        assert value == pytest.approx(difficulty_of_hash(hash_hex), rel=1e-12), hash_hex
    assert nothing == [None, None, None, None]  # no hash to prove anything
    fields = {"rank": 3, "bestDifficulty": 1000.25, "bestHash": hashes[2], "bestShareAt": "2026-11-27T16:06:30.308436Z"}
    assert parsed == {**fields, "userId": "bc1qexample"}  # format 1 names the user
    assert named == {**fields, "pseudonym": "bc1qexample"}  # format 2 a pseudonym
    assert pseudonym == hashlib.sha256(bytes.fromhex(salt) + user.encode()).hexdigest()
