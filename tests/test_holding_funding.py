"""Holding and funding (docs/mechanics.md section 9): holding is entry notional x 0.001%/h x elapsed,
accrued per second; funding is 0.01%/h x (longOI - shortOI) / max(longOI, shortOI), paid by
the heavier side on its notional and received by the lighter side at the same rate on its
own while the pair's price is settled (the keeper's triggers ran at it), the pool keeping
the difference; balanced open interest pays none. Expectations are docs/mechanics.md
arithmetic over the chain's block timestamps, on both chain profiles."""

from __future__ import annotations

from fractions import Fraction

import pytest

WAD = 10**18
HOUR = 3600
DAY = 24 * HOUR
MAX_PRICE_AGE_S = 60  # the oracle's default
HOLDING_PER_HOUR = Fraction(1, 100_000)  # 0.001%
FUNDING_PER_HOUR = Fraction(1, 10_000)  # 0.01%
PAIR, PAIR_ID = "BTC/USD", 0


def _tolerance(notional_wad: int, accruals: int = 20) -> int:
    """Rounding: each accrual floors an index step (< 1 wad per unit of notional), the charge
    rounds up once."""
    return notional_wad * accruals // WAD + 2


def _ts(sim, block: int | str = "latest") -> int:
    return sim.session.block(block).timestamp


def _indexes(sim) -> dict:
    return sim.contracts["market"].call("indexesNow", PAIR_ID)


def _owed(notional_wad: int, index_now: int, index_at_open: int) -> int:
    """What an index move costs a position, rounded up (docs/mechanics.md §9: entry notional x delta)."""
    return -((-(index_now - index_at_open) * notional_wad) // WAD)


def _close(mirror, trader, position):
    closed = mirror.close(trader, position.id)
    return closed, _ts(mirror.sim, closed.block)


def _assert_payout_includes_charges(sim, closed, balance_before: int, trader) -> None:
    """docs/mechanics.md §6: the trader receives M + pnl - closeFee - holding - funding."""
    p = closed.position
    assert closed.payout_wad == p.margin_wad + closed.pnl_wad - closed.close_fee_wad - closed.holding_wad \
        - closed.funding_wad
    assert closed.payout_tokens == closed.payout_wad // 10 ** (18 - sim.decimals)
    assert sim.collateral_units(trader) - balance_before == closed.payout_tokens


def test_holding_is_entry_notional_times_rate_times_elapsed(mirror):
    sim = mirror.sim
    mirror.fund(1, 10_000)
    p = mirror.open(1, PAIR, "long", 10_000, 10).position
    n = p.notional_wad
    t0 = p.opened_at

    mirror.wait(HOUR)
    now = _ts(sim)
    assert now - t0 == HOUR
    owed_1h = _owed(n, _indexes(sim)["holding"], p.holding_index)
    expected_1h = n * HOLDING_PER_HOUR  # exactly one hour
    assert abs(owed_1h - expected_1h) <= _tolerance(n), (owed_1h, float(expected_1h))
    assert abs(owed_1h - Fraction(p.notional_wad, 100_000)) <= _tolerance(n)  # 0.001% of N

    # per second: one more second adds N x 0.001% / 3600
    mirror.wait(1)
    owed_1h1s = _owed(n, _indexes(sim)["holding"], p.holding_index)
    assert abs((owed_1h1s - owed_1h) - n * HOLDING_PER_HOUR / HOUR) <= _tolerance(n)
    assert owed_1h1s > owed_1h

    # settled after ten hours and a bit: the settlement charges it, the payout deducts it
    mirror.wait(9 * HOUR)
    before = sim.collateral_units(1)
    closed, t_close = _close(mirror, 1, p)
    elapsed = t_close - t0
    assert elapsed >= 10 * HOUR
    expected = n * HOLDING_PER_HOUR * elapsed / HOUR
    assert abs(closed.holding_wad - expected) <= _tolerance(n), (closed.holding_wad, float(expected))
    assert closed.holding_wad > 0
    _assert_payout_includes_charges(sim, closed, before, 1)


def test_holding_is_the_same_rate_on_either_side_and_any_pair(mirror):
    sim = mirror.sim
    for trader in (1, 2):
        mirror.fund(trader, 2_000)
    a = mirror.open(1, "ETH/USD", "short", 2_000, 20).position
    b = mirror.open(2, "SOL/USD", "long", 1_000, 5).position
    mirror.wait(10 * HOUR)
    results = []
    for trader, p in ((1, a), (2, b)):
        closed, t_close = _close(mirror, trader, p)
        expected = p.notional_wad * HOLDING_PER_HOUR * (t_close - p.opened_at) / HOUR
        assert abs(closed.holding_wad - expected) <= _tolerance(p.notional_wad)
        results.append(closed)
    assert all(c.holding_wad > 0 for c in results)
    assert sim.pool().reserve_wad == 0


def _funding_rate(heavy: int, light: int) -> Fraction:
    """docs/mechanics.md §9: 0.01%/h x imbalance / heavier side, per hour."""
    return FUNDING_PER_HOUR * Fraction(heavy - light, heavy) if heavy else Fraction(0)


@pytest.mark.parametrize("heavy_side", ["long", "short"])
def test_skewed_open_interest_heavier_side_pays_lighter_receives(mirror, heavy_side):
    sim = mirror.sim
    light_side = "short" if heavy_side == "long" else "long"
    heavy_trader, light_trader = 1, 2
    # a keeper live throughout: its triggers settle the price for the whole test (the
    # maximum age raised to a day), so the lighter side receives from the first trigger run
    # on (test_lighter_side_receives_only_while_the_pairs_price_is_settled: gaps)
    mirror.set_price_guards(max_age_s=DAY)
    mirror.fund(heavy_trader, 3_000)
    mirror.fund(light_trader, 1_000)
    heavy = mirror.open(heavy_trader, PAIR, heavy_side, 3_000, 10).position  # t1
    light = mirror.open(light_trader, PAIR, light_side, 1_000, 10).position  # t2
    mirror.keeper_round()  # ts: the price settled (an open's price is not)
    ts = _ts(sim)
    assert sim.contracts["oracle"].call("settledUntil", PAIR_ID) > ts + 10 * HOUR
    nh, nl = heavy.notional_wad, light.notional_wad
    assert nh > 2 * nl
    t1, t2 = heavy.opened_at, light.opened_at
    rate_alone = FUNDING_PER_HOUR  # one side only: (L - 0) / L = 1
    rate_skewed = _funding_rate(nh, nl)

    mirror.wait(10 * HOUR)
    now = _ts(sim)
    idx = _indexes(sim)
    heavy_key = "fundingLong" if heavy_side == "long" else "fundingShort"
    light_key = "fundingShort" if heavy_side == "long" else "fundingLong"
    owed_heavy = _owed(nh, idx[heavy_key], heavy.funding_index)
    owed_light = _owed(nl, idx[light_key], light.funding_index)
    exp_heavy = nh * (rate_alone * (t2 - t1) + rate_skewed * (now - t2)) / HOUR
    exp_light = -nl * rate_skewed * (now - ts) / HOUR
    assert abs(owed_heavy - exp_heavy) <= _tolerance(nh), (owed_heavy, float(exp_heavy))
    assert abs(owed_light - exp_light) <= _tolerance(nl), (owed_light, float(exp_light))
    assert owed_heavy > 0 > owed_light
    # the pool keeps the difference: rate x (heavy - light) over the settled skewed period,
    # the whole heavier side's payment before it
    kept = owed_heavy + owed_light
    exp_kept = nh * rate_alone * (t2 - t1) / HOUR + rate_skewed * nh * (ts - t2) / HOUR \
        + rate_skewed * (nh - nl) * (now - ts) / HOUR
    assert abs(kept - exp_kept) <= _tolerance(nh) + _tolerance(nl)
    assert kept > 0

    # settle: the lighter side first (it receives: negative funding), then the heavier one,
    # which pays the full rate alone for the last few seconds (a close at the unchanged price
    # keeps it settled)
    before_light = sim.collateral_units(light_trader)
    closed_light, t3 = _close(mirror, light_trader, light)
    assert closed_light.funding_wad < 0
    exp_light = -nl * rate_skewed * (t3 - ts) / HOUR
    assert abs(closed_light.funding_wad - exp_light) <= _tolerance(nl), (closed_light.funding_wad, float(exp_light))
    _assert_payout_includes_charges(sim, closed_light, before_light, light_trader)

    before_heavy = sim.collateral_units(heavy_trader)
    closed_heavy, t4 = _close(mirror, heavy_trader, heavy)
    assert closed_heavy.funding_wad > 0
    exp_heavy = nh * (rate_alone * (t2 - t1) + rate_skewed * (t3 - t2) + rate_alone * (t4 - t3)) / HOUR
    assert abs(closed_heavy.funding_wad - exp_heavy) <= _tolerance(nh), (closed_heavy.funding_wad, float(exp_heavy))
    _assert_payout_includes_charges(sim, closed_heavy, before_heavy, heavy_trader)
    # the receiving side got its funding on top of pnl: with the price unchanged it gets back
    # more than margin - fees - holding
    assert closed_light.payout_wad > light.margin_wad + closed_light.pnl_wad - closed_light.close_fee_wad \
        - closed_light.holding_wad


@pytest.mark.parametrize("heavy_side", ["long", "short"])
def test_lighter_side_receives_only_while_the_pairs_price_is_settled(mirror, heavy_side):
    """docs/mechanics.md §9: the heavier side pays for every second; the lighter side receives
    only while the pair's price is settled: from a trigger run (`runTriggers`) at it with the
    guard passing, until the reference round then current is 60 s old. A price recorded
    without triggers (an open, a close at a new price, `updatePrices`) is not settled. Through
    a keeper gap the heavier side may be past paying, so the pool pays nothing it cannot
    collect."""
    sim = mirror.sim
    oracle = sim.contracts["oracle"]
    light_side = "short" if heavy_side == "long" else "long"
    mirror.fund(1, 3_000)
    mirror.fund(2, 1_000)
    heavy = mirror.open(1, PAIR, heavy_side, 3_000, 10).position  # t1
    light = mirror.open(2, PAIR, light_side, 1_000, 10).position  # t2, priced at t2 but not settled
    nh, nl = heavy.notional_wad, light.notional_wad
    t1, t2 = heavy.opened_at, light.opened_at
    rate = _funding_rate(nh, nl)
    heavy_key = "fundingLong" if heavy_side == "long" else "fundingShort"
    light_key = "fundingShort" if heavy_side == "long" else "fundingLong"
    assert oracle.call("settledUntil", PAIR_ID) == 0

    def received() -> int:
        return -_owed(nl, _indexes(sim)[light_key], light.funding_index)

    mirror.wait(30)  # the open's price, fresh but not settled: nothing received
    assert received() == 0
    mirror.keeper_round()  # ra: settled until the reference round's time + 60 s
    ra, until_a = _ts(sim), oracle.call("settledUntil", PAIR_ID)
    assert until_a == oracle.call("referencePrice", PAIR_ID)[1] + MAX_PRICE_AGE_S
    assert ra < until_a <= ra + MAX_PRICE_AGE_S

    mirror.wait(10 * HOUR)  # a keeper gap: settled only until until_a
    now = _ts(sim)
    exp_heavy = nh * (FUNDING_PER_HOUR * (t2 - t1) + rate * (now - t2)) / HOUR
    assert abs(_owed(nh, _indexes(sim)[heavy_key], heavy.funding_index) - exp_heavy) <= _tolerance(nh)
    first = nl * rate * (until_a - ra) / HOUR
    assert abs(received() - first) <= _tolerance(nl), received()

    mirror.push_prices()  # the keeper is back without triggers: the same price, its settlement aged out
    mirror.wait(30)
    assert abs(received() - first) <= _tolerance(nl)
    mirror.keeper_round()  # rb: its triggers settle the price again (the keeper refreshed the reference)
    rb, until_b = _ts(sim), oracle.call("settledUntil", PAIR_ID)
    assert rb < until_b <= rb + MAX_PRICE_AGE_S
    mirror.wait(20)
    assert abs(received() - (first + nl * rate * 20 / HOUR)) <= _tolerance(nl), received()

    mirror.wait(10 * HOUR)  # a second gap: settled only until until_b
    before = sim.collateral_units(2)
    closed, t3 = _close(mirror, 2, light)
    exp_light = -nl * rate * ((until_a - ra) + (until_b - rb)) / HOUR
    assert abs(closed.funding_wad - exp_light) <= _tolerance(nl), (closed.funding_wad, float(exp_light))
    assert closed.funding_wad < 0
    _assert_payout_includes_charges(sim, closed, before, 2)

    closed_heavy, t4 = _close(mirror, 1, heavy)
    exp_heavy = nh * (FUNDING_PER_HOUR * (t2 - t1) + rate * (t3 - t2) + FUNDING_PER_HOUR * (t4 - t3)) / HOUR
    assert abs(closed_heavy.funding_wad - exp_heavy) <= _tolerance(nh), (closed_heavy.funding_wad, float(exp_heavy))
    # what the pool kept: every second the heavier side paid, less two minutes of receipts at most
    assert closed_heavy.funding_wad + closed.funding_wad > nh * rate * (t3 - t2 - 2 * MAX_PRICE_AGE_S) / HOUR


def test_balanced_open_interest_pays_no_funding(mirror):
    sim = mirror.sim
    for trader in (1, 2):
        mirror.fund(trader, 2_000)
    long_ = mirror.open(1, PAIR, "long", 2_000, 10).position  # t1: alone for a block or two
    short = mirror.open(2, PAIR, "short", 2_000, 10).position  # t2: balanced from here
    n = long_.notional_wad
    assert short.notional_wad == n
    t1, t2 = long_.opened_at, short.opened_at
    at_balance = _indexes(sim)

    mirror.wait(10 * HOUR)
    idx = _indexes(sim)
    # ten hours of balanced open interest: the funding indexes do not move, holding does
    assert (idx["fundingLong"], idx["fundingShort"]) == (at_balance["fundingLong"], at_balance["fundingShort"])
    assert idx["holding"] - at_balance["holding"] == 10 * HOUR * 10**13 // HOUR
    assert _owed(n, idx["fundingShort"], short.funding_index) == 0

    closed_long, t3 = _close(mirror, 1, long_)  # only the seconds it was alone count
    exp_long = n * FUNDING_PER_HOUR * (t2 - t1) / HOUR
    assert abs(closed_long.funding_wad - exp_long) <= _tolerance(n)
    closed_short, t4 = _close(mirror, 2, short)  # alone (so paying) only after t3
    exp_short = n * FUNDING_PER_HOUR * (t4 - t3) / HOUR
    assert abs(closed_short.funding_wad - exp_short) <= _tolerance(n)
    # neither carries anything like ten hours of funding (that would be 0.1% of N)
    minute = n * FUNDING_PER_HOUR / 60
    assert abs(closed_long.funding_wad) < minute and abs(closed_short.funding_wad) < minute
    # holding is charged all the same
    assert abs(closed_long.holding_wad - n * HOLDING_PER_HOUR * (t3 - t1) / HOUR) <= _tolerance(n)
