"""The demo's pool, without a database: a believable week of a solo pool's events,
deterministic for a seed. `lottery demo` (db/cli/demo.py) loads it."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from core.rules import TRUEDIFFONE

UTC = dt.timezone.utc


class Week(NamedTuple):
    """A lottery week as get_week_boundaries() gives it: [start, end) in UTC."""

    monday: dt.date
    start: dt.datetime  # inclusive
    end: dt.datetime    # exclusive
    last_day: dt.date   # the date of week_end_shown()

    @classmethod
    def of(cls, monday: dt.date) -> "Week":
        """The week of a Monday for callers without a database; `lottery demo` asks SQL
        instead, and tests/test_cli.py checks that the two agree."""
        start = dt.datetime.combine(monday, dt.time(), UTC)
        return cls(monday, start, start + dt.timedelta(days=7), monday + dt.timedelta(days=6))


BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: Iterable[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                checksum ^= generator[i]
    return checksum


def segwit_v0_address(program: bytes, hrp: str = "bc") -> str:
    """A valid bech32 P2WPKH address (BIP 173) for a 20-byte witness program."""
    acc, bits, data = 0, 0, [0]  # witness version 0
    for byte in program:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod(expanded + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


HANDLE_FIRST = ("hash", "block", "sat", "nonce", "solo", "axe", "node", "lucky", "stack", "orange",
                "midnight", "garage", "basement", "cold", "tiny", "diff")
HANDLE_SECOND = ("badger", "hunter", "miner", "pleb", "stacker", "wizard", "goblin", "cat", "fox",
                 "owl", "farmer", "monk", "otter", "raccoon", "viking", "sparrow")
NAME_ADJECTIVES = ("Sleepy", "Lucky", "Orange", "Quiet", "Stubborn", "Humble", "Patient", "Noisy",
                   "Frosty", "Sunny", "Brave", "Tiny", "Midnight", "Rusty", "Golden", "Electric")
NAME_NOUNS = ("Badger", "Hasher", "Pleb", "Owl", "Fox", "Otter", "Miner", "Stacker", "Node", "Axe",
              "Nonce", "Sparrow", "Heron", "Lynx", "Yak", "Marmot")

# name, share of workers, hashrate range in H/s
DEVICES = (
    ("nerdminer", 0.07, 4.5e4, 8.0e4),
    ("bitaxe", 0.42, 4.0e11, 1.6e12),
    ("nerdqaxe", 0.16, 2.0e12, 6.0e12),
    ("s9", 0.12, 1.1e13, 1.4e13),
    ("s19", 0.15, 8.0e13, 1.1e14),
    ("s21", 0.08, 1.8e14, 2.3e14),
)
VARDIFF_SECONDS = 3.33  # ckpool's vardiff aims at one share every ~3.33 s
NETWORK_DIFF_RANGE = (8.6e13, 1.2e14)
HALVING_2024 = dt.datetime(2024, 4, 20, 0, 9, 27, tzinfo=UTC)  # block 840,000
REJECT_REASONS = ("Stale", "Stale", "Stale", "Duplicate", "Invalid JobID")


@dataclass
class DemoWorker:
    name: str
    device: str
    hashrate: float
    pool_diff: int
    reject_rate: float
    window: tuple[float, float]  # fraction of the week it was mining


@dataclass
class DemoUser:
    user_id: str
    display_name: str
    utc_offset_h: int
    activity: float
    workers: list[DemoWorker]


@dataclass
class DemoData:
    users: list[DemoUser]
    events: list[tuple[dt.datetime, str, dict]]  # sorted by time
    block_user: str | None = None


def block_height_at(ts: dt.datetime) -> int:
    return 840_000 + int((ts - HALVING_2024).total_seconds() // 600)


def random_share_hash(rng: random.Random, min_diff: float) -> tuple[str, float]:
    """A share hash at or above min_diff, uniform over the hashes that qualify (so the
    difficulty is Pareto with alpha 1 above min_diff), and the difficulty it proves:
    exactly truediffone / hash, as ckpool computes it."""
    limit = max(1, int(TRUEDIFFONE // min_diff))
    value = rng.randint(1, limit)
    return format(value, "064x"), TRUEDIFFONE / value


def make_demo_users(rng: random.Random, miners: int) -> list[DemoUser]:
    users: list[DemoUser] = []
    seen: set[str] = set()
    device_weights = [d[1] for d in DEVICES]
    for index in range(miners):
        while True:
            if rng.random() < 0.7:
                user_id = segwit_v0_address(bytes(rng.getrandbits(8) for _ in range(20)))
                display = f"{rng.choice(NAME_ADJECTIVES)} {rng.choice(NAME_NOUNS)}"
            else:
                first, second = rng.choice(HANDLE_FIRST), rng.choice(HANDLE_SECOND)
                digits = str(rng.randint(1, 99)) if rng.random() < 0.5 else ""
                user_id = first + second + digits
                display = first.capitalize() + second.capitalize() + digits
            if user_id not in seen:
                seen.add(user_id)
                break
        n_workers = rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        if index == 0:
            n_workers = max(n_workers, 2)  # at least one multi-rig miner in any demo
        workers: list[DemoWorker] = []
        used: dict[str, int] = {}
        for _ in range(n_workers):
            device, _w, low, high = rng.choices(DEVICES, weights=device_weights)[0]
            hashrate = math.exp(rng.uniform(math.log(low), math.log(high)))
            pool_diff = max(1, round(hashrate / 2**32 * VARDIFF_SECONDS))
            used[device] = used.get(device, 0) + 1
            name = f"{user_id}.{device}{used[device]}" if rng.random() < 0.8 else f"{user_id}.rig{len(workers) + 1}"
            if rng.random() < 0.75:
                window = (0.0, 1.0)
            else:
                start = rng.uniform(0.0, 0.6)
                window = (start, start + rng.uniform(0.25, 1.0) * (1.0 - start))
            workers.append(DemoWorker(name, device, hashrate, pool_diff,
                                      reject_rate=rng.uniform(0.005, 0.03), window=window))
        users.append(DemoUser(user_id, display, utc_offset_h=rng.randint(-8, 10),
                              activity=rng.lognormvariate(0.0, 0.6), workers=workers))
    mean_activity = sum(u.activity for u in users) / max(len(users), 1)
    for user in users:
        user.activity /= mean_activity
    return users


def _diurnal_time(rng: random.Random, start: dt.datetime, span_s: float, window: tuple[float, float],
                  utc_offset_h: int) -> dt.datetime:
    """A time within the worker's window, denser at night local time (cheap power, cool air)."""
    lo, hi = window
    while True:
        offset = span_s * rng.uniform(lo, hi)
        ts = start + dt.timedelta(microseconds=int(offset * 1e6))
        local_hour = (ts.hour + ts.minute / 60 + utc_offset_h) % 24
        if rng.random() * 1.4 <= 1 + 0.4 * math.cos(2 * math.pi * (local_hour - 3) / 24):
            return ts


def _network_events(rng: random.Random, start: dt.datetime, end: dt.datetime,
                    base_diff: float) -> tuple[list[tuple[dt.datetime, str, dict]], list[tuple[dt.datetime, float]]]:
    """A few new_block_network events a day; at most one difficulty adjustment in the range."""
    span = (end - start).total_seconds()
    low, high = NETWORK_DIFF_RANGE
    adjusted = min(high, max(low, base_diff * rng.uniform(0.95, 1.07)))
    adjust_at = start + dt.timedelta(seconds=span * rng.uniform(0.2, 0.9))
    events, diffs = [], []
    day = start
    while day < end:
        for _ in range(rng.randint(3, 6)):
            ts = day + dt.timedelta(microseconds=rng.randrange(86_400_000_000))
            if ts >= end:
                continue
            diff = round(adjusted if ts >= adjust_at else base_diff, 2)
            block_hash, _ = random_share_hash(rng, diff)
            events.append((ts, "new_block_network",
                           {"diff": diff, "height": block_height_at(ts), "hash": block_hash}))
            diffs.append((ts, diff))
        day += dt.timedelta(days=1)
    diffs.sort()
    return events, diffs


def _user_shares(rng: random.Random, user: DemoUser, shares_per_miner: float, start: dt.datetime,
                 span_s: float, events: list) -> None:
    total = max(1, round(shares_per_miner * user.activity))
    weights = [rng.uniform(0.5, 1.5) for _ in user.workers]
    scale = sum(weights)
    for worker, weight in zip(user.workers, weights):
        # Below ckpool's minimum difficulty vardiff cannot keep the share rate up.
        rate = min(1.0, worker.hashrate * VARDIFF_SECONDS / (2**32 * worker.pool_diff))
        count = max(1, round(total * weight / scale * max(rate, 0.03)))
        for _ in range(count):
            ts = _diurnal_time(rng, start, span_s, worker.window, user.utc_offset_h)
            share_hash, sdiff = random_share_hash(rng, worker.pool_diff)
            payload = {"user": user.user_id, "worker": worker.name, "sdiff": sdiff,
                       "accepted": True, "hash": share_hash}
            if rng.random() < worker.reject_rate:
                payload["accepted"] = False
                payload["reject_reason"] = rng.choice(REJECT_REASONS)
            events.append((ts, "share_submitted", payload))


def generate_demo(seed: int, miners: int, shares_per_miner: float, week_start: dt.date | Week,
                  now: dt.datetime, also_open_week: bool, open_week: dt.date | Week) -> DemoData:
    """Pure and deterministic for (seed, miners, shares, week_start) when the week is closed.
    The weeks are Week spans (as SQL gives them) or their Mondays."""
    week = week_start if isinstance(week_start, Week) else Week.of(week_start)
    current = open_week if isinstance(open_week, Week) else Week.of(open_week)
    rng = random.Random(seed)
    users = make_demo_users(rng, miners)
    events: list[tuple[dt.datetime, str, dict]] = []

    start = week.start
    end = min(week.end, now)
    span_s = (end - start).total_seconds()
    base_diff = round(rng.uniform(*NETWORK_DIFF_RANGE), 2)
    network, diffs = _network_events(rng, start, end, base_diff)
    events += network
    for user in users:
        _user_shares(rng, user, shares_per_miner, start, span_s, events)

    # One block for one miner, more likely the bigger ones: a share at or above the
    # network difficulty of that moment, and its block_found event.
    block_user = None
    if users:
        power = [sum(w.hashrate for w in u.workers) ** 0.5 for u in users]
        finder = rng.choices(users, weights=power)[0]
        worker = max(finder.workers, key=lambda w: w.hashrate)
        ts = _diurnal_time(rng, start, span_s, worker.window, finder.utc_offset_h)
        at = bisect.bisect_right(diffs, (ts, math.inf)) - 1
        network_diff = diffs[at][1] if at >= 0 else base_diff
        block_hash, sdiff = random_share_hash(rng, network_diff)
        events.append((ts, "share_submitted", {"user": finder.user_id, "worker": worker.name,
                                               "sdiff": sdiff, "accepted": True, "hash": block_hash}))
        events.append((ts + dt.timedelta(milliseconds=rng.randint(5, 400)), "block_found",
                       {"user": finder.user_id, "worker": worker.name, "height": block_height_at(ts),
                        "hash": block_hash, "diff": sdiff, "network_diff": network_diff}))
        block_user = finder.user_id

    if also_open_week and current.monday != week.monday:
        open_span = (now - current.start).total_seconds()
        if open_span > 1:
            fraction = open_span / (current.end - current.start).total_seconds()
            network, _ = _network_events(rng, current.start, now, base_diff)
            events += network
            for user in users:
                if rng.random() < 0.85:
                    _user_shares(rng, user, shares_per_miner * fraction, current.start, open_span, events)

    events.sort(key=lambda e: (e[0], e[1]))
    return DemoData(users, events, block_user)
