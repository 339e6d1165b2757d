"""A verifiable draw: the digest is recomputable from public data alone, every best
difficulty re-derives from its hash, and a forged sdiff never wins."""

import hashlib
import json

import psycopg
import pytest

from tests.helpers import TRUEDIFFONE, add_shares, hash_for, insert_events, share

WEEK = "2026-11-16"
AFTER = "2026-11-23 00:01+00"


def test_digest_recomputes_from_the_public_ranking_pages(db):
    add_shares(db, *[(f"u{i:03d}", float(1 + (i * 7919) % 997), f"2026-11-{16 + i % 7} 10:00") for i in range(250)],
               ("weird\tname\n\"quoted\"", 5.5, "2026-11-18 00:00"))
    stored = db.execute("SELECT results_digest, total_participants FROM run_lottery_draw(%s, %s)", (WEEK, AFTER)).fetchone()
    db.execute("SET LOCAL ROLE lottery_web")  # what the public API can read, nothing more
    lines, offset = [], 0
    while True:
        page = db.execute("SELECT get_draw_ranking(%s, 100, %s)", (WEEK, offset)).fetchone()[0]
        if not page["lines"]:
            break
        lines += page["lines"]
        offset += len(page["lines"])
    assert len(lines) == stored[1] == 251
    assert page["resultsDigest"] == stored[0]
    assert hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest() == stored[0]
    entries = [json.loads(line) for line in lines]
    assert [e[0] for e in entries] == list(range(1, 252))
    assert sorted(entries, key=lambda e: (-e[2], e[4], e[1])) == entries  # the published order is the rule's
    for rank, user, best, best_hash, _ in entries:
        assert best <= TRUEDIFFONE / int(best_hash, 16) * 1.001, (rank, user)


def test_digest_changes_with_any_result(db):
    add_shares(db, ("a", 5.0, "2026-11-17 00:00"), ("b", 4.0, "2026-11-17 00:00"))
    digest = db.execute("SELECT results_digest FROM run_lottery_draw(%s, %s)", (WEEK, AFTER)).fetchone()[0]
    db.execute("UPDATE lottery_results SET best_difficulty = 4.5 WHERE rank = 2")
    assert db.execute("SELECT lottery_results_digest(id) FROM lottery_draws").fetchone()[0] != digest


def test_forged_sdiff_does_not_win_and_is_counted(db):
    honest = share("honest", 1000.0, "2026-11-17 00:00")
    forged = share("forger", 1e12, "2026-11-17 00:00", hash=hash_for(10.0))  # hash proves only 10
    rounding = share("rounder", 500.0005, "2026-11-17 00:00", hash=hash_for(500.0))  # within 0.1%
    insert_events(db, [honest, forged, rounding, share("forger", 7.0, "2026-11-18 00:00")])
    draw = db.execute("SELECT forged_shares FROM run_lottery_draw(%s, %s)", (WEEK, AFTER)).fetchone()
    assert draw == (1,)
    ranking = db.execute("SELECT user_id, best_difficulty FROM lottery_results ORDER BY rank").fetchall()
    assert ranking == [("honest", 1000.0), ("rounder", 500.0005), ("forger", 7.0)]
    got = db.execute("SELECT get_draw_ranking(%s)", (WEEK,)).fetchone()[0]
    assert got["forgedShares"] == 1 and got["totalParticipants"] == 3


def test_ranking_pages_are_bounded(db):
    add_shares(db, ("a", 5.0, "2026-11-17 00:00"))
    db.execute("SELECT run_lottery_draw(%s, %s)", (WEEK, AFTER))
    for limit, offset in [(0, 0), (1001, 0), (10, -1)]:
        with pytest.raises(psycopg.Error) as err:
            db.execute("SAVEPOINT s")
            db.execute("SELECT get_draw_ranking(%s, %s, %s)", (WEEK, limit, offset))
        assert err.value.sqlstate == "LTP01"
        db.execute("ROLLBACK TO SAVEPOINT s")


@pytest.mark.parametrize("sdiff, hash_of, forged", [
    (1000.0, 1000.0, False), (1000.9, 1000.0, False),   # within 0.1%: rounding in the log
    (1002.0, 1000.0, True), (1e12, 10.0, True), (5.0, 1000.0, False),
])
def test_share_is_forged(db, sdiff, hash_of, forged):
    assert db.execute("SELECT share_is_forged(%s, %s)", (sdiff, hash_for(hash_of))).fetchone()[0] is forged


def test_share_without_a_checkable_hash_is_not_called_forged(db):
    assert db.execute("SELECT share_is_forged(1e12, NULL), share_is_forged(1e12, 'zz')").fetchone() == (False, False)


def test_result_line_is_canonical_json_whatever_the_session_float_setting(db):
    add_shares(db, ("a", 198028295136909.6, "2026-11-17 00:00:00.123456"))
    db.execute("SELECT run_lottery_draw(%s, %s)", (WEEK, AFTER))
    db.execute("SET LOCAL extra_float_digits = -3")
    line = db.execute("SELECT lottery_result_line(r) FROM lottery_results r").fetchone()[0]
    assert json.loads(line) == [1, "a", 198028295136909.6, hash_for(198028295136909.6), "2026-11-17T00:00:00.123456Z"]


def test_result_line_text_follows_the_session_setting_that_the_digest_pins(db):
    """lottery_result_line_text prints floats as the session says; lottery_result_line
    and lottery_results_digest pin extra_float_digits = 1 around it."""
    args = (1, "a", 198028295136909.6, None, "2026-11-17 00:00:00.123456+00")
    call = "SELECT lottery_result_line_text(%s, %s, %s, %s, %s)"
    db.execute("SET LOCAL extra_float_digits = 1")
    assert db.execute(call, args).fetchone()[0] == '[1, "a", 198028295136909.6, "", "2026-11-17T00:00:00.123456Z"]'
    db.execute("SET LOCAL extra_float_digits = -3")
    assert db.execute(call, args).fetchone()[0] == '[1, "a", 198028295137000, "", "2026-11-17T00:00:00.123456Z"]'
