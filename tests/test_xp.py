"""db/functions/10_xp.sql: XP tiers, tier labels and percentiles."""

import pytest


@pytest.mark.parametrize("rank, xp", [  # spec 5.8.1 #3-#10
    (1, 100), (10, 100), (11, 50), (50, 50), (51, 25), (100, 25), (101, 10), (10000, 10),
])
def test_xp_for_rank(db, rank, xp):
    assert db.execute("SELECT calculate_xp_for_rank(%s)", (rank,)).fetchone()[0] == xp


@pytest.mark.parametrize("rank", [None, 0, -1])
def test_no_rank_means_no_xp(db, rank):
    assert db.execute("SELECT calculate_xp_for_rank(%s), lottery_tier(%s)", (rank, rank)).fetchone() == (
        0, "Did not mine")


@pytest.mark.parametrize("rank, tier", [(1, "Top 10"), (11, "Top 50"), (100, "Top 100"), (101, "Participated")])
def test_tier_labels(db, rank, tier):
    assert db.execute("SELECT lottery_tier(%s)", (rank,)).fetchone()[0] == tier


@pytest.mark.parametrize("rank, n, pct", [
    (1, 1, "100.0"),      # a sole participant is at 100
    (1, 3, "100.0"), (2, 3, "66.7"), (3, 3, "33.3"),
    (1000, 1000, "0.1"), (0, 10, "0.0"), (None, 10, "0.0"), (5, 4, "0.0"),
])
def test_percentile(db, rank, n, pct):
    assert str(db.execute("SELECT lottery_percentile(%s, %s)", (rank, n)).fetchone()[0]) == pct
