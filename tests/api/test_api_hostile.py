"""Hostile values in every endpoint parameter, generated with Hypothesis: path params
game_type and week_start; query params week, limit, offset, around, game_type; the play
body's gameType, resultData and weekStart, the privacy body's public, and both bodies
themselves (non-object JSON, invalid UTF-8, huge numbers, deep nesting); and the token's
sub, the user id every endpoint passes on.
Every answer is a 2xx with a JSON body, or a 4xx with a JSON {"code", "message"}:
never a 5xx, never HTML (an empty path parameter's trailing-slash redirect is followed).

Each test runs the app on its own database (the `client` fixture: the admin draw and the
plays write), seeded with a drawn week so that valid weeks reach the 200 paths too.
Deterministic like tests/api/test_api_schemathesis.py; HOSTILE_RANDOM=1 explores anew.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from datetime import date, timedelta
from urllib.parse import quote

import jwt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.api.support import SECRET, auth

pytestmark = pytest.mark.anyio

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "50"))
HOSTILE = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   derandomize=not os.environ.get("HOSTILE_RANDOM"),
                   phases=[Phase.explicit, Phase.generate, Phase.shrink],
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large, HealthCheck.large_base_example])

KB10 = 10 * 1024
NUL_FREE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
from core.rules import GAME_TYPES

# --- hostile text, for path and query parameters ----------------------------------

TEXT_SPECIALS = [
    "", " ", "\t", "x" * KB10, "€" * (KB10 // 3), "\x00", "a\x00b",
    *GAME_TYPES, "HAMMER", " slots", "slots\n", "ｓｌｏｔｓ", "chess",
    "2026-11-16", "2026-11-18T12:34:56Z", "2026-11-18 12:00", "2026-11-18T12:00:00.123456+05:30",
    "2026-02-30", "2026-13-01", "0000-01-01", "0001-01-01", "9999-12-31T23:59:59-15:59",
    "2026-11-16T12:00:00+99", "2026-11-16T23:60:00Z", "99999-01-01", "２０２６-１１-１６", "٢٠٢٦-١١-١٦",
    "\ufeff2026-11-16", "infinity", "-infinity", "epoch", "now", "today",
    "NaN", "Infinity", "-Infinity", "nan", "1e308", "-1e308", "1e400", "5e-324", "-1", "-0", "+5", "0",
    "1", "100", "101", "1000", "1001", "1.5", "1e3", "0x10", "٣", "2147483647", "2147483648",
    "9223372036854775807", "9223372036854775808", "999999999999", "9999999999999", "-999999999999",
    "'; DROP TABLE users; --", "$$", "\\", "%s", "%(x)s", "' OR '1'='1", '"', "{}", "[]", "null",
    "../..", "..", ".", "/", "a/b", "?", "#", "&", "=", "%", "%00", "%ZZ",
    "🎰", "\u202eevil", "\U0010ffff",
]
WEEK_LIKE = st.from_regex(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?", fullmatch=True)


def percent(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


# A URL component, already percent-encoded: text quoted as UTF-8, or raw bytes
# (invalid UTF-8 such as %FF, an encoded surrogate %ED%A0%80, an encoded NUL).
COMPONENT = st.one_of(
    st.sampled_from(TEXT_SPECIALS).map(lambda s: quote(s, safe="")),
    st.text(NUL_FREE, max_size=100).map(lambda s: quote(s, safe="")),
    WEEK_LIKE.map(lambda s: quote(s, safe="")),
    st.integers(-2**70, 2**70).map(str),
    st.binary(max_size=24).map(percent),
    st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\x00"]).map(percent),
)


def mix(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """A third valid values, two thirds hostile (one_of would weigh them by branch count)."""
    return st.integers(0, 2).flatmap(lambda i: valid if i == 0 else hostile)


# Valid weeks: the last one (drawn by `seeded`), the open one, any day of any year.
RECENT = [date.today() - timedelta(days=d) for d in (0, 7, 8)]
VALID_WEEK = st.one_of(st.sampled_from([d.isoformat() for d in RECENT] + [f"{d}T12:00:00Z" for d in RECENT]),
                       st.dates().map(date.isoformat))
WEEK_COMPONENT = mix(VALID_WEEK, COMPONENT)


# --- hostile JSON, for the play body --------------------------------------------------

def nested(depth: int, leaf: str = "{}") -> str:
    return '{"a": ' * depth + leaf + "}" * depth


# JSON texts, some only a lenient parser takes (NaN, Infinity), some exact numbers
# that Python reads as inf or refuses (1e400, 5000 digits).
FRAGMENTS = [
    "null", "true", "false", "0", "-0", "-1", "1.5", "1e308", "-1e308", "1e400", "-1e400", "1e-400",
    "9" * 5000, "NaN", "Infinity", "-Infinity", '"NaN"', '""', json.dumps("x" * KB10), '"\\u0000"',
    '"\\ud800"', '"\\udc00x"', "[]", "[1, 2]", "{}", nested(8), nested(9), nested(64), nested(900),
    "[" * 900 + "]" * 900, json.dumps({"x": "y" * 4000}), json.dumps({"x" * 4100: 1}),
    '{"a": NaN}', '{"a": 1e400}', '{"a": "\\u0000"}', '{"a": "\\ud800"}', '{"a": 1, "a": 2}',
    *(json.dumps(g) for g in GAME_TYPES), '"HAMMER"', '"chess"', json.dumps("'; DROP TABLE users; --"),
    '"2026-11-16"', '"2026-02-30"', '"0001-01-01"', '"9999-12-31"', '"infinity"', '"2999-01-04"',
    '"2026-11-16T12:00:00+99"', "20261116",
]
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(NUL_FREE, max_size=40))
JSON_VALUE = st.recursive(JSON_LEAF, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(st.text(NUL_FREE, max_size=10), children, max_size=5)),
    max_leaves=25)
FRAGMENT = st.one_of(st.sampled_from(FRAGMENTS), JSON_VALUE.map(json.dumps),
                     st.integers(0, 40).map(nested), WEEK_LIKE.map(json.dumps))
ABSENT = object()
FIELD = st.one_of(st.just(ABSENT), FRAGMENT)


def json_object(members: dict[str, str]) -> bytes:
    return ("{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in members.items()) + "}").encode()


# --- the check ------------------------------------------------------------------------

def assert_handled(response) -> None:
    """2xx with a JSON body, or 4xx with a JSON {code, message}: never 5xx (nor 3xx)."""
    status = response.status_code
    assert 200 <= status < 300 or 400 <= status < 500, (status, response.text[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    if status >= 400:
        assert isinstance(body, dict), body
        assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), body
        assert set(body) <= {"code", "message", "detail", "hint"}, body


@pytest.fixture
def seeded(shares):
    """A drawn week (last week) and shares in the open one."""
    shares.add("alice", 5000.0, weeks_ago=1)
    shares.add("bob", 300.0, weeks_ago=1, day=2)
    shares.draw(weeks_ago=1)
    shares.add("alice", 42.0, day=1)
    return shares


_users = itertools.count()


def fresh_user() -> dict[str, str]:
    """A user of their own per play: the 30-a-minute rate limit would otherwise answer 429 to all."""
    return auth(f"hostile-{next(_users)}")


async def get(client, url: str, headers=None):
    # Followed: an empty path parameter (/api/games/weekly-data/) is Starlette's trailing-slash
    # redirect to the route without it, whose answer is then checked like any other.
    response = await client.get(url, headers=headers or auth("alice"), follow_redirects=True)
    assert_handled(response)
    return response


# --- path parameters -------------------------------------------------------------------

@HOSTILE
@given(game_type=mix(st.sampled_from(GAME_TYPES), COMPONENT))
async def test_game_type_path_param(client, seeded, game_type):
    await get(client, f"/api/games/weekly-data/{game_type}")


@pytest.mark.parametrize("template", ["/api/lottery/week/{}", "/api/lottery/week/{}/ranking"])
@HOSTILE
@given(week=WEEK_COMPONENT)
async def test_week_start_path_param(client, seeded, template, week):
    await get(client, template.format(week))


# --- query parameters ------------------------------------------------------------------

@pytest.mark.parametrize("method,url", [("GET", "/api/games/weekly-data"), ("GET", "/api/games/weekly-data/slots"),
                                        ("POST", "/api/admin/lottery/draw")])
@HOSTILE
@given(week=WEEK_COMPONENT)
async def test_week_query_param(client, seeded, method, url, week):
    response = await client.request(method, f"{url}?week={week}", headers=auth("alice", admin=True))
    assert_handled(response)


def query(**params) -> str:
    """?a=1&b=2 from already-encoded values, ABSENT ones left out; a list repeats its name."""
    parts = []
    for name, value in params.items():
        if value is ABSENT:
            continue
        for v in value if isinstance(value, list) else [value]:
            parts.append(f"{name}={v}")
    return "?" + "&".join(parts)


PAGE_VALUE = mix(st.one_of(st.just(ABSENT), st.integers(1, 100).map(str)),
                 st.one_of(COMPONENT, st.integers(-5, 1005).map(str),
                           st.lists(st.integers(-5, 200).map(str), min_size=2, max_size=3)))


@HOSTILE
@given(limit=PAGE_VALUE, offset=PAGE_VALUE,
       game_type=mix(st.one_of(st.just(ABSENT), st.sampled_from(GAME_TYPES)), COMPONENT))
async def test_history_query_params(client, seeded, limit, offset, game_type):
    await get(client, "/api/games/history" + query(limit=limit, offset=offset, game_type=game_type))


@HOSTILE
@given(limit=PAGE_VALUE, offset=PAGE_VALUE)
async def test_ranking_query_params(client, seeded, limit, offset):
    await get(client, f"/api/lottery/week/{seeded.week(1)}/ranking" + query(limit=limit, offset=offset))


@HOSTILE
@given(limit=PAGE_VALUE, offset=PAGE_VALUE, week=mix(st.just(ABSENT), WEEK_COMPONENT))
async def test_leaderboard_query_params(client, seeded, limit, offset, week):
    await get(client, "/api/lottery/leaderboard" + query(limit=limit, offset=offset, week=week))


@HOSTILE
@given(around=mix(st.one_of(st.just(ABSENT), st.integers(0, 50).map(str)), PAGE_VALUE),
       week=mix(st.just(ABSENT), WEEK_COMPONENT))
async def test_leaderboard_me_query_params(client, seeded, around, week):
    await get(client, "/api/lottery/leaderboard/me" + query(around=around, week=week))


@HOSTILE
@given(limit=PAGE_VALUE, offset=PAGE_VALUE)
async def test_lottery_history_query_params(client, seeded, limit, offset):
    await get(client, "/api/lottery/history" + query(limit=limit, offset=offset))


# --- the play body ---------------------------------------------------------------------

@HOSTILE
@given(game_type=mix(st.sampled_from([json.dumps(g) for g in GAME_TYPES]), FIELD),
       result_data=mix(st.one_of(st.just(ABSENT), st.just("{}"), JSON_VALUE.map(lambda v: json.dumps({"v": v}))),
                       FIELD),
       week_start=mix(st.one_of(st.just(ABSENT), st.sampled_from([json.dumps(d.isoformat()) for d in RECENT])),
                      FIELD),
       extra=st.dictionaries(st.text(NUL_FREE, max_size=12), FRAGMENT, max_size=2))
async def test_play_body_fields(client, seeded, game_type, result_data, week_start, extra):
    members = {**extra, "gameType": game_type, "resultData": result_data, "weekStart": week_start}
    body = json_object({k: v for k, v in members.items() if v is not ABSENT})
    response = await client.post("/api/games/play", content=body,
                                 headers={**fresh_user(), "Content-Type": "application/json"})
    assert_handled(response)


@HOSTILE
@given(public=mix(st.sampled_from(["true", "false"]), FRAGMENT),
       extra=st.dictionaries(st.text(NUL_FREE, max_size=12), FRAGMENT, max_size=2))
async def test_privacy_body(client, seeded, public, extra):
    body = json_object({**extra, "public": public})
    response = await client.post("/api/lottery/privacy", content=body,
                                 headers={**auth("alice"), "Content-Type": "application/json"})
    assert_handled(response)


RAW_BODIES = [
    b"", b" ", b"null", b"true", b"0", b"-1", b"1e400", b"NaN", b"Infinity", b'"slots"', b"[]",
    b'[{"gameType": "slots"}]', b"{", b"}", b"{gameType: slots}", b"{'gameType': 'slots'}",
    b'{"gameType": "slots",}', b'{"gameType": "\xff"}', b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00",
    b'{"gameType": "slots"}\x00', b'{"gameType": "sl\\u0000ots"}', b'{"gameType": "slots"} {"gameType": "slots"}',
    b"9" * 5000, b"[" * 15000 + b"]" * 15000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b" " * 20000,
]


@HOSTILE
@given(body=st.one_of(
    st.sampled_from(RAW_BODIES),
    st.binary(max_size=64),
    FRAGMENT.map(str.encode),
    st.text(NUL_FREE, max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(1, 20000).map(lambda n: b"[" * n + b"]" * n),
))
async def test_play_raw_body(client, seeded, body):
    response = await client.post("/api/games/play", content=body,
                                 headers={**fresh_user(), "Content-Type": "application/json"})
    assert_handled(response)
    privacy = await client.post("/api/lottery/privacy", content=body,
                                headers={**auth("alice"), "Content-Type": "application/json"})
    assert_handled(privacy)


# --- the token's sub: the user id every endpoint passes to SQL ----------------------------

SUB = st.one_of(
    st.sampled_from(["", " ", "u" * 128, "u" * 129, "x" * KB10, "\x00", "a\x00b", "\ud800", "alice\udc00",
                     "'; DROP TABLE users; --", "$$", "\\", "%s", "🎰", "\u202eevil"]),
    st.text(st.characters(exclude_categories=()), max_size=140),   # surrogates and NUL included
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=2),
              st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
)
SUB_URLS = ["/api/games/weekly-data", "/api/games/weekly-data/hammer", "/api/games/history",
            "/api/lottery/current", "/api/lottery/stats", "/api/lottery/week/2026-11-16",
            "/api/lottery/leaderboard", "/api/lottery/leaderboard/me", "/api/lottery/history",
            "/api/lottery/personal-bests", "/api/lottery/privacy"]


def token_with_sub(sub) -> str:
    now = int(time.time())
    # PyJWT writes the claims with json.dumps: a lone surrogate becomes a \ud800 escape.
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")


@HOSTILE
@given(sub=SUB, url=st.sampled_from(SUB_URLS), play=st.booleans())
async def test_token_subject(client, seeded, sub, url, play):
    headers = {"Authorization": f"Bearer {token_with_sub(sub)}"}
    if play:
        response = await client.post("/api/games/play", json={"gameType": "slots"}, headers=headers)
    else:
        response = await client.get(url, headers=headers)
    assert_handled(response)
