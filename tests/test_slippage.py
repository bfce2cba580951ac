"""Slippage, docs/mechanics.md section 7 (with the pair table of section 3 and the close fill of section 6):
s = spread + (sideOI + N) / depth1pct x 1%, sideOI the pair's open notional on that side
excluding the trade; long opens and short closes fill at oracle x (1 + s) rounded up, short
opens and long closes at oracle x (1 - s) rounded down (rounding in the pool's favour, docs/mechanics.md §2).
Expectations are exact rational arithmetic from the docs/mechanics.md's table, not the deployment's."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

WAD = 10**18
TRADER = 1
# docs/mechanics.md section 3: spread (bp), 1% depth (USD)
PAIRS = {
    "BTC/USD": (1, 100_000_000),
    "ETH/USD": (1, 50_000_000),
    "SOL/USD": (2, 10_000_000),
    "AAPL/USD": (3, 5_000_000),
}
# prices with digits down to the last wei, so that the fill's rounding direction shows
ODD_BTC = "60000.123456789012345679"
ODD_BTC_2 = "60312.987654321098765433"


def wad(price) -> int:
    return int(Decimal(price) * WAD)


def slippage_wad(pair: str, side_oi_wad: int, notional_wad: int) -> int:
    """s as an 18-decimal fraction, rounded up (the pool's favour)."""
    spread_bps, depth_usd = PAIRS[pair]
    exact = Fraction(spread_bps, 10_000) + Fraction(side_oi_wad + notional_wad, depth_usd * WAD) / 100
    return math.ceil(exact * WAD)


def buy_fill(oracle_wad: int, s_wad: int) -> int:
    return math.ceil(Fraction(oracle_wad * (WAD + s_wad), WAD))


def sell_fill(oracle_wad: int, s_wad: int) -> int:
    return math.floor(Fraction(oracle_wad * (WAD - s_wad), WAD))


def side_oi(sim, pair: str, is_long: bool) -> int:
    return sim.contracts["market"].call("side", sim.pair_id(pair), is_long)["oiUsd"]


def _open(mirror, pair, side, amount=1000, leverage=10, fund=True):
    if fund:
        mirror.fund(TRADER, amount)
    return mirror.open(TRADER, pair, side, amount, leverage)


def test_long_opens_up_rounded_up_and_closes_down_rounded_down(mirror):
    mirror.set_prices({"BTC/USD": ODD_BTC})
    opened = _open(mirror, "BTC/USD", "long")
    p = opened.position
    oracle = wad(ODD_BTC)
    assert opened.oracle_price_wad == oracle
    s = slippage_wad("BTC/USD", 0, p.notional_wad)
    assert opened.slippage_wad == s
    assert oracle * (WAD + s) % WAD != 0  # the rounding direction matters here
    assert p.entry_price_wad == buy_fill(oracle, s) > oracle

    mirror.set_prices({"BTC/USD": ODD_BTC_2})
    closed = mirror.close(TRADER, p.id)
    oracle2 = wad(ODD_BTC_2)
    assert closed.oracle_price_wad == oracle2
    s2 = slippage_wad("BTC/USD", 0, p.notional_wad)  # the side's OI without this position is 0
    assert oracle2 * (WAD - s2) % WAD != 0
    assert closed.exit_price_wad == sell_fill(oracle2, s2) < oracle2


def test_short_opens_down_rounded_down_and_closes_up_rounded_up(mirror):
    sim = mirror.sim
    mirror.set_prices({"BTC/USD": ODD_BTC_2})
    opened = _open(mirror, "BTC/USD", "short")
    p = opened.position
    oracle = wad(ODD_BTC_2)
    s = slippage_wad("BTC/USD", 0, p.notional_wad)
    assert opened.slippage_wad == s
    assert oracle * (WAD - s) % WAD != 0
    assert p.entry_price_wad == sell_fill(oracle, s) < oracle

    mirror.set_prices({"BTC/USD": ODD_BTC})
    closed = mirror.close(TRADER, p.id)
    oracle2 = wad(ODD_BTC)
    assert oracle2 * (WAD + s) % WAD != 0
    assert closed.exit_price_wad == buy_fill(oracle2, s) > oracle2
    assert side_oi(sim, "BTC/USD", False) == 0


def test_slippage_grows_with_the_sides_open_interest(mirror):
    sim = mirror.sim
    oracle = 60_000 * WAD
    mirror.fund(TRADER, 60_000)
    first = _open(mirror, "BTC/USD", "long", 20_000, 100, fund=False)
    n1 = first.position.notional_wad
    assert first.slippage_wad == slippage_wad("BTC/USD", 0, n1)
    second = _open(mirror, "BTC/USD", "long", 20_000, 100, fund=False)
    n2 = second.position.notional_wad
    assert n2 == n1
    assert side_oi(sim, "BTC/USD", True) == n1 + n2
    # the second long pays for the first one's open interest: a worse (higher) fill
    assert second.slippage_wad == slippage_wad("BTC/USD", n1, n2)
    assert abs(second.slippage_wad - first.slippage_wad - Fraction(n1, 100_000_000 * WAD) / 100 * WAD) <= 1
    assert second.position.entry_price_wad == buy_fill(oracle, second.slippage_wad)
    assert second.position.entry_price_wad > first.position.entry_price_wad
    # the other side is unaffected: a short of the same size slips as the first long did
    short = _open(mirror, "BTC/USD", "short", 20_000, 100, fund=False)
    assert short.position.notional_wad == n1
    assert short.slippage_wad == slippage_wad("BTC/USD", 0, n1) == first.slippage_wad
    assert short.position.entry_price_wad == sell_fill(oracle, first.slippage_wad)
    # closing the first long: the side's OI without it (the second long) plus its own notional
    closed = mirror.close(TRADER, first.position.id)
    assert closed.exit_price_wad == sell_fill(oracle, slippage_wad("BTC/USD", n2, n1))
    # ...which is worse than the same long closed alone: the second now closes alone
    closed2 = mirror.close(TRADER, second.position.id)
    assert closed2.exit_price_wad == sell_fill(oracle, slippage_wad("BTC/USD", 0, n2))
    assert closed2.exit_price_wad > closed.exit_price_wad


def test_each_pairs_spread_and_depth(mirror):
    """BTC and ETH 1 bp, SOL 2 bp, AAPL 3 bp, over their own 1% depths."""
    sim = mirror.sim
    mirror.fund(TRADER, 4000)
    prices = {"BTC/USD": 60_000, "ETH/USD": 3_000, "SOL/USD": 150, "AAPL/USD": 200}
    ids = {}
    for pair, (spread_bps, depth_usd) in PAIRS.items():
        opened = _open(mirror, pair, "long", fund=False)
        p = opened.position
        ids[pair] = p.id
        s = opened.slippage_wad
        assert s == slippage_wad(pair, 0, p.notional_wad)
        # what is left after the spread is the depth term, to one wei
        depth_term = Fraction(p.notional_wad, depth_usd * WAD) / 100 * WAD
        assert 0 <= s - spread_bps * 10**14 - depth_term < 1
        assert p.entry_price_wad == buy_fill(prices[pair] * WAD, s)
    slips = {pair: sim.position(pid).entry_price_wad * 10_000 // (prices[pair] * WAD) for pair, pid in ids.items()}
    # entry / oracle in bp, rounded down: 1 + spread for each (the depth terms are < 1 bp)
    assert slips == {"BTC/USD": 10_001, "ETH/USD": 10_001, "SOL/USD": 10_002, "AAPL/USD": 10_003}
