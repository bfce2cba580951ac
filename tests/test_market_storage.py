"""The market's storage (issue 6): a pair's indexes are one slot, so an accrual is one write;
a side is three slots, its cost basis kept as its gap below open interest; NAV reads only the
pairs with open interest, kept as one bit per pair next to the rates; the registry lists at
most 128 pairs, and a notional tier is one slot. Each width is checked where
a value could pass it: the write reverts (SafeCast) and nothing changes."""

from __future__ import annotations

import pytest

from alpsim import errors
from conftest import LP, POOL_LIQUIDITY, PRICES, pair_config

HOUR_S = 3_600
WAD = 10**18
BTC, ETH, SOL, AAPL = 0, 1, 2, 3
MAX_AGE_S = 60


@pytest.fixture
def market(sim):
    sim.fund(LP, POOL_LIQUIDITY + 10_000)
    sim.deposit(LP, POOL_LIQUIDITY)
    sim.keeper.set_prices(PRICES)
    for trader in (1, 2):
        sim.fund(trader, 10_000)
    return sim


def _refresh(sim, pair_ids: list[int]) -> None:
    """New keeper and reference prices for these pairs only, recorded on chain."""
    sim.keeper.set_prices({sim.deployment.pairs[i]: PRICES[sim.deployment.pairs[i]] for i in pair_ids})
    sim.keeper.push_prices(pair_ids)


# ------------------------------------------------------------------ indexes: one slot

def test_an_index_past_72_bits_reverts_the_accrual_and_writes_nothing(market):
    """At the highest rate the market takes (64 bits a WAD per hour), the holding index passes
    72 bits within 300 hours. The accrual that would store it reverts; once the admin lowers the
    rate, the next accrual charges the whole span at the new rate, so the failed one wrote
    nothing."""
    sim, m = market, market.contracts["market"]
    admin = sim.deployment.deployer
    sim.keeper.set_prices({"BTC/USD": PRICES["BTC/USD"]})
    start = sim.session.events(sim.keeper.push_prices([BTC]), "IndexesUpdated")[0]
    m.transact("setRates", 2**64 - 1, 0, sender=admin)
    sim.devnet.advance_time(300 * HOUR_S)
    sim.keeper.set_prices({"BTC/USD": PRICES["BTC/USD"]})
    with pytest.raises(errors.SafeCastOverflowedUintDowncast) as info:
        sim.keeper.push_prices([BTC])
    assert info.value.error_args["bits"] == 72
    assert info.value.error_args["value"] > 2**72
    default_rate = 10**13
    m.transact("setRates", default_rate, 10**14, sender=admin)
    receipt = sim.keeper.push_prices([BTC])
    accrued = sim.session.events(receipt, "IndexesUpdated")[0]
    elapsed_s = accrued["timestamp"] - start["timestamp"]
    assert elapsed_s >= 300 * HOUR_S
    assert accrued["holdingIndex"] == start["holdingIndex"] + default_rate * elapsed_s // HOUR_S


@pytest.mark.parametrize("holding, funding", [(2**64, 0), (0, 2**64), (2**256 - 1, 1)],
                         ids=["holding-65-bits", "funding-65-bits", "holding-max-uint"])
def test_rates_wider_than_64_bits_are_refused(market, holding, funding):
    m = market.contracts["market"]
    before = (m.call("holdingRatePerHourWad"), m.call("fundingRatePerHourWad"))
    with pytest.raises(errors.SafeCastOverflowedUintDowncast) as info:
        m.transact("setRates", holding, funding, sender=market.deployment.deployer)
    assert info.value.error_args == {"bits": 64, "value": holding if holding >= 2**64 else funding}
    assert (m.call("holdingRatePerHourWad"), m.call("fundingRatePerHourWad")) == before


# ------------------------------------------------------------------ sides: three slots

ENGINE_EOA = 9  # granted the engine's role on the market, to call it with any numbers


def _as_engine(sim):
    m = sim.contracts["market"]
    m.transact("grantRole", m.call("ENGINE_ROLE"), sim.address(ENGINE_EOA), sender=sim.deployment.deployer)
    return m


def test_a_sides_cost_basis_is_exact_from_its_gap(market):
    """Each position's cost, floor(qty x entry), falls short of its notional by a few units;
    the side keeps the sum of those gaps. Its cost basis reads back as the exact sum of the
    positions' costs, through opens at several prices and a close."""
    sim, m = market, market.contracts["market"]
    engine = sim.contracts["trading"]
    ids = []
    for trader, usd, lev, price in [(1, 300, 7, 60_000), (2, 500, 13, 60_123), (1, 250, 3, 59_871)]:
        sim.keeper.set_prices({"BTC/USD": price})
        ids.append(sim.open(trader, "BTC/USD", "long", usd, lev).position.id)

    def check(open_ids):
        positions = [engine.call("position", i) for i in open_ids]
        side = m.call("side", BTC, True)
        assert side["oiUsd"] == sum(p["notionalUsd"] for p in positions)
        assert side["qty"] == sum(p["qty"] for p in positions)
        assert side["costUsd"] == sum(p["qty"] * p["entryPrice"] // WAD for p in positions)
        return side["oiUsd"] - side["costUsd"]

    assert check(ids) > 0  # the gap is there to keep: the costs fall short of the notionals
    sim.close(2, ids[1])
    assert check([ids[0], ids[2]]) > 0


def test_a_cost_above_notional_is_refused_and_writes_nothing(market):
    sim = market
    m = _as_engine(sim)
    before = m.call("side", ETH, False)
    with pytest.raises(errors.CostAboveNotional) as info:
        m.transact("addPosition", ETH, False, 1_000 * WAD, WAD, 1_000 * WAD + 1, sender=sim.address(ENGINE_EOA))
    assert info.value.error_args == {"costUsd": 1_000 * WAD + 1, "oiUsd": 1_000 * WAD}
    assert m.call("side", ETH, False) == before


def test_a_cost_gap_past_64_bits_is_refused_and_writes_nothing(market):
    """A real position's gap is below entry / 1e18 + 1; one of 2**64 units is refused."""
    sim = market
    m = _as_engine(sim)
    before = m.call("side", ETH, True)
    with pytest.raises(errors.SafeCastOverflowedUintDowncast) as info:
        m.transact("addPosition", ETH, True, 2**64, WAD, 0, sender=sim.address(ENGINE_EOA))
    assert info.value.error_args == {"bits": 64, "value": 2**64 + 1}  # stored shifted off zero
    assert m.call("side", ETH, True) == before
    m.transact("addPosition", ETH, True, 2**64 - 2, WAD, 0, sender=sim.address(ENGINE_EOA))  # the widest gap
    assert m.call("side", ETH, True)["costUsd"] == 0


def test_a_holding_weight_past_192_bits_is_refused_and_writes_nothing(market):
    """The holding weight, notional x holding index, is 192 bits: at the highest rate the
    index passes 2**66 in four hours, and 2**127 of notional opened then passes the width."""
    sim = market
    m = _as_engine(sim)
    m.transact("setRates", 2**64 - 1, 0, sender=sim.deployment.deployer)
    sim.keeper.push_prices([ETH])
    sim.devnet.advance_time(4 * HOUR_S)
    before = m.call("side", ETH, True)
    notional = 2**127
    with pytest.raises(errors.SafeCastOverflowedUintDowncast) as info:
        m.transact("addPosition", ETH, True, notional, WAD, notional, sender=sim.address(ENGINE_EOA))
    assert info.value.error_args["bits"] == 192
    assert info.value.error_args["value"] > 2**192
    assert m.call("side", ETH, True) == before


# ------------------------------------------------------------------ NAV: the pairs with open interest

def _stale_deposit(sim, pair_id: int) -> None:
    with pytest.raises(errors.PriceStale) as info:
        sim.deposit(LP, 1_000)
    assert info.value.error_args["pairId"] == pair_id


def test_nav_prices_exactly_the_pairs_with_open_interest(market):
    """A pair with open interest on either side must have a fresh price for a deposit; a pair
    without any (never traded, or traded and fully closed) is not read at all."""
    sim, m = market, market.contracts["market"]
    long_sol = sim.open(1, "SOL/USD", "long", 500, 20).position.id
    short_sol = sim.open(2, "SOL/USD", "short", 400, 10).position.id
    # SOL's price ages past the maximum; the other pairs' stay fresh
    sim.devnet.advance_time(MAX_AGE_S + 1)
    _refresh(sim, [BTC, ETH, AAPL])
    _stale_deposit(sim, SOL)
    # one side emptied, the other still open: SOL is still priced
    _refresh(sim, [SOL])
    sim.close(1, long_sol)
    sim.devnet.advance_time(MAX_AGE_S + 1)
    _refresh(sim, [BTC])
    _stale_deposit(sim, SOL)
    # both sides empty: SOL (and every other unpriced pair) no longer counts
    _refresh(sim, [SOL])
    sim.close(2, short_sol)
    assert m.call("poolClaimUsd") == 0
    sim.devnet.advance_time(MAX_AGE_S + 1)
    supply = sim.contracts["alp"].call("totalSupply")
    sim.deposit(LP, 1_000)  # every pair's price is stale now, and none has open interest
    assert sim.contracts["alp"].call("totalSupply") > supply


def test_the_last_listed_pair_counts_in_nav(market):
    """The highest pair id's bit is read like the first's: AAPL's stale price blocks a deposit
    while it has open interest, and its claim is part of NAV."""
    sim, m = market, market.contracts["market"]
    sim.open(1, "AAPL/USD", "long", 1_000, 10)
    assert m.call("poolClaimUsd") != 0
    sim.devnet.advance_time(MAX_AGE_S + 1)
    _refresh(sim, [BTC, ETH, SOL])
    _stale_deposit(sim, AAPL)


# ------------------------------------------------------------------ registry widths

def test_the_registry_lists_at_most_128_pairs(sim):
    pairs, admin = sim.contracts["pairs"], sim.deployment.deployer
    assert pairs.call("MAX_PAIRS") == 128
    for i in range(pairs.call("pairCount"), 128):
        pairs.transact("listPair", pair_config(f"P{i}/USD"), sender=admin)
    assert pairs.call("pairCount") == 128
    with pytest.raises(errors.TooManyPairs) as info:
        pairs.transact("listPair", pair_config("ONE-MORE/USD"), sender=admin)
    assert info.value.error_args == {"maxPairs": 128}
    assert pairs.call("pairCount") == 128
    assert pairs.call("pair", 127)["name"] == "P127/USD"


def test_a_tier_wider_than_128_bits_is_refused_and_tiers_read_back(sim):
    pairs, admin = sim.contracts["pairs"], sim.deployment.deployer
    before = pairs.call("tiers")
    with pytest.raises(errors.SafeCastOverflowedUintDowncast) as info:
        pairs.transact("setTiers", [(1_000 * WAD, 0), (2**128, 10)], sender=admin)
    assert info.value.error_args == {"bits": 128, "value": 2**128}
    assert pairs.call("tiers") == before
    widest = [(2**128 - 1, 2**128 - 1)]
    pairs.transact("setTiers", widest, sender=admin)
    assert [(t["maxNotionalUsd"], t["maxLeverage"]) for t in pairs.call("tiers")] == widest


def test_a_zero_tier_is_refused_and_fewer_tiers_clear_the_rest(sim):
    """A zero maximum notional ends the tiers, so `setTiers` refuses one; setting fewer tiers
    clears those past the last, so a notional the old tiers allowed is now above them all."""
    pairs, admin = sim.contracts["pairs"], sim.deployment.deployer
    before = pairs.call("tiers")
    assert len(before) == 3
    assert pairs.call("leverageCap", BTC, 2_000_000 * WAD) == (250, False)
    with pytest.raises(errors.InvalidTier) as info:
        pairs.transact("setTiers", [(1_000_000 * WAD, 0), (0, 10)], sender=admin)
    assert info.value.error_args == {"index": 1}
    assert pairs.call("tiers") == before
    pairs.transact("setTiers", [(1_000_000 * WAD, 0)], sender=admin)
    assert [(t["maxNotionalUsd"], t["maxLeverage"]) for t in pairs.call("tiers")] == [(1_000_000 * WAD, 0)]
    max_leverage = pairs.call("pair", BTC)["maxLeverage"]
    assert pairs.call("leverageCap", BTC, 1_000_000 * WAD) == (max_leverage, False)
    assert pairs.call("leverageCap", BTC, 2_000_000 * WAD) == (max_leverage, True)
    pairs.transact("setTiers", [], sender=admin)  # no tiers: every notional of a tiered pair is above them
    assert pairs.call("tiers") == []
    assert pairs.call("leverageCap", BTC, 100 * WAD) == (max_leverage, True)
