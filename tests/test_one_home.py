"""One home for each rule: the lottery order is written once (ranked_week), Python
ranks nothing, and the game list, the XP tiers and TRUEDIFFONE have one definition
each, which everything else is checked against."""

import re
from pathlib import Path

import psycopg
import pytest

from core.rules import GAME_TYPES, TRUEDIFFONE
from web.openapi import SCHEMAS

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sorted(p for top in ("core", "db", "web", "bench") for p in (ROOT / top).rglob("*.py"))
FUNCTION_FILES = sorted((ROOT / "db" / "functions").glob("*.sql")) + sorted((ROOT / "db" / "binding").glob("*.sql"))

# best difficulty DESC, then first reached, then user id: the lottery order as an ORDER BY.
LOTTERY_ORDER = re.compile(r"best_difficulty\s+DESC\s*,\s*(?:\w+\.)?best_at(?:\s+ASC)?\s*,\s*(?:\w+\.)?user_id", re.I)
# A Python sort whose key reads a best or a difficulty.
PYTHON_RANKING = re.compile(r"(sorted\(|\.sort\(|heapq\.n(?:large|small)est\()[^\n]*(best|difficult|sdiff)", re.I)


def test_the_lottery_order_is_written_in_one_sql_function(db):
    in_database = [name for (name,) in db.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prosrc ~* %s",
        (LOTTERY_ORDER.pattern.replace("(?:", "(").replace(r"\w", "[a-z_]").replace(r"\s", "[[:space:]]"),))]
    assert in_database == ["ranked_week"]
    in_files = {path.name: len(LOTTERY_ORDER.findall(path.read_text())) for path in FUNCTION_FILES}
    assert {name: n for name, n in in_files.items() if n} == {"30_ranking.sql": 1}


@pytest.mark.parametrize("path", PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_ranks_nothing(path):
    text = path.read_text()
    assert not LOTTERY_ORDER.search(text), "the lottery order belongs to ranked_week()"
    assert not PYTHON_RANKING.search(text), "ask SQL (ranked_week) for an order, do not sort in Python"


def test_truediffone_is_defined_once():
    defining = [p.relative_to(ROOT).as_posix() for p in PYTHON if re.search(r"0x[fF]{4}\b|65535", p.read_text())]
    assert defining == ["core/rules.py"]


def test_sql_proves_difficulty_with_the_same_truediffone(db):
    # A hash equal to truediffone is a share of difficulty 1 exactly; one of twice that, 0.5.
    got = db.execute("SELECT share_difficulty_from_hash(%s), share_difficulty_from_hash(%s)",
                     (format(TRUEDIFFONE, "064x"), format(2 * TRUEDIFFONE, "064x"))).fetchone()
    assert got == (1.0, 0.5)


def test_the_game_list_is_defined_once_and_sql_and_openapi_agree(db):
    defining = [p.relative_to(ROOT).as_posix() for p in PYTHON if "scratch_card" in p.read_text()
                and re.search(r"""["']horse_race["']""", p.read_text())]
    assert defining == ["core/rules.py"]
    for game in GAME_TYPES:
        assert db.execute("SELECT check_game_type(%s)", (game,)).fetchone()[0] == game
    with pytest.raises(psycopg.Error) as refused:
        db.execute("SAVEPOINT s")
        db.execute("SELECT check_game_type('chess')")
    assert refused.value.sqlstate == "LTG01"
    db.execute("ROLLBACK TO SAVEPOINT s")
    for table in ("game_sessions", "lottery_results"):
        checks = " ".join(d for (d,) in db.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'"
            " AND pg_get_constraintdef(oid) LIKE %s", (table, "%hammer%")))
        assert re.findall(r"'(\w+)'::", checks) == list(GAME_TYPES), table
    assert SCHEMAS["GameSession"]["properties"]["gameType"]["enum"] == list(GAME_TYPES)


def test_the_xp_tiers_are_one_table_that_sql_and_openapi_read(db):
    tiers = db.execute("SELECT tier, first_rank, last_rank, xp FROM lottery_tiers ORDER BY first_rank").fetchall()
    assert tiers == [("Did not mine", 0, 0, 0), ("Top 10", 1, 10, 100), ("Top 50", 11, 50, 50),
                     ("Top 100", 51, 100, 25), ("Participated", 101, None, 10)]
    for rank, (tier, xp) in {0: ("Did not mine", 0), 1: ("Top 10", 100), 10: ("Top 10", 100), 11: ("Top 50", 50),
                             100: ("Top 100", 25), 101: ("Participated", 10), 10**9: ("Participated", 10)}.items():
        assert db.execute("SELECT lottery_tier(%s), calculate_xp_for_rank(%s)", (rank, rank)).fetchone() == (tier, xp)
    # The rule follows the table: a changed tier changes the XP, the label and the top-10 bound.
    db.execute("UPDATE lottery_tiers SET xp = 150 WHERE tier = 'Top 10'")
    db.execute("UPDATE lottery_tiers SET last_rank = 5 WHERE tier = 'Top 10'")
    db.execute("UPDATE lottery_tiers SET first_rank = 6 WHERE tier = 'Top 50'")
    assert db.execute("SELECT calculate_xp_for_rank(3), lottery_tier(7), lottery_top_ranks('Top 10')").fetchone() == \
        (150, "Top 50", 5)
    assert sorted(SCHEMAS["ScratchCardView"]["properties"]["tier"]["enum"]) == sorted(t for t, *_ in tiers)
