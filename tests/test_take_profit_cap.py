"""The take-profit cap (docs/mechanics.md section 5.5, with 6 for the exit price and 10 for the reserve):
maximum profit = ROI cap x margin, the ROI cap 900% below 500x, 500% from 500x to 999x and 300%
from 1000x; a take-profit of 0 means "at the cap"; a take-profit beyond the cap is rejected; a
close or a keeper trigger at any price pays at most margin + maximum profit, because a long
exits at min(fill, take-profit) and a short at max(fill, take-profit); the pool reserves the
maximum profit while the position is open. Expectations are computed here from the docs/mechanics.md
formulas; the mirror also compares the chain with the reference model. Both chain profiles, on
revm, through the alpsim pytest plugin's fixtures (`alpsim_system`, `alpsim`) and
`alpsim.testing.reverts`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from alpsim.client import OrderRejected
from alpsim.testing import reverts
from conftest import PRICES, funded_mirror

TRADER, OTHER, THIRD = 1, 2, 3
TRADERS = (TRADER, OTHER, THIRD)
TRADER_FUNDS = 100_000
EXECUTION_FEE_USD = {"bnb": Decimal("0.50"), "arbitrum": Decimal("0.20")}
SPEC_PAIRS = {"BTC/USD": (1, 100_000_000), "ETH/USD": (1, 50_000_000), "SOL/USD": (2, 10_000_000),
              "AAPL/USD": (3, 5_000_000)}  # spread bps, 1% depth USD (docs/mechanics.md section 3)
WAD = 10**18
BPS = 10_000
AMOUNT = 200

pytestmark = pytest.mark.alpsim(chains=["bnb", "arbitrum"], backend="revm")


@pytest.fixture(scope="module")
def deployed(alpsim_system):
    """The plugin's system (one per chain profile of the marker), for conftest's `funded_pool`."""
    return alpsim_system


@pytest.fixture
def sim(alpsim):
    """The plugin's `alpsim` (taken after `funded_pool`): reverted to its state after every test."""
    return alpsim


mirror = pytest.fixture(name="mirror")(funded_mirror)
"""conftest's `funded_pool` (TRADERS funded and approved); each test ends with a full chain/model comparison."""


def roi_cap_bps(leverage: int) -> int:
    """docs/mechanics.md §5.5."""
    return 90_000 if leverage < 500 else 50_000 if leverage < 1000 else 30_000


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class Expected:
    margin_tokens: int
    margin_wad: int
    notional_wad: int
    fill: int
    qty: int
    max_profit: int
    cap_price: int


def expect_open(sim, pair: str, side: str, amount, leverage: int, oracle: int, side_oi_wad: int = 0) -> Expected:
    """docs/mechanics.md §5.3, 7 and 5.5, rounded in the pool's favour: the margin down, a long's fill up, a
    short's fill down, the quantity down, the cap price so that its profit stays within the cap."""
    scale = 10 ** (18 - sim.decimals)
    net = sim.to_units(amount) - sim.to_units(EXECUTION_FEE_USD[sim.profile.name])
    margin_tokens = net if leverage >= 500 else net * WAD // (WAD + leverage * 8 * 10**14)
    margin = margin_tokens * scale
    notional = margin * leverage
    spread_bps, depth_usd = SPEC_PAIRS[pair]
    slip = spread_bps * 10**14 + _ceil_div((side_oi_wad + notional) * 10**16, depth_usd * WAD)
    fill = _ceil_div(oracle * (WAD + slip), WAD) if side == "long" else oracle * (WAD - slip) // WAD
    qty = notional * WAD // fill
    max_profit = margin * roi_cap_bps(leverage) // BPS
    move = max_profit * WAD // qty
    cap = fill + move if side == "long" else fill - move
    return Expected(margin_tokens, margin, notional, fill, qty, max_profit, cap)


def _oracle(pair: str) -> int:
    return PRICES[pair] * WAD


def _reserve(sim) -> int:
    return sim.contracts["pool"].call("reserveUsd")


CAP_CASES = [
    ("BTC/USD", "long", 10), ("BTC/USD", "short", 10), ("BTC/USD", "short", 499), ("BTC/USD", "long", 500),
    ("ETH/USD", "short", 999), ("ETH/USD", "long", 1000), ("BTC/USD", "short", 1001), ("SOL/USD", "long", 100),
    ("AAPL/USD", "short", 50),
]


@pytest.mark.parametrize("pair, side, leverage", CAP_CASES)
def test_max_profit_is_roi_cap_times_margin_and_tp_zero_sits_at_the_cap(mirror, pair, side, leverage):
    sim = mirror.sim
    reserve_before = _reserve(sim)
    exp = expect_open(sim, pair, side, AMOUNT, leverage, _oracle(pair))

    p = mirror.open(TRADER, pair, side, AMOUNT, leverage).position  # take_profit 0

    assert (p.margin_tokens, p.entry_price_wad, p.qty_wad) == (exp.margin_tokens, exp.fill, exp.qty)
    cap_bps = {10: 90_000, 499: 90_000, 100: 90_000, 50: 90_000, 500: 50_000, 999: 50_000,
               1000: 30_000, 1001: 30_000}[leverage]
    assert p.max_profit_wad == p.margin_wad * cap_bps // BPS == exp.max_profit
    assert p.take_profit_wad == exp.cap_price
    # the cap price is the last price whose profit is within the maximum profit
    if side == "long":
        assert p.qty_wad * (p.take_profit_wad - p.entry_price_wad) <= p.max_profit_wad * WAD
        assert p.qty_wad * (p.take_profit_wad + 1 - p.entry_price_wad) > p.max_profit_wad * WAD
    else:
        assert p.qty_wad * (p.entry_price_wad - p.take_profit_wad) <= p.max_profit_wad * WAD
        assert p.qty_wad * (p.entry_price_wad - p.take_profit_wad + 1) > p.max_profit_wad * WAD
    # the pool reserves exactly the maximum profit
    assert _reserve(sim) == reserve_before + p.max_profit_wad
    mirror.check()


@pytest.mark.parametrize("pair, side, leverage", [
    ("BTC/USD", "long", 10), ("BTC/USD", "short", 10), ("ETH/USD", "long", 1001), ("BTC/USD", "short", 500),
])
def test_take_profit_at_the_cap_is_accepted_one_wei_beyond_is_rejected(mirror, pair, side, leverage):
    sim = mirror.sim
    exp = expect_open(sim, pair, side, AMOUNT, leverage, _oracle(pair))
    beyond = exp.cap_price + 1 if side == "long" else exp.cap_price - 1
    with reverts(OrderRejected, reason="TakeProfitBeyondCap") as info:
        mirror.open(TRADER, pair, side, AMOUNT, leverage, take_profit=Decimal(beyond).scaleb(-18))
    assert info.value.reason == "TakeProfitBeyondCap"

    p = mirror.open(TRADER, pair, side, AMOUNT, leverage, take_profit=Decimal(exp.cap_price).scaleb(-18)).position
    assert p.take_profit_wad == exp.cap_price
    assert p.max_profit_wad == exp.max_profit
    mirror.check()


TRIGGER_CASES = [
    ("BTC/USD", "long", 10, 200_000),   # cap ~ +90%
    ("BTC/USD", "short", 10, 3_000),    # cap ~ -90%
    ("BTC/USD", "long", 500, 66_000),   # cap ~ +1%
    ("ETH/USD", "long", 1001, 3_100),   # cap ~ +0.3%
    ("ETH/USD", "short", 1001, 2_900),  # cap ~ -0.3%
]


@pytest.mark.parametrize("pair, side, leverage, far_price", TRIGGER_CASES)
def test_trigger_far_beyond_the_cap_pays_at_most_margin_plus_max_profit(mirror, pair, side, leverage, far_price):
    sim = mirror.sim
    reserve_before = _reserve(sim)
    p = mirror.open(TRADER, pair, side, AMOUNT, leverage).position
    assert (far_price * WAD > p.take_profit_wad) if side == "long" else (far_price * WAD < p.take_profit_wad)
    balance = sim.collateral_units(TRADER)

    mirror.set_prices({pair: far_price})
    closed = mirror.run_triggers()

    assert [c.position.id for c in closed] == [p.id]
    c = closed[0]
    assert c.reason == "take_profit"
    assert c.oracle_price_wad == far_price * WAD
    assert c.exit_price_wad == p.take_profit_wad  # min(fill, TP) for a long, max(fill, TP) for a short
    move = (c.exit_price_wad - p.entry_price_wad) if side == "long" else (p.entry_price_wad - c.exit_price_wad)
    assert c.pnl_wad == p.qty_wad * move // WAD
    assert 0 < c.pnl_wad <= p.max_profit_wad
    assert c.payout_wad == p.margin_wad + c.pnl_wad - c.close_fee_wad - c.holding_wad - c.funding_wad
    assert c.payout_wad <= p.margin_wad + p.max_profit_wad
    scale = 10 ** (18 - sim.decimals)
    assert c.payout_tokens == c.payout_wad // scale
    assert sim.collateral_units(TRADER) == balance + c.payout_tokens
    assert sim.collateral_units(TRADER) - balance <= p.margin_tokens + p.max_profit_wad // scale
    assert _reserve(sim) == reserve_before  # released on close
    assert sim.position(p.id) is None
    mirror.check()


@pytest.mark.parametrize("close_price", [200_000, 61_000])
def test_trader_close_exits_at_min_of_fill_and_take_profit(mirror, close_price):
    """A long closed by its trader: beyond the cap it exits at the cap price, below it at the
    fill (oracle moved against the trader by slippage, docs/mechanics.md §7)."""
    sim = mirror.sim
    p = mirror.open(TRADER, "BTC/USD", "long", 1000, 10).position
    mirror.set_prices({"BTC/USD": close_price})
    c = mirror.close(TRADER, p.id)
    slip = 10**14 + _ceil_div(p.notional_wad * 10**16, 100_000_000 * WAD)
    fill = close_price * WAD * (WAD - slip) // WAD
    assert c.exit_price_wad == min(fill, p.take_profit_wad)
    if close_price == 200_000:
        assert c.exit_price_wad == p.take_profit_wad < fill
        assert c.pnl_wad <= p.max_profit_wad
    else:
        assert c.exit_price_wad == fill < p.take_profit_wad
    assert c.reason == "close"
    assert _reserve(sim) == 0
    mirror.check()


def test_reserve_holds_each_positions_max_profit_until_it_closes(mirror):
    sim = mirror.sim
    assert _reserve(sim) == 0
    a = mirror.open(TRADER, "BTC/USD", "long", 1000, 10).position     # 900%
    b = mirror.open(OTHER, "ETH/USD", "short", 1000, 500).position    # 500%
    c = mirror.open(THIRD, "BTC/USD", "short", 500, 1001).position    # 300%
    assert a.max_profit_wad == 9 * a.margin_wad
    assert b.max_profit_wad == 5 * b.margin_wad
    assert c.max_profit_wad == 3 * c.margin_wad
    assert _reserve(sim) == a.max_profit_wad + b.max_profit_wad + c.max_profit_wad

    mirror.close(OTHER, b.id)
    assert _reserve(sim) == a.max_profit_wad + c.max_profit_wad
    mirror.set_prices({"BTC/USD": 200_000})  # a at its take-profit; c liquidated
    closed = {x.position.id: x.reason for x in mirror.run_triggers()}
    assert closed == {a.id: "take_profit", c.id: "liquidation"}
    assert _reserve(sim) == 0
    mirror.check()
