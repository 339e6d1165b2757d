"""A verifiable draw: the digest is recomputable from public data alone, every best
difficulty re-derives from its hash, and a forged sdiff never wins."""

import hashlib
import json

import psycopg
import pytest

from db import apply as db_apply
from tests.helpers import TRUEDIFFONE, add_shares, database_without, hash_for, insert_events, share

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
    # The published order is the rule's (a full tie, broken by user id, does not occur here).
    assert sorted(entries, key=lambda e: (-e[2], e[4])) == entries
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
    line, salt = db.execute("SELECT lottery_result_line(r), uuid_send(pseudonym_salt) FROM lottery_results r").fetchone()
    assert json.loads(line) == [1, hashlib.sha256(salt + b"a").hexdigest(), 198028295136909.6,
                                hash_for(198028295136909.6), "2026-11-17T00:00:00.123456Z"]


def test_result_line_text_follows_the_session_setting_that_the_digest_pins(db):
    """lottery_result_line_text prints floats as the session says; lottery_result_line
    and lottery_results_digest pin extra_float_digits = 1 around it."""
    args = (1, "a", 198028295136909.6, None, "2026-11-17 00:00:00.123456+00")
    call = "SELECT lottery_result_line_text(%s, %s, %s, %s, %s)"
    db.execute("SET LOCAL extra_float_digits = 1")
    assert db.execute(call, args).fetchone()[0] == '[1, "a", 198028295136909.6, "", "2026-11-17T00:00:00.123456Z"]'
    db.execute("SET LOCAL extra_float_digits = -3")
    assert db.execute(call, args).fetchone()[0] == '[1, "a", 198028295137000, "", "2026-11-17T00:00:00.123456Z"]'


# --- format 2: pseudonyms instead of user ids -------------------------------------------

ADDRESSES = [f"bc1q{i:02d}xy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh" for i in range(30)]


def public_lines(db, week=WEEK):
    """Every line of the published ranking, read as the web role reads it."""
    lines, offset = [], 0
    while page := db.execute("SELECT get_draw_ranking(%s, 7, %s)", (week, offset)).fetchone()[0]["lines"]:
        lines += page
        offset += len(page)
    return lines


def test_a_new_draw_publishes_no_user_id_and_each_user_can_check_their_own_line(db):
    add_shares(db, *[(user, float(100 + i % 7), f"2026-11-{16 + i % 5} 10:00") for i, user in enumerate(ADDRESSES)])
    stored = db.execute("SELECT results_digest, ranking_format FROM run_lottery_draw(%s, %s)", (WEEK, AFTER)).fetchone()
    assert stored[1] == 2
    db.execute("SET LOCAL ROLE lottery_web")
    page = db.execute("SELECT get_draw_ranking(%s)", (WEEK,)).fetchone()[0]
    assert page["rankingFormat"] == 2 and "pseudonym" in page["line"]
    lines = public_lines(db)
    text = "\n".join(lines)
    assert not any(address in text or address[:12] in text for address in ADDRESSES)
    assert hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest() == stored[0]
    names = set()
    for user in ADDRESSES:
        mine = db.execute("SELECT get_lottery_by_week(%s, %s)", (user, WEEK)).fetchone()[0]["myResult"]
        rank, name, best, _, _ = json.loads(lines[mine["rank"] - 1])
        assert name == hashlib.sha256(bytes.fromhex(mine["pseudonymSalt"]) + user.encode()).hexdigest()
        assert (rank, best) == (mine["rank"], mine["bestDifficulty"])
        names.add(name)
    assert len(names) == len(ADDRESSES)  # one salt per result: no two lines share a name


def test_pseudonyms_are_salted_per_draw(db):
    for week in ("2026-11-09", WEEK):
        add_shares(db, ("alice", 5.0, f"{week} 10:00"))
        db.execute("SELECT run_lottery_draw(%s, %s)", (week, AFTER))
    names = [json.loads(db.execute("SELECT get_draw_ranking(%s)", (week,)).fetchone()[0]["lines"][0])[1]
             for week in ("2026-11-09", WEEK)]
    assert names[0] != names[1]  # the same miner cannot be followed from week to week
    assert db.execute("SELECT lottery_pseudonym(NULL, 'alice'), lottery_line_name('alice', NULL)").fetchone() \
        == (None, "alice")


def test_a_draw_made_before_pseudonyms_keeps_its_lines_and_its_digest(pg_cluster):
    """Migration 0014 leaves an existing draw in format 1: its lines, user ids included, and its
    stored digest still agree, so it verifies as it did."""
    results = [(1, "alice", 900.5, hash_for(900.5), "2026-11-17T10:00:00.250000Z"),
               (2, "bob", 12.25, hash_for(12.25), "2026-11-18T00:00:00.000000Z")]
    # The lines as the draw wrote them then: jsonb arrays, floats shortest-exact.
    old_lines = [json.dumps(list(r)) for r in results]
    old_digest = hashlib.sha256("".join(line + "\n" for line in old_lines).encode()).hexdigest()
    with database_without(pg_cluster, "0014_leaderboards_privacy") as (url, conn):
        draw_id = conn.execute(
            "INSERT INTO lottery_draws (week_start, week_end, status, total_participants, results_digest, drawn_at)"
            " VALUES ('2026-11-16 00:00+00', '2026-11-23 00:00+00', 'completed', 2, %s, '2026-11-23 00:01+00')"
            " RETURNING id", (old_digest,)).fetchone()[0]
        for rank, user, best, best_hash, at in results:
            conn.execute("INSERT INTO lottery_results (draw_id, user_id, rank, best_difficulty, best_share_at, best_hash)"
                         " VALUES (%s, %s, %s, %s, %s, %s)", (draw_id, user, rank, best, at, best_hash))
        conn.commit()
        db_apply.apply(url, schedule=False, log=lambda *_: None)
        page = conn.execute("SELECT get_draw_ranking(%s)", (WEEK,)).fetchone()[0]
        assert page["rankingFormat"] == 1 and page["lines"] == old_lines and page["resultsDigest"] == old_digest
        assert conn.execute("SELECT lottery_results_digest(%s)", (draw_id,)).fetchone()[0] == old_digest
        mine = conn.execute("SELECT get_lottery_by_week('bob', %s)", (WEEK,)).fetchone()[0]["myResult"]
        assert mine["userId"] == "bob" and "pseudonym" not in mine
        conn.rollback()
