"""The client's basket (issue 28): `fund(asset=)` mints every basket asset of both chains (to the
unit of its decimals, Arbitrum's 8-decimal BTC included), an unknown asset is refused naming the
basket's symbols before anything is sent, and `pool()` reports holdings, weights at the
keeper's mark prices, targets, prices and the payout-token reserve capacity, each checked
against figures worked by hand from the profile."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpsim.errors import ConfigError, UnknownNameError
from alpsim.profiles import get_profile

PRICES = {"BTC/USD": 60_000, "ETH/USD": 3_000}


def _basket(sim) -> list:  # noqa: ANN001
    return sim.deployment.basket


def test_fund_mints_every_basket_asset_to_the_unit(sim):
    profile = get_profile(sim.deployment.chain)
    assert [e.symbol for e in _basket(sim)] == [a.symbol for a in profile.basket]
    for entry in _basket(sim):
        # the smallest unit of the asset and a whole token: e.g. "1.00000001" BTC on Arbitrum (8 decimals)
        amount = Decimal(1) + Decimal(1).scaleb(-entry.decimals)
        before = sim.asset_units(2, entry.symbol)
        sim.fund(2, amount, asset=entry.symbol)
        assert sim.asset_units(2, entry.symbol) - before == 10**entry.decimals + 1
        assert sim.asset_token(entry.symbol).call("decimals") == entry.decimals
        with pytest.raises(ConfigError, match=f"has more than {entry.decimals} decimals"):
            sim.fund(2, Decimal(1).scaleb(-entry.decimals - 1), asset=entry.symbol)


def test_btc_decimals_are_the_real_tokens(sim):
    """BTCB on BNB Chain has 18 decimals, WBTC on Arbitrum 8: one unit is 1e-18 or 1e-8 BTC."""
    decimals = {"bnb": 18, "arbitrum": 8}[sim.deployment.chain]
    assert sim.asset_decimals("BTC") == decimals
    sim.fund(3, Decimal(1).scaleb(-decimals), asset="BTC")
    assert sim.asset_units(3, "BTC") == 1
    assert sim.asset_units(3, sim.asset_token("BTC").address) == 1  # by token address too


def test_an_unknown_asset_is_refused_naming_the_basket_before_any_transaction(sim):
    symbols = [e.symbol for e in _basket(sim)]
    sim.fund(1, 1_000)
    block = sim.devnet.block_number
    for call in (lambda: sim.fund(1, 10, asset="DOGE"), lambda: sim.deposit(1, 10, asset="DOGE"),
                 lambda: sim.withdraw(1, 1, asset="DOGE"), lambda: sim.quote_lp("DOGE", 10),
                 lambda: sim.fund(1, 10, asset=3)):
        with pytest.raises(UnknownNameError) as info:
            call()
        assert all(s in str(info.value) for s in symbols), str(info.value)
    assert sim.devnet.block_number == block
    assert sim.collateral_units(1) == sim.to_units(1_000)


def test_bad_fund_and_deposit_amounts_are_refused_before_any_transaction(sim):
    block = sim.devnet.block_number
    with pytest.raises(ConfigError, match="fund amount must be positive"):
        sim.fund(1, -5, asset="BTC")
    with pytest.raises(ConfigError, match="fund amount must be positive"):
        sim.fund(1, 0)
    with pytest.raises(ConfigError, match="must be a number"):
        sim.fund(1, "ten", asset="BTC")
    with pytest.raises(ConfigError, match="deposit amount must not be negative"):
        sim.deposit(1, -1, asset="BTC")
    assert sim.devnet.block_number == block


def test_pool_reports_holdings_weights_targets_prices_and_capacity(sim):
    profile = get_profile(sim.deployment.chain)
    payout, volatile = profile.basket[0].symbol, "BTC"
    sim.keeper.set_prices(PRICES)
    empty = sim.pool()
    assert empty.targets_bps == {a.symbol: a.target_bps for a in profile.basket}
    assert set(empty.weights_bps.values()) == {Decimal(0)}
    assert empty.reserve_capacity == 0

    sim.fund(7, 900_000)
    sim.deposit(7, 900_000)
    sim.fund(7, 2, asset=volatile)
    sim.deposit(7, 2, asset=volatile)
    state = sim.pool()
    assert state.holdings[payout] == 900_000
    assert state.holdings[volatile] == 2
    assert all(state.holdings[a.symbol] == 0 for a in profile.basket if a.symbol not in (payout, volatile))
    assert state.prices[payout] == 1 and state.prices[volatile] == 60_000
    # weights at the mark prices, holdings only: 900,000 USD and 2 x 60,000 = 120,000 USD of 1,020,000
    total = Decimal(900_000 + 120_000)
    assert state.weights_bps[payout] == (Decimal(900_000) * 10_000 / total).quantize(Decimal("0.01"))  # 8823.53
    assert state.weights_bps[volatile] == (Decimal(120_000) * 10_000 / total).quantize(Decimal("0.01"))  # 1176.47
    # the reserve counts the payout stablecoin only: 80% of 900,000, nothing of the BTC
    assert state.reserve_capacity == Decimal(900_000) * 8 / 10
    assert state.balance == 900_000
    # NAV counts the whole basket (no position open, no claim)
    assert state.nav_usd == total
    # a move of BTC's mark price moves its weight, not its holdings
    sim.keeper.set_prices({"BTC/USD": 30_000})
    sim.keeper.push_prices()
    moved = sim.pool()
    assert moved.holdings == state.holdings
    assert moved.weights_bps[volatile] == (Decimal(60_000) * 10_000 / Decimal(960_000)).quantize(Decimal("0.01"))
