"""Constants of the lottery that Python needs by value. Each is defined here once;
tests/test_one_home.py checks that SQL agrees with them."""

from __future__ import annotations

# ckpool's truediffone: a share of difficulty 1 has this hash; diff = TRUEDIFFONE / hash.
TRUEDIFFONE = 0xFFFF << 208

# The four games, in the order the frontend lists them.
GAME_TYPES = ("hammer", "horse_race", "slots", "scratch_card")

# A mining user id is 1..128 characters: SQL's check_user_id (LTU01) for callers of the
# functions, the web layer for the user claim of a token (401 before any SQL).
USER_ID_MAX_LENGTH = 128

# Horse Race: one horse per day of the ISO week, Monday first.
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def difficulty_of_hash(hash_hex: str) -> float:
    """The difficulty a 64-hex-digit share hash proves (ckpool: truediffone / hash)."""
    return TRUEDIFFONE / int(hash_hex, 16)


def hash_for_difficulty(difficulty: float) -> str:
    """The largest 64-hex-digit hash that proves `difficulty`."""
    return format(max(1, int(TRUEDIFFONE // difficulty)), "064x")
