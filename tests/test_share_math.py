"""db/functions/15_share_math.sql: hash difficulty, progress ratio, slot reels."""

import math

import pytest

from tests.helpers import hash_for


def test_difficulty_one_is_truediffone(db):
    assert db.execute("SELECT share_difficulty_from_hash(%s)",
                      ("00000000ffff" + "0" * 52,)).fetchone()[0] == 1.0


@pytest.mark.parametrize("difficulty", [1.0, 1234.5, 5.5e9, 1.23e14, 7.7e19])
def test_difficulty_from_hash_matches_ckpool_formula(db, difficulty):
    got = db.execute("SELECT share_difficulty_from_hash(%s)", (hash_for(difficulty),)).fetchone()[0]
    assert math.isclose(got, difficulty, rel_tol=1e-12)
    upper = db.execute("SELECT share_difficulty_from_hash(upper(%s))", (hash_for(difficulty),)).fetchone()[0]
    assert upper == got


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 64, "0" * 63, "g" * 64, None])
def test_difficulty_from_bad_hash_is_null(db, bad):
    assert db.execute("SELECT share_difficulty_from_hash(%s)", (bad,)).fetchone()[0] is None


def ratio(db, best, network):
    return db.execute("SELECT get_progress_ratio(%s::float8, %s::float8)", (best, network)).fetchone()[0]


def test_progress_ratio_is_log_scale(db):  # spec 5.8.1 #14
    value = ratio(db, 1e7, 1e14)
    assert value == pytest.approx(0.5)
    assert 0 < ratio(db, 5000, 86388558925171) < 1


def test_progress_ratio_zero_difficulty(db):  # spec 5.8.1 #15
    assert ratio(db, 0, 1e14) == 0.0


def test_progress_ratio_equal_to_network_is_one(db):  # spec 5.8.1 #16
    assert ratio(db, 1e14, 1e14) == 1.0
    assert ratio(db, 2e14, 1e14) == 1.0


@pytest.mark.parametrize("best, network", [
    (0.5, 1e14), (1, 1e14), (-5, 1e14), (5000, 1), (5000, 0.5), (5000, -1), (5000, 0),
    (0.5, 0.25), ("NaN", 1e14), (5000, "NaN"), ("Infinity", 1e14), (5000, "Infinity"),
    (None, 1e14), (5000, None), (1e308, 1e-308), (1.0000001, 1.0000002),
])
def test_progress_ratio_never_leaves_unit_interval(db, best, network):
    value = ratio(db, best, network)
    assert 0.0 <= value <= 1.0


def test_progress_ratio_edges_follow_contract(db):
    assert ratio(db, 0.5, 1e14) == 0.0      # best < 1
    assert ratio(db, 5000, 1) == 0.0        # network <= 1
    assert ratio(db, 5000, 0.5) == 0.0


def reels(db, value):
    return db.execute("SELECT extract_slot_reels(%s)", (value,)).fetchone()[0]


def test_slot_reels_from_valid_hash(db):  # spec 5.8.1 #17
    assert reels(db, "00000000000000000003a9f1c2" + "0" * 38) == ["3", "9", "1"]
    assert all(len(c) == 1 and c in "0123456789abcdef" for c in reels(db, hash_for(12345.0)))


@pytest.mark.parametrize("value", ["", None, "abc", "1234567"])
def test_slot_reels_from_empty_or_short_hash(db, value):  # spec 5.8.1 #18
    assert reels(db, value) == ["0", "0", "0"]


def test_slot_reels_past_the_end_and_all_zero(db):
    assert reels(db, "0000000a1") == ["a", "0", "0"]
    assert reels(db, "00000000") == ["0", "0", "0"]
    assert reels(db, "12345678") == ["1", "3", "5"]


@pytest.mark.parametrize("value, expected", [
    ("AB" * 32, "ab" * 32), ("0" * 64, None), ("0" * 63 + "1", "0" * 63 + "1"), ("0" * 63, None), ("g" * 64, None), (" " + "a" * 63, None), (None, None),
])
def test_clean_hash(db, value, expected):
    assert db.execute("SELECT clean_hash(%s)", (value,)).fetchone()[0] == expected


@pytest.mark.parametrize("json_text, expected", [
    ("5", 5.0), ("1.5e14", 1.5e14), ("0", None), ("-3", None), ('"5"', None), ("null", None),
    ("1e400", None), ("1e-400", None), ("true", None), ("[1]", None),
])
def test_json_difficulty(db, json_text, expected):
    assert db.execute("SELECT json_difficulty(%s::jsonb)", (json_text,)).fetchone()[0] == expected
