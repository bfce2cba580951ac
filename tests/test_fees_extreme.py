"""Extreme tier (500 <= leverage <= 1001), docs/mechanics.md section 4 (fees), with the sizing of section
5.3 and the settlement of section 6: no open fee (margin = amount - execution fee), close fee
= max(15% of max(pnl, 0), 3 bp of close notional), rounded up. Checked on both chain profiles
against docs/mechanics.md arithmetic computed here (the mirror also checks chain against model)."""

from __future__ import annotations

from decimal import Decimal

import pytest

WAD = 10**18
TRADER = 1
AMOUNT = 100  # USD sent; at 1001x that is a notional of about 100,000 USD (first notional tier)
BTC_SPREAD_BPS, BTC_DEPTH_WAD = 1, 100_000_000 * WAD  # docs/mechanics.md section 3
ETH_SPREAD_BPS, ETH_DEPTH_WAD = 1, 50_000_000 * WAD


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def execution_fee_tokens(sim) -> int:
    scale = 10 ** (18 - sim.decimals)
    return ceil_div(int(sim.profile.execution_fee_usd * WAD), scale)


def slippage_wad(spread_bps: int, side_oi_wad: int, notional_wad: int, depth_wad: int) -> int:
    """docs/mechanics.md §7: spread + (sideOI + N) / depth1pct x 1%, as a WAD fraction rounded up."""
    return spread_bps * 10**14 + ceil_div((side_oi_wad + notional_wad) * 10**16, depth_wad)


def close_exit(p, oracle_wad: int, spread_bps: int, depth_wad: int) -> int:
    """Exit of a lone position closed by its trader (docs/mechanics.md §6 and 7): against the trader, capped
    at the take-profit."""
    s = slippage_wad(spread_bps, 0, p.notional_wad, depth_wad)
    if p.is_long:
        return min(oracle_wad * (WAD - s) // WAD, p.take_profit_wad)
    return max(ceil_div(oracle_wad * (WAD + s), WAD), p.take_profit_wad)


def pnl_floor(p, exit_wad: int) -> int:
    move = exit_wad - p.entry_price_wad if p.is_long else p.entry_price_wad - exit_wad
    return move * p.qty_wad // WAD  # floor (toward minus infinity), in the pool's favour


def three_bp_fee(qty_wad: int, exit_wad: int) -> int:
    close_notional = qty_wad * exit_wad // WAD
    return ceil_div(close_notional * 3, 10_000)


def profit_fee(pnl_wad: int) -> int:
    return ceil_div(max(pnl_wad, 0) * 15, 100)


def _open(mirror, pair: str, side: str, leverage: int):
    mirror.fund(TRADER, AMOUNT)
    return mirror.open(TRADER, pair, side, AMOUNT, leverage)


def _check_settlement(sim, closed, before_units: int) -> None:
    """Payout = M + pnl - fee - holding - funding, paid in tokens rounded down."""
    p = closed.position
    expected_payout = p.margin_wad + closed.pnl_wad - closed.close_fee_wad - closed.holding_wad - closed.funding_wad
    assert expected_payout > 0
    assert closed.payout_wad == expected_payout
    scale = 10 ** (18 - sim.decimals)
    assert closed.payout_tokens == expected_payout // scale
    assert sim.collateral_units(TRADER) - before_units == closed.payout_tokens


def test_no_open_fee_margin_is_amount_less_execution_fee_499x_pays_one(mirror):
    sim = mirror.sim
    x = execution_fee_tokens(sim)
    scale = 10 ** (18 - sim.decimals)
    escrow = sim.contracts["trading"].address
    for leverage, pair, side in [(500, "BTC/USD", "long"), (1001, "ETH/USD", "short")]:
        treasury_before = sim.collateral_units(sim.deployment.treasury)
        pool_before = sim.contracts["pool"].call("poolBalance")
        escrow_before = sim.collateral_units(escrow)
        trader_before = sim.collateral_units(TRADER) + sim.to_units(AMOUNT)
        opened = _open(mirror, pair, side, leverage)
        p = opened.position
        assert opened.execution_fee_tokens == x
        assert opened.open_fee_tokens == 0
        assert opened.open_fee_wad == 0
        # docs/mechanics.md §5.3 with f = 0: M = A - X, N = L x M
        assert p.margin_tokens == sim.to_units(AMOUNT) - x
        assert p.margin_wad == p.margin_tokens * scale
        assert p.notional_wad == leverage * p.margin_tokens * scale
        assert p.leverage == leverage
        # the trader paid A; nothing went to the treasury or the pool at open
        assert trader_before - sim.collateral_units(TRADER) == sim.to_units(AMOUNT)
        assert sim.collateral_units(sim.deployment.treasury) == treasury_before
        assert sim.contracts["pool"].call("poolBalance") == pool_before
        # the whole margin sits in escrow
        assert sim.collateral_units(escrow) - escrow_before == p.margin_tokens

    # the tier boundary (docs/mechanics.md §3: the extreme tier starts at 500x): 499x pays the 8 bp open fee,
    # M = (A - X) / (1 + 499 x 0.0008) rounded down
    treasury_before = sim.collateral_units(sim.deployment.treasury)
    standard = _open(mirror, "BTC/USD", "long", 499)
    net = sim.to_units(AMOUNT) - x
    assert standard.position.margin_tokens == net * 10_000 // (10_000 + 499 * 8)
    assert standard.open_fee_tokens == net - standard.position.margin_tokens > 0
    assert sim.collateral_units(sim.deployment.treasury) - treasury_before == standard.open_fee_tokens // 2


@pytest.mark.parametrize("leverage, side, close_price", [(500, "long", 59_990), (1001, "short", 60_005)])
def test_losing_close_pays_3bp_of_close_notional(mirror, leverage, side, close_price):
    sim = mirror.sim
    opened = _open(mirror, "BTC/USD", side, leverage)
    p = opened.position
    mirror.set_prices({"BTC/USD": close_price})
    before = sim.collateral_units(TRADER)
    closed = mirror.close(TRADER, p.id)
    oracle = close_price * WAD
    exit_wad = close_exit(p, oracle, BTC_SPREAD_BPS, BTC_DEPTH_WAD)
    assert closed.exit_price_wad == exit_wad
    pnl = pnl_floor(p, exit_wad)
    assert closed.pnl_wad == pnl < 0
    # no profit: the 3 bp floor of the close notional applies
    assert closed.close_fee_wad == three_bp_fee(p.qty_wad, exit_wad)
    assert closed.close_fee_wad > 0
    _check_settlement(sim, closed, before)


@pytest.mark.parametrize("leverage, side, close_price", [
    (500, "long", 60_018),
    (1001, "short", 59_982),
])
def test_small_profit_close_3bp_still_wins(mirror, leverage, side, close_price):
    sim = mirror.sim
    opened = _open(mirror, "BTC/USD", side, leverage)
    p = opened.position
    mirror.set_prices({"BTC/USD": close_price})
    before = sim.collateral_units(TRADER)
    closed = mirror.close(TRADER, p.id)
    exit_wad = close_exit(p, close_price * WAD, BTC_SPREAD_BPS, BTC_DEPTH_WAD)
    assert closed.exit_price_wad == exit_wad
    pnl = pnl_floor(p, exit_wad)
    assert closed.pnl_wad == pnl > 0
    by_notional, by_profit = three_bp_fee(p.qty_wad, exit_wad), profit_fee(pnl)
    assert by_profit < by_notional  # the scenario: 15% of a small profit is under 3 bp
    assert closed.close_fee_wad == by_notional
    _check_settlement(sim, closed, before)


@pytest.mark.parametrize("leverage, pair, side, close_price", [
    (500, "BTC/USD", "long", 60_300),
    (1001, "ETH/USD", "short", 2_992),
])
def test_large_profit_close_pays_15pct_of_profit(mirror, leverage, pair, side, close_price):
    sim = mirror.sim
    spread, depth = (BTC_SPREAD_BPS, BTC_DEPTH_WAD) if pair == "BTC/USD" else (ETH_SPREAD_BPS, ETH_DEPTH_WAD)
    opened = _open(mirror, pair, side, leverage)
    p = opened.position
    mirror.set_prices({pair: close_price})
    before = sim.collateral_units(TRADER)
    closed = mirror.close(TRADER, p.id)
    exit_wad = close_exit(p, close_price * WAD, spread, depth)
    assert closed.exit_price_wad == exit_wad
    pnl = pnl_floor(p, exit_wad)
    assert closed.pnl_wad == pnl > 0
    # within the ROI cap: 500% of M (500x), 300% of M (1001x)
    roi_cap_bps = 30_000 if leverage >= 1000 else 50_000
    assert pnl <= p.margin_wad * roi_cap_bps // 10_000
    by_notional, by_profit = three_bp_fee(p.qty_wad, exit_wad), profit_fee(pnl)
    assert by_profit > by_notional
    assert closed.close_fee_wad == by_profit
    # 15% of the profit, rounded up (never below the exact Decimal value)
    assert Decimal(closed.close_fee_wad) >= Decimal(pnl) * Decimal("0.15") > Decimal(closed.close_fee_wad - 1)
    _check_settlement(sim, closed, before)


def test_profit_capped_at_take_profit_pays_15pct_of_capped_profit(mirror):
    """At 1001x the ROI cap is 300% of M (docs/mechanics.md §5.5); a close past it exits at the take-profit
    and the profit fee is 15% of the capped profit."""
    opened = _open(mirror, "BTC/USD", "long", 1001)
    p = opened.position
    mirror.set_prices({"BTC/USD": 60_400})  # past the cap price (about 60,186)
    closed = mirror.close(TRADER, p.id)
    assert closed.exit_price_wad == p.take_profit_wad
    pnl = pnl_floor(p, p.take_profit_wad)
    assert closed.pnl_wad == pnl
    assert p.max_profit_wad == p.margin_wad * 3
    # the cap price is rounded down by at most one wei, so the profit is at the cap to a few wei
    assert p.max_profit_wad - p.qty_wad // WAD - 2 <= pnl <= p.max_profit_wad
    assert closed.close_fee_wad == profit_fee(pnl) > three_bp_fee(p.qty_wad, p.take_profit_wad)
